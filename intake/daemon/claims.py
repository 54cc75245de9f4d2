"""Which worker holds which message.

A worker takes the next message with a compare-and-set on its row (after ``SELECT …
FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several worker processes never take the
same one. A worker's id names one process's life; a claim is taken over at once when
its worker on this host is gone, and any claim when its lease runs out (a live worker
renews its lease at each step and while a long judgement runs).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.states import WAITING, WORKABLE
from intake.store import Message, utcnow

log = logging.getLogger("intake")
LEASE = timedelta(minutes=30)  # a claim older than this is a dead worker's
RENEW_EVERY = LEASE / 6


def worker_id(pid: int | None = None) -> str:
    """host:pid:node:start — unique to one process's life. A pid alone is not: pids are
    reused, and a claim "held" by an unrelated process would never be taken over. The
    node (boot id and PID namespace) tells apart containers that share a host name."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_node()}:{_start_time(pid)}"


def _node() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "-"
    return f"{boot}.{namespace}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat[stat.rindex(")") + 2:].split()[19]  # the name may hold spaces and ")"


def _gone(claimed_by: str) -> bool:
    """True when the claiming worker is known to be dead: a worker of this host whose
    process (pid, node and start time) no longer runs. Unknown (another host, boot or
    container; an id in the old host:pid form) is not gone: it waits for the lease."""
    process = claimed_by.split("#")[0]  # a delivery pass's id: its worker's id and a nonce
    host, pid, node, started = (process.split(":") + ["", "", ""])[:4]
    if host != socket.gethostname() or node in ("", "-") or node != _node() or not pid.isdigit() or not started:
        return False  # another machine, boot or container: its pids are not ours to look up
    return worker_id(int(pid)) != process


def _claimable(claimed_by: str | None, claimed_at: datetime | None, me: str, now: datetime) -> bool:
    if not claimed_by or claimed_by == me:
        return True
    if claimed_at is None or aware(claimed_at) <= now - LEASE:
        return True  # every claim has a lease: a live worker renews it
    return _gone(claimed_by)


def holder_gone(holder: str | None, since: datetime | None, me: str, now: datetime | None = None) -> bool:
    """True when work marked as held by `holder` since `since` is nobody's any more: no
    holder, this very worker (work it left between two of its steps), a lease run out
    (at `now`, default the present),
    or a holder on this host known to be dead. (The outbox's `sending` rows use it: each
    delivery pass holds them under its own id, ``worker id#nonce``, so a second pass in
    the same process never takes the first one's rows for its own left-overs.)"""
    return _claimable(holder, since, me, now or utcnow())


def claim(Session: sessionmaker, me: str, in_hand: Collection[int] = ()) -> int | None:
    """Take the next message that needs work, or None. Safe with many workers.
    ``in_hand``: messages this worker holds already (one judged while it claims the next)."""
    now = utcnow()
    with Session.begin() as session:
        query = (
            select(Message.id, Message.claimed_by, Message.claimed_at)
            .where(or_(
                Message.state.in_([state.value for state in WORKABLE]),
                # a failed message, or one waiting for its next fetch attempt, once due (a
                # fetch in hand has none: a dead worker's is taken up at once)
                Message.state.in_([state.value for state in WAITING])
                & (Message.next_attempt_at.is_(None) | (Message.next_attempt_at <= now)),
            ))
            .order_by(Message.id)
            .limit(20)
        )
        if is_postgresql(session):
            query = query.with_for_update(skip_locked=True)
        for message_id, claimed_by, claimed_at in session.execute(query).all():
            if message_id in in_hand or not _claimable(claimed_by, claimed_at, me, now):
                continue  # a live worker's, within its lease, or in this worker's hands
            taken = session.execute(
                update(Message)
                .where(Message.id == message_id,
                       Message.claimed_by.is_(None) if claimed_by is None else Message.claimed_by == claimed_by)
                .values(claimed_by=me, claimed_at=now)
            )
            if taken.rowcount == 1:
                return message_id
    return None


def locked(session: Session, message_id: int) -> Message:
    """The message row, locked for the rest of this transaction before anything is read.

    The first statement writes the row: on PostgreSQL that is a row lock, on SQLite the
    database's write lock, and what is read after it is the newest state. Workers and
    staff actions take it the same way, so a reprocess never interleaves with a save
    or a delivery (two replies, or a reprocess silently undone, otherwise)."""
    session.execute(update(Message).where(Message.id == message_id).values(updated_at=utcnow()))
    message = session.get(Message, message_id, populate_existing=True)
    if message is None:  # rows are never deleted: a caller's bug
        raise LookupError(f"no message {message_id}")
    return message


class Leases:
    """One worker's claims on the messages it has in hand (being read, judged, or judged
    and waiting to be saved while the next one is judged), renewed together by one
    thread while any is held: a live worker's claim never runs out, a dead one's does.
    ``stop()`` ends the thread (the worker's drain does, at its end)."""

    def __init__(self, Session: sessionmaker, me: str) -> None:
        self.Session, self.me = Session, me
        self.held: set[int] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def hold(self, message_id: int) -> None:
        with self.lock:
            self.held.add(message_id)
            if self.thread is None:
                self.stopped.clear()
                self.thread = threading.Thread(target=self._renew, name="leases", daemon=True)
                self.thread.start()

    def release(self, message_id: int) -> None:
        with self.lock:
            self.held.discard(message_id)

    def holding(self, message_id: int) -> _Holding:
        """``with leases.holding(id):`` holds the claim for the block."""
        return _Holding(self, message_id)

    def stop(self) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
            self.held.clear()
        if thread is not None:
            self.stopped.set()
            thread.join()

    def _renew(self) -> None:
        while not self.stopped.wait(RENEW_EVERY.total_seconds()):
            with self.lock:
                held = sorted(self.held)
            if not held:
                continue
            try:
                with self.Session.begin() as session:
                    session.execute(update(Message).where(Message.id.in_(held), Message.claimed_by == self.me)
                                    .values(claimed_at=utcnow()))
            except Exception as err:  # the next renewal tries again; the lease is long
                log.warning("could not renew the claims on messages %s: %s", held, err)


class _Holding:
    def __init__(self, leases: Leases, message_id: int) -> None:
        self.leases, self.message_id = leases, message_id

    def __enter__(self) -> None:
        self.leases.hold(self.message_id)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.leases.release(self.message_id)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
