"""The delivery pass: every due queued outbox row (replies, digest, alerts) is sent over
one connection per batch, after the worker has drained the queue.

Exactly once: a row is set ``sending`` and COMMITTED before its SMTP transaction, and
``sent`` after the server's answer. A crash (or a server that never answers the end of
the data) in between leaves it ``sending``: it may have arrived, so no pass sends it
again; it is marked uncertain (audited), listed by `intake outbox`, and staff may
`intake resend` it. Only the outbox folder, where a repeat rewrites one file, sends
such a row again, and only a row the folder took (``via``). A 4xx or a dropped
connection puts the row back to ``queued`` with a backoff (the batch ends when the
connection is gone); a 5xx makes it ``failed`` with the server's answer, and the batch
goes on, unless the server refused the same way several mails in a row. A refusal of
our sender (MAIL FROM) or a connection that was unusable before the mail began puts
the row back uncharged and ends the batch; after a 4xx to MAIL FROM on a connection
that carried mail already (163's per-connection limit) a new connection takes the rest.
Recipients refused for now while others took the mail: the row is queued again for
them alone (its note names who has it), so nobody gets a second copy.

Each pass has its own id (the worker's id and a nonce): a second pass in the same
process (the digest's, from another thread) never takes the first one's rows for
abandoned.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.daemon.claims import holder_gone
from intake.logs import about
from intake.kernel.errors import IntakeError, PermanentError, TransientError
from intake.notifier.transport import (
    Connection, ConnectionLost, DeliveryUncertain, Outgoing, Refusals, SenderRefused, Transport)
from intake.states import OUTBOX_MOVES, UNSENT, OutboxState
from intake.store import Message, Outbox, audit, set_status, status_detail, utcnow

log = logging.getLogger("intake")
BATCH = 50  # mails per connection; more due rows take further connections in the same pass
MAX_ATTEMPTS = 10  # transient failures of one mail before it is given up as failed
MAX_BACKOFF = 3600.0  # 1, 2, 4 … minutes, at most an hour: about four hours over ten tries
SAME_REFUSALS = 3  # the same 5xx to this many mails in a row (554 DT:SPM, say) is about us: the batch ends
NEXT, STOP, RECONNECT = "next", "stop", "reconnect"  # what a batch does after one mail
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


@dataclass
class _Batch:
    """One connection's run: how many mails it carried, the last permanent refusals."""

    carried: int = 0
    refusals: list[str] = field(default_factory=list)  # the code and first word of each, in a row


def pass_id(me: str) -> str:
    """This pass's holder id: the worker's id and a nonce (see claims.holder_gone)."""
    return f"{me}#{secrets.token_hex(4)}"


def deliver_pending(Session: sessionmaker, transport: Transport, me: str,
                    should_stop: Callable[[], bool] = lambda: False) -> Delivery:
    """Send every due queued row, BATCH per connection; record how the transport fared.
    `me` is the worker's id; the pass holds its rows under its own pass_id(me)."""
    result = Delivery()
    me = pass_id(me)
    mark_abandoned(Session, transport, me)
    tried: set[int] = set()
    while not should_stop():
        due = [row_id for row_id in _due(Session) if row_id not in tried]
        if not due:
            break
        tried.update(due)
        outcome, put_back = _batch(Session, transport, me, due, result, should_stop)
        tried.difference_update(put_back)  # untouched by a server that refused this connection only
        if transport.status_name:
            with Session.begin() as session:
                error = result.error
                set_status(session, transport.status_name, error is None,
                           status_detail(error) if error else result.summary())
        if outcome == STOP:
            break
    return result


def _due(Session: sessionmaker) -> list[int]:
    with Session() as session:
        return list(session.scalars(
            select(Outbox.id).where(Outbox.state == OutboxState.QUEUED.value,
                                    or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= utcnow()))
            .order_by(Outbox.id).limit(BATCH)))


def _batch(Session: sessionmaker, transport: Transport, me: str, due: list[int], result: Delivery,
           should_stop: Callable[[], bool]) -> tuple[str, list[int]]:
    """One connection for `due`: NEXT when it went through them, STOP when nothing more
    is to be tried this pass, RECONNECT when a new connection may take the rest; and the
    row put back untried for that new connection."""
    batch = _Batch()
    try:
        with transport.open() as connection:
            for row_id in due:
                if should_stop():
                    return STOP, []
                mail = _take(Session, row_id, me, transport.via)
                if mail is None:
                    continue
                outcome = _deliver_one(Session, connection, row_id, mail, me, result, batch)
                if outcome != NEXT:
                    return outcome, [row_id] if outcome == RECONNECT else []
    except IntakeError as err:  # connecting or logging in failed: no row was taken
        log.warning("mail not delivered: %s", err)
        result.error = err
        return STOP, []
    return NEXT, []


def _take(Session: sessionmaker, row_id: int, me: str, via: str) -> Outgoing | None:
    """Set the row `sending` (ours, through `via`) and commit, before a byte of it goes out."""
    with Session.begin() as session:
        if not move_row(session, row_id, OutboxState.QUEUED, OutboxState.SENDING, due=True,
                        sending_by=me, via=via, last_error=None):
            return None  # another pass took it, or staff dropped it meanwhile
        row = session.get(Outbox, row_id, populate_existing=True)
        assert row is not None
        receipt = session.scalar(select(Message.receipt).where(Message.id == row.message_id)) if row.message_id else None
        return Outgoing(f"{receipt or row.kind}-{row.id}", tuple(row.recipients), row.raw)


def _deliver_one(Session: sessionmaker, connection: Connection, row_id: int, mail: Outgoing, me: str,
                 result: Delivery, batch: _Batch) -> str:
    """Send one taken row and record the outcome; what the batch does next."""
    try:
        refusals = connection.send(mail)
    except DeliveryUncertain as err:
        log.warning("outbox row %s: %s", row_id, err)
        _uncertain(Session, row_id, me, str(err))
        result.uncertain, result.error = result.uncertain + 1, err
        return STOP
    except ConnectionLost as err:
        return _connection_lost(Session, row_id, me, err, result, batch)
    except TransientError as err:
        _retry(Session, row_id, me, err)
        result.retried += 1
        return NEXT
    except PermanentError as err:
        _finish(Session, row_id, me, OutboxState.FAILED, "mail_refused", str(err))
        result.refused += 1
        return _after_refusal(str(err), result, batch)
    except Exception as err:  # a bug mid-send: where it stopped is unknown, so never repeat it
        log.exception("sending outbox row %s failed unexpectedly", row_id)
        _uncertain(Session, row_id, me, f"uncertain: {type(err).__name__}: {err}")
        result.uncertain += 1
        result.error = TransientError(f"sending stopped by an internal error: {type(err).__name__}")
        return STOP
    if refusals is not None and refusals.later:
        _narrow(Session, row_id, me, refusals)
    else:
        _finish(Session, row_id, me, OutboxState.SENT, "mail_sent", refusals.note if refusals else None, sent_at=utcnow())
    result.sent, batch.carried, batch.refusals = result.sent + 1, batch.carried + 1, []
    return NEXT


def _connection_lost(Session: sessionmaker, row_id: int, me: str, err: ConnectionLost, result: Delivery,
                     batch: _Batch) -> str:
    """The connection cannot carry the mail in hand: charged only when the mail may be
    at fault; a 4xx to our sender after this connection carried mail: a new one."""
    if err.charged:
        _retry(Session, row_id, me, err)
        result.retried += 1
    else:
        _put_back(Session, row_id, me, err)
    if isinstance(err, SenderRefused) and not err.permanent and batch.carried:
        log.info("a new connection for the rest: %s", err)
        return RECONNECT
    log.warning("mail delivery stopped for this round: %s", err)
    result.error = err
    return STOP


def _after_refusal(said: str, result: Delivery, batch: _Batch) -> str:
    """STOP when the server refused the data of SAME_REFUSALS mails in a row alike (the
    code and its first word: 554 DT:SPM); a recipient's refusal says nothing about us."""
    if re.match(r"[^\s:]+@[^\s:]+: ", said):
        batch.refusals = []
        return NEXT
    batch.refusals = refusals = [*batch.refusals, " ".join(said.split()[:2])]
    if len(refusals) >= SAME_REFUSALS and len(set(refusals[-SAME_REFUSALS:])) == 1:
        result.error = TransientError(f"mail delivery paused for this round: the server refused "
                                      f"{SAME_REFUSALS} mails in a row with {refusals[-1]}")
        log.warning("%s", result.error)
        return STOP
    return NEXT


def _finish(Session: sessionmaker, row_id: int, me: str, target: OutboxState, action: str,
            said: str | None, **values: Any) -> None:
    with Session.begin() as session:
        if not move_row(session, row_id, OutboxState.SENDING, target, holder=me, sending_by=None,
                        last_error=said, **values):
            log.error("outbox row %s was moved by someone else while it was being sent", row_id)
            return
        _audit(session, row_id, me, action, answer=said)


def _narrow(Session: sessionmaker, row_id: int, me: str, refusals: Refusals) -> None:
    """Some recipients took the mail, some refused it for now: the row is queued again
    (charged, with backoff) for those alone; its note and the audit say who has it."""
    with Session.begin() as session:
        row = session.get(Outbox, row_id, populate_existing=True)
        assert row is not None
        attempts = row.attempts + 1
        note = f"sent to {', '.join(refusals.accepted)}; refused: {refusals.note}"[:2000]
        target, when = OutboxState.QUEUED, utcnow() + timedelta(seconds=_backoff(attempts))
        if attempts >= MAX_ATTEMPTS:
            target, note = OutboxState.FAILED, f"gave up after {attempts} attempts: {note}"
        if move_row(session, row_id, OutboxState.SENDING, target, holder=me, sending_by=None, attempts=attempts,
                    recipient=", ".join(refusals.later), last_error=note,
                    next_attempt_at=when if target == OutboxState.QUEUED else None):
            _audit(session, row_id, me, "mail_sent", to=list(refusals.accepted), answer=refusals.note,
                   again_to=list(refusals.later) if target == OutboxState.QUEUED else None)


def _backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 60.0 * 2 ** (attempts - 1))


def _put_back(Session: sessionmaker, row_id: int, me: str, err: ConnectionLost) -> None:
    """Queued again, uncharged: nothing of it was at fault (after `retry_after`, if any)."""
    when = utcnow() + timedelta(seconds=err.retry_after) if err.retry_after else None
    with Session.begin() as session:
        if move_row(session, row_id, OutboxState.SENDING, OutboxState.QUEUED, holder=me, sending_by=None,
                    next_attempt_at=when, last_error=str(err)[:2000]):
            _audit(session, row_id, me, "mail_deferred", error=str(err), next_attempt_at=when and when.isoformat())


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
        delay = err.retry_after or _backoff(attempts)
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
    """Rows left `sending` by a process that is gone: uncertain (audited once), or, when
    this transport took it and is repeatable (the outbox folder), simply queued again. A
    row SMTP took (or one from before `via` was recorded) is never the folder's to redo."""
    with Session() as session:
        left = session.execute(select(Outbox.id, Outbox.sending_by, Outbox.updated_at, Outbox.via).where(
            Outbox.state == OutboxState.SENDING.value, Outbox.last_error.is_(None))).all()
    for row_id, holder, since, via in left:
        if not holder_gone(holder, since, me):
            continue  # a live process is sending it right now
        with Session.begin() as session:
            condition = (Outbox.id == row_id, Outbox.state == OutboxState.SENDING.value, Outbox.last_error.is_(None))
            if transport.repeatable and via == transport.via:
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
    _log_row(session, row, action, detail)


LOGGED = {"mail_sent": (logging.INFO, "sent"), "mail_requeued": (logging.INFO, "queued again (its sender stopped)"),
          "mail_retry": (logging.WARNING, "to be retried"), "mail_deferred": (logging.WARNING, "put back for later"),
          "mail_refused": (logging.WARNING, "refused"), "mail_uncertain": (logging.WARNING, "uncertain")}


def _log_row(session: Session, row: Outbox, action: str, detail: dict[str, object]) -> None:
    """One log line per outcome of an outgoing mail, with its message's receipt and Message-ID."""
    level, outcome = LOGGED.get(action, (logging.INFO, action))
    message = session.get(Message, row.message_id) if row.message_id else None
    said = detail.get("answer") or detail.get("error")
    log.log(level, "%s (outbox %s) to %s %s%s", row.kind, row.id, row.recipient, outcome,
            f": {said}" if said else "", extra=about(message.receipt if message else None,
                                                     message.message_id if message else None))


def unsent(Session: sessionmaker, me: str) -> list[dict]:
    """Every outbox row not sent, oldest first, for staff (`intake outbox`); and every
    sent one that some recipients refused (their addresses and answers in last_error)."""
    partly = (Outbox.state == OutboxState.SENT.value) & Outbox.last_error.is_not(None)
    with Session() as session:
        rows = session.execute(select(Outbox, Message.receipt).outerjoin(Message, Outbox.message_id == Message.id)
                               .where(Outbox.state.in_([s.value for s in UNSENT]) | partly)
                               .order_by(Outbox.id)).all()
        return [{
            "id": row.id, "kind": row.kind, "receipt": receipt, "recipient": row.recipient, "subject": row.subject,
            "state": row.state, "via": row.via, "uncertain": is_uncertain(row, me), "attempts": row.attempts,
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
