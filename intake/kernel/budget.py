"""A budget for every judgement: unpacking, parsing and validating a sender's package
run in a child process under hard limits, so that a tiny crafted file can neither take
the host's memory nor hold the worker for ever.

- memory: ``RLIMIT_AS`` of the child, on top of what it inherits at fork;
- CPU seconds: ``RLIMIT_CPU`` (the kernel ends the child with SIGXCPU);
- wall time: the parent kills the child when it has not answered in time.

A child over its budget is not a failure to retry: the message is judged, and the
judgement says which file was being read when the budget ran out (``reading()`` marks
it) and what the sender can do (``package.too_complex``).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from intake.kernel.findings import Finding
from intake.kernel.report import Report
from intake.kernel.verdicts import Verdict

_marker_fd: int | None = None  # in a budgeted child: where reading() writes
_parent_pid: int | None = None  # in a budgeted child: the process that forked it
_PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass(frozen=True)
class Budget:
    memory_bytes: int = 1 << 30
    cpu_seconds: int = 120
    wall_seconds: float = 600.0


class _OverBudget(Exception):
    pass


def reading(label: str) -> None:
    """Mark the file now being read (a package-relative path), so that a judgement
    stopped by its budget can name it. Does nothing outside a budgeted child."""
    if _parent_pid is not None and os.getppid() != _parent_pid:
        os._exit(1)  # orphaned (the parent died before prctl took hold, or not on Linux)
    if _marker_fd is not None:
        data = (label.replace("\n", " ")[:500] + "\n").encode("utf-8", "replace")
        os.pwrite(_marker_fd, data.ljust(512), 0)  # one fixed slot: the last mark wins


def die_with_parent(parent_pid: int) -> None:
    """In a judging child: be killed with SIGKILL when the parent dies (Linux), and exit
    at once should it have died already; ``reading()`` notices a parent gone too. A
    daemon killed mid-judgement must not leave a child working on for minutes, still
    writing into a work folder its successor may be using."""
    global _parent_pid
    _parent_pid = parent_pid
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl (not Linux): the checks of os.getppid() remain
        pass
    if os.getppid() != parent_pid:  # it died between the fork and prctl
        os._exit(1)


def within(budget: Budget, policy_name: str, received_at: datetime | None,
           target: Callable[..., Report], *args: Any) -> Report:
    """``target(*args)`` in a child process under ``budget``; its Report, or a report
    that says the package was too complex to judge within the budget. Errors that are
    not the package's (a disk, a bug) are raised again here, as the child raised them."""
    context = multiprocessing.get_context("fork")  # the child sees this process's code as it is
    marker = os.memfd_create("intake-reading")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, marker, budget, target, args, os.getpid()), daemon=True)
    try:
        child.start()
        send.close()
        outcome = receive.recv() if receive.poll(budget.wall_seconds) else ("killed", "wall")
    except EOFError:  # the child died without a word: a signal (SIGXCPU, SIGKILL, SIGSEGV)
        outcome = ("killed", "signal")
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
        last = os.pread(marker, 512, 0).decode("utf-8", "replace").split("\n", 1)[0].strip()
        os.close(marker)
    kind, value = outcome
    if kind == "ok" and isinstance(value, Report):
        return value
    if kind == "error" and isinstance(value, BaseException):
        raise value
    return too_complex(policy_name, received_at, last or None, _why(str(value), child.exitcode))


def _child(send: Connection, marker: int, budget: Budget, target: Callable[..., Report], args: tuple,
           parent_pid: int) -> None:
    global _marker_fd
    die_with_parent(parent_pid)
    _marker_fd = marker
    limit = _address_space() + budget.memory_bytes  # on top of what the child inherited at fork
    # soft limits only: the hard ones stay as inherited, so that the extraction tools
    # this child starts (7-Zip, unar, under their own timeout and disk cap) can be
    # given their own room again (intake.parsers.extraction)
    limit = _lower_only(resource.RLIMIT_AS, limit)
    _lower_only(resource.RLIMIT_CPU, budget.cpu_seconds)
    try:
        report = target(*args)
        # a failed allocation deep in a parser is often caught there and turned into
        # "unreadable": a child that reached its ceiling was over budget, whatever it says
        margin = min(64 << 20, budget.memory_bytes)  # an allocation that failed was at most this far off
        send.send(("over", "memory") if _peak_address_space() > limit - margin else ("ok", report))
    except MemoryError:
        send.send(("over", "memory"))
    except BaseException as err:  # noqa: BLE001 - everything else goes back to the parent as it was
        try:
            send.send(("error", err))
        except Exception:  # an exception that does not pickle: its text does
            send.send(("error", RuntimeError(f"{type(err).__name__}: {err}")))
    finally:
        send.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's buffers twice


def _lower_only(kind: int, soft: int) -> int:
    """Set a soft limit, never above the inherited hard one (which is kept)."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(kind, (soft, hard))
    return soft


def _peak_address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _why(value: str, exitcode: int | None) -> str:
    if value == "memory" or exitcode == -signal.SIGSEGV:
        return "memory"
    if value == "wall":
        return "wall"
    if exitcode == -signal.SIGXCPU:
        return "cpu"
    return "killed"


WHY_TEXT = {"memory": "所需内存超过系统上限", "cpu": "处理时间超过系统上限", "wall": "处理时间超过系统上限",
            "killed": "处理过程异常终止"}


def too_complex(policy_name: str, received_at: datetime | None, reading_now: str | None, why: str) -> Report:
    """The judgement of a package that could not be judged within its budget."""
    where = f"处理文件“{reading_now}”时" if reading_now else "处理材料时"
    finding = Finding(
        "package.too_complex",
        f"{where}{WHY_TEXT.get(why, WHY_TEXT['killed'])}，系统已停止处理本次报送。"
        "请检查该文件是否损坏，或另存为标准格式后重新发送。",
        None, reading_now,
    )
    return Report(Verdict.REJECTED, policy_name, received_at, None, [], [finding])
