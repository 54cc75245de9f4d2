"""The delivery pass: every due queued outbox row (replies, digest, alerts) is sent over
one connection per batch, after the worker has drained the queue.

Exactly once: a row is set ``sending`` and COMMITTED before its SMTP transaction, and
``sent`` after the server's answer. A crash (or a server that never answers the end of
the data) in between leaves it ``sending``: it may have arrived, so no pass sends it
again; it is marked uncertain (audited), listed by `intake outbox`, and staff may
`intake resend` it. Only the outbox folder, where a repeat rewrites one file, sends
such a row again. A 4xx or a dropped connection puts the row back to ``queued`` with
a backoff (the batch ends when the connection is gone); a 5xx makes it ``failed`` with
the server's answer, and the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.daemon.claims import holder_gone
from intake.kernel.errors import IntakeError, PermanentError, TransientError
from intake.notifier.transport import Connection, ConnectionLost, DeliveryUncertain, Outgoing, Transport
from intake.states import OUTBOX_MOVES, UNSENT, OutboxState
from intake.store import Message, Outbox, audit, set_status, status_detail, utcnow

log = logging.getLogger("intake")
BATCH = 50  # mails per connection; more due rows take further connections in the same pass
MAX_ATTEMPTS = 10  # transient failures of one mail before it is given up as failed
MAX_BACKOFF = 3600.0  # 1, 2, 4 … minutes, at most an hour: about four hours over ten tries
UNCERTAIN = ("uncertain: the process sending it stopped before the server answered; it may have been "
             "delivered, so it is not sent again unless staff `intake resend` it")


class IllegalRowMove(RuntimeError):
    """A move of an outbox row that intake.states.OUTBOX_MOVES does not allow: a bug."""


@dataclass
class Delivery:
    """What one pass did. ``error`` is what ended a batch early (a refused login, the
    server unreachable, the connection lost), else None."""

    sent: int = 0
    refused: int = 0
    retried: int = 0
    uncertain: int = 0
    error: IntakeError | None = None

    def summary(self) -> str:
        return f"{self.sent} sent, {self.refused} refused, {self.retried} to retry, {self.uncertain} uncertain"


def move_row(session: Session, row_id: int, source: OutboxState, target: OutboxState, *,
             holder: str | None = None, due: bool = False, **values: Any) -> bool:
    """Compare-and-set one row from `source` to `target` (and `values`) in the caller's
    transaction; False when it was not in `source` any more (someone else moved it)."""
    if target not in OUTBOX_MOVES[source]:
        raise IllegalRowMove(f"outbox row {row_id}: {source} -> {target} is not a move intake makes")
    query = update(Outbox).where(Outbox.id == row_id, Outbox.state == source.value)
    if holder is not None:
        query = query.where(Outbox.sending_by == holder)
    if due:
        query = query.where(or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= utcnow()))
    moved = session.execute(query.values(state=target.value, updated_at=utcnow(), **values))
    return cast(CursorResult, moved).rowcount == 1  # an UPDATE's result counts its rows


def deliver_pending(Session: sessionmaker, transport: Transport, me: str,
                    should_stop: Callable[[], bool] = lambda: False) -> Delivery:
    """Send every due queued row, BATCH per connection; record how the transport fared."""
    result = Delivery()
    mark_abandoned(Session, transport, me)
    tried: set[int] = set()
    while not should_stop():
        due = [row_id for row_id in _due(Session) if row_id not in tried]
        if not due:
            break
        tried.update(due)
        finished = _batch(Session, transport, me, due, result, should_stop)
        if transport.status_name:
            with Session.begin() as session:
                error = result.error
                set_status(session, transport.status_name, error is None,
                           status_detail(error) if error else result.summary())
        if not finished:
            break
    return result


def _due(Session: sessionmaker) -> list[int]:
    with Session() as session:
        return list(session.scalars(
            select(Outbox.id).where(Outbox.state == OutboxState.QUEUED.value,
                                    or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= utcnow()))
            .order_by(Outbox.id).limit(BATCH)))


def _batch(Session: sessionmaker, transport: Transport, me: str, due: list[int], result: Delivery,
           should_stop: Callable[[], bool]) -> bool:
    """One connection for `due`; False when the batch ended early (nothing more this pass)."""
    try:
        with transport.open() as connection:
            for row_id in due:
                if should_stop():
                    return False
                mail = _take(Session, row_id, me)
                if mail is not None and not _deliver_one(Session, connection, row_id, mail, me, result):
                    return False
    except IntakeError as err:  # connecting or logging in failed: no row was taken
        log.warning("mail not delivered: %s", err)
        result.error = err
        return False
    return True


def _take(Session: sessionmaker, row_id: int, me: str) -> Outgoing | None:
    """Set the row `sending` (ours) and commit, before a byte of it goes out."""
    with Session.begin() as session:
        if not move_row(session, row_id, OutboxState.QUEUED, OutboxState.SENDING, due=True,
                        sending_by=me, last_error=None):
            return None  # another pass took it, or staff dropped it meanwhile
        row = session.get(Outbox, row_id, populate_existing=True)
        assert row is not None
        receipt = session.scalar(select(Message.receipt).where(Message.id == row.message_id)) if row.message_id else None
        return Outgoing(f"{receipt or row.kind}-{row.id}", tuple(row.recipients), row.raw)


def _deliver_one(Session: sessionmaker, connection: Connection, row_id: int, mail: Outgoing, me: str,
                 result: Delivery) -> bool:
    """Send one taken row and record the outcome; False when the connection is done for."""
    try:
        note = connection.send(mail)
    except DeliveryUncertain as err:
        log.warning("outbox row %s: %s", row_id, err)
        _uncertain(Session, row_id, me, str(err))
        result.uncertain, result.error = result.uncertain + 1, err
        return False
    except TransientError as err:
        _retry(Session, row_id, me, err)
        result.retried += 1
        if isinstance(err, ConnectionLost):
            log.warning("mail delivery stopped for this round: %s", err)
            result.error = err
            return False
        return True
    except PermanentError as err:
        _finish(Session, row_id, me, OutboxState.FAILED, "mail_refused", str(err))
        result.refused += 1
        return True
    except Exception as err:  # a bug mid-send: where it stopped is unknown, so never repeat it
        log.exception("sending outbox row %s failed unexpectedly", row_id)
        _uncertain(Session, row_id, me, f"uncertain: {type(err).__name__}: {err}")
        result.uncertain += 1
        result.error = TransientError(f"sending stopped by an internal error: {type(err).__name__}")
        return False
    _finish(Session, row_id, me, OutboxState.SENT, "mail_sent", note, sent_at=utcnow())
    result.sent += 1
    return True


def _finish(Session: sessionmaker, row_id: int, me: str, target: OutboxState, action: str,
            said: str | None, **values: Any) -> None:
    with Session.begin() as session:
        if not move_row(session, row_id, OutboxState.SENDING, target, holder=me, sending_by=None,
                        last_error=said, **values):
            log.error("outbox row %s was moved by someone else while it was being sent", row_id)
            return
        _audit(session, row_id, me, action, answer=said)


def _retry(Session: sessionmaker, row_id: int, me: str, err: TransientError) -> None:
    with Session.begin() as session:
        row = session.get(Outbox, row_id, populate_existing=True)
        assert row is not None
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            if move_row(session, row_id, OutboxState.SENDING, OutboxState.FAILED, holder=me, sending_by=None,
                        attempts=attempts, last_error=f"gave up after {attempts} attempts: {err}"):
                _audit(session, row_id, me, "mail_refused", answer=str(err), attempts=attempts)
            return
        delay = err.retry_after or min(MAX_BACKOFF, 60.0 * 2 ** (attempts - 1))
        when = utcnow() + timedelta(seconds=delay)
        if move_row(session, row_id, OutboxState.SENDING, OutboxState.QUEUED, holder=me, sending_by=None,
                    attempts=attempts, next_attempt_at=when, last_error=str(err)):
            _audit(session, row_id, me, "mail_retry", error=str(err), attempts=attempts,
                   next_attempt_at=when.isoformat())


def _uncertain(Session: sessionmaker, row_id: int, me: str, why: str) -> None:
    """The row stays `sending` for good: recorded as uncertain, never sent again unasked."""
    with Session.begin() as session:
        changed = session.execute(update(Outbox).where(
            Outbox.id == row_id, Outbox.state == OutboxState.SENDING.value, Outbox.sending_by == me)
            .values(last_error=why[:2000], updated_at=utcnow())).rowcount
        if changed:
            _audit(session, row_id, me, "mail_uncertain", error=why)


def mark_abandoned(Session: sessionmaker, transport: Transport, me: str) -> None:
    """Rows left `sending` by a process that is gone: uncertain (audited once), or, for
    a repeatable transport (the outbox folder), simply queued again."""
    with Session() as session:
        left = session.execute(select(Outbox.id, Outbox.sending_by, Outbox.updated_at).where(
            Outbox.state == OutboxState.SENDING.value, Outbox.last_error.is_(None))).all()
    for row_id, holder, since in left:
        if not holder_gone(holder, since, me):
            continue  # a live process is sending it right now
        with Session.begin() as session:
            condition = (Outbox.id == row_id, Outbox.state == OutboxState.SENDING.value, Outbox.last_error.is_(None))
            if transport.repeatable:
                if move_row(session, row_id, OutboxState.SENDING, OutboxState.QUEUED, holder=holder,
                            sending_by=None):
                    _audit(session, row_id, me, "mail_requeued", left_by=holder)
            elif session.execute(update(Outbox).where(*condition).values(last_error=UNCERTAIN)).rowcount:
                _audit(session, row_id, me, "mail_uncertain", left_by=holder, error=UNCERTAIN)


def _audit(session: Session, row_id: int, actor: str, action: str, **detail: object) -> None:
    row = session.get(Outbox, row_id)
    assert row is not None
    audit(session, row.message_id, actor, action, outbox=row_id, kind=row.kind,
          **{key: value for key, value in detail.items() if value is not None})


def unsent(Session: sessionmaker, me: str) -> list[dict]:
    """Every outbox row not sent, oldest first, for staff (`intake outbox`)."""
    with Session() as session:
        rows = session.execute(select(Outbox, Message.receipt).outerjoin(Message, Outbox.message_id == Message.id)
                               .where(Outbox.state.in_([s.value for s in UNSENT])).order_by(Outbox.id)).all()
        return [{
            "id": row.id, "kind": row.kind, "receipt": receipt, "recipient": row.recipient, "subject": row.subject,
            "state": row.state, "uncertain": is_uncertain(row, me), "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
            "last_error": row.last_error, "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        } for row, receipt in rows]


def is_uncertain(row: Outbox, me: str, now: datetime | None = None) -> bool:
    """A `sending` row that nobody is sending any more (at `now`, default the present):
    it may or may not have arrived. The one definition: `intake outbox`, `resend` and
    the digest all ask here."""
    return row.state == OutboxState.SENDING and (row.last_error is not None
                                                 or holder_gone(row.sending_by, row.updated_at, me, now))
