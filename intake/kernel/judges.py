"""One long-lived judging child for many judgements, under the same budget as
``intake.kernel.budget.within`` gives a child of its own.

Forking the daemon (about 100 MiB mapped) costs 15-50 ms on a small VM, as much as
judging a one-project message; so the worker forks one child per drain and hands it
message after message over a pipe. What a budget guarantees still holds per judgement:

- memory: before each judgement the child's ``RLIMIT_AS`` is set to its address space
  then plus the budget: each judgement has its whole budget, whatever the ones before
  left mapped (caches, fragmentation). A child retires (exits after answering; the next
  judgement gets a fresh fork) as soon as its peak address space has grown by an eighth
  of the budget, so the child never holds more than its fork plus 9/8 of the budget,
  and a peak at the ceiling can only be the judgement in hand's (a budget under
  256 MiB: one judgement per child);
- CPU seconds: ``RLIMIT_CPU`` is set again before each judgement to the CPU time the
  child has used so far plus the budget;
- wall time: the parent kills the child when a judgement has not answered in time;
- a judgement over its budget, killed or failing with MemoryError, ends its child: the
  next judgement never inherits what it left behind. A child found dead before it took
  a judgement (killed while idle) is replaced and the judgement handed to the new one.

The child dies with its parent, mid-judgement too (``budget.die_with_parent``: SIGKILL
by prctl, and the parent's pid checked before each judgement and at every file read);
idle, it also sees its end of the pipe close. It is stopped by
``close()`` at the end of a drain; tests that patch the judging code do so before a
worker starts, so a child always runs the code of the drain that forked it.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import intake.kernel.budget as budget_module
from intake.kernel.budget import (
    Budget, _address_space, _lower_only, _peak_address_space, _why, die_with_parent, too_complex,
)
from intake.kernel.report import Report

REUSE_FROM = 256 << 20  # smaller budgets: one judgement per child (see the module's text)
MAX_JUDGEMENTS = 500  # a child retires after this many judgements all the same
_BLANK = b" " * 512


class JudgingChild:
    """``within()`` with one forked child reused across calls; ``close()`` ends it."""

    def __init__(self) -> None:
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._marker: int | None = None
        self._budget: Budget | None = None
        self.forks = 0  # children started so far (the benchmark reports it)
        self._in_flight = False  # a submitted judgement whose result is not taken yet

    def within(self, budget: Budget, policy_name: str, received_at: datetime | None,
               target: Callable[..., Report], *args: Any) -> Report:
        """As ``intake.kernel.budget.within``; ``target`` and ``args`` must pickle."""
        value = self.call(budget, policy_name, received_at, target, *args)
        if isinstance(value, Report):
            return value
        raise TypeError(f"a judgement returned {type(value).__name__}, not a Report")

    def call(self, budget: Budget, policy_name: str, received_at: datetime | None,
             target: Callable[..., Any], *args: Any) -> Any:
        """``target(*args)`` in the child under ``budget``, as a judgement: its value, or
        the report of a package too complex to judge when it ran over the budget
        (errors are raised again here)."""
        kind, value, last, exitcode = self._run(budget, target, args)
        if kind == "ok":
            return value
        return too_complex(policy_name, received_at, last or None, _why(str(value), exitcode))

    def submit(self, budget: Budget, policy_name: str, received_at: datetime | None,
               target: Callable[..., Any], *args: Any) -> Pending:
        """As ``call``, but returns once the child has taken the judgement: the caller
        works meanwhile (the daemon saves the previous message) and takes the outcome
        with ``Pending.result()``. One judgement in flight at a time."""
        if self._in_flight:
            raise RuntimeError("a judgement is in flight already: take its result first")
        conn = self._hand_over(budget, (target, args))
        self._in_flight = True
        deadline = time.monotonic() + budget.wall_seconds  # as ``call``: from the child's "started"
        return Pending(self, conn, deadline, policy_name, received_at)

    def _run(self, budget: Budget, target: Callable[..., Any], args: tuple) -> tuple[str, Any, str, int | None]:
        """(kind, value, the file being read at the end, the exit code of a child that ended)."""
        if self._in_flight:
            raise RuntimeError("a judgement is in flight: take its result first")
        conn = self._hand_over(budget, (target, args))
        return self._outcome(conn, time.monotonic() + budget.wall_seconds)

    def _outcome(self, conn: Connection, deadline: float) -> tuple[str, Any, str, int | None]:
        try:
            answered = conn.poll(max(0.0, deadline - time.monotonic()))
            outcome = conn.recv() if answered else (("killed", "wall"), True)
        except EOFError:  # the child died without a word: a signal (SIGXCPU, SIGKILL, SIGSEGV)
            outcome = (("killed", "signal"), True)
        (kind, value), retire = outcome
        assert self._marker is not None
        last = os.pread(self._marker, 512, 0).decode("utf-8", "replace").split("\n", 1)[0].strip()
        exitcode = self.close(kill=kind == "killed") if retire else None
        if kind == "error" and isinstance(value, BaseException):
            raise value
        return kind, value, last, exitcode

    def close(self, kill: bool = False) -> int | None:
        """Stop the child (if any; ``kill``: at once, it is stuck); its exit code."""
        process, self._process = self._process, None
        self._in_flight = False  # a judgement in flight dies with its child
        if process is None:
            return None
        if self._conn is not None:
            self._conn.close()
        if process.is_alive() and not kill:
            process.join(5)  # a retiring child is exiting by itself; an idle one sees EOF
        if process.is_alive():
            process.kill()
        process.join()
        if self._marker is not None:
            os.close(self._marker)
        self._conn = self._marker = None
        return process.exitcode

    def _hand_over(self, budget: Budget, job: tuple) -> Connection:
        """Send the job to a live child that has taken it (a fresh one if need be)."""
        for _ in range(2):
            if self._process is None or self._budget != budget or not self._process.is_alive():
                self.close()
                self._start(budget)
            assert self._conn is not None and self._marker is not None
            os.pwrite(self._marker, _BLANK, 0)
            try:
                self._conn.send(job)
                if self._conn.poll(budget.wall_seconds) and self._conn.recv() == "started":
                    return self._conn
            except (EOFError, OSError):  # died while idle: not this judgement's doing
                pass
            self.close()
        raise RuntimeError("the judging child died twice before it could take a judgement")

    def _start(self, budget: Budget) -> None:
        context = multiprocessing.get_context("fork")  # the child sees this process's code as it is
        self._marker = os.memfd_create("intake-reading")
        mine, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, mine, self._marker, budget, os.getpid()),
                                  daemon=True)
        process.start()
        theirs.close()
        self._process, self._conn, self._budget = process, mine, budget
        self.forks += 1


class Pending:
    """A judgement handed to the child (``JudgingChild.submit``); ``result()`` waits for
    it (within its wall budget, counted from the hand-over) and gives what ``call`` would."""

    def __init__(self, judges: JudgingChild, conn: Connection, deadline: float, policy_name: str,
                 received_at: datetime | None) -> None:
        self._judges, self._conn, self._deadline = judges, conn, deadline
        self._policy_name, self._received_at = policy_name, received_at
        self._value: tuple[str, Any, str, int | None] | BaseException | None = None

    def result(self) -> Any:
        if self._value is None:
            try:
                self._value = self._judges._outcome(self._conn, self._deadline)
            except BaseException as err:  # the judgement's own error: raised again at each call
                self._value = err
            finally:
                self._judges._in_flight = False
        if isinstance(self._value, BaseException):
            raise self._value
        kind, value, last, exitcode = self._value
        if kind == "ok":
            return value
        return too_complex(self._policy_name, self._received_at, last or None, _why(str(value), exitcode))


def _serve(conn: Connection, parents_end: Connection, marker: int, budget: Budget, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    parents_end.close()  # else the parent's death would never close the pipe for us
    budget_module._marker_fd = marker
    base = _address_space()
    retire_above = base + budget.memory_bytes // 8 if budget.memory_bytes >= REUSE_FROM else 0
    try:
        for count in range(1, MAX_JUDGEMENTS + 1):
            try:
                target, args = conn.recv()
            except EOFError:  # the parent closed us or died
                return
            if os.getppid() != parent_pid:  # orphaned: whatever came is not worth judging
                return
            conn.send("started")
            # soft limits only, as in budget._child: extraction tools get their room back
            limit = _lower_only(resource.RLIMIT_AS, _address_space() + budget.memory_bytes)
            used = resource.getrusage(resource.RUSAGE_SELF)
            _lower_only(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime) + 1 + budget.cpu_seconds)
            outcome = _judge(target, args, limit, budget)
            retire = outcome[0] != "ok" or _peak_address_space() > retire_above
            _answer(conn, outcome, retire or count == MAX_JUDGEMENTS)
            if retire:
                return
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's buffers twice


def _judge(target: Callable[..., Any], args: tuple, limit: int, budget: Budget) -> tuple[str, Any]:
    try:
        report = target(*args)
    except MemoryError:
        return ("over", "memory")
    except BaseException as err:  # noqa: BLE001 - everything else goes back to the parent as it was
        return ("error", err)
    # a failed allocation deep in a parser is often caught there and turned into
    # "unreadable": a judgement that reached the ceiling was over budget, whatever it says
    margin = min(64 << 20, budget.memory_bytes)
    return ("over", "memory") if _peak_address_space() > limit - margin else ("ok", report)


def _answer(conn: Connection, outcome: tuple[str, Any], retire: bool) -> None:
    try:
        conn.send((outcome, retire))
    except Exception:  # an exception (or report) that does not pickle: its text does
        conn.send((("error", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")), retire))
