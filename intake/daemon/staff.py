"""What staff do to a message: judge it again (reprocess), decide it (override), or
send its reply again after fixing what stopped it (resend). Each takes the message
row's lock first, as the workers do, and is an audit event."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import sessionmaker

from intake.daemon.claims import locked, worker_id
from intake.daemon.delivery import is_uncertain, move_row
from intake.daemon.queries import by_receipt
from intake.daemon.replying import compose
from intake.daemon.transitions import move
from intake.kernel.errors import ConfigError
from intake.kernel.policy import Policy
from intake.settings import Settings
from intake.states import OutboxState, State
from intake.store import FindingRow, Message, Outbox, Project, StoredFile, audit, utcnow

# a reply that went, or may have gone (`sending`), is never dropped or composed anew by a reprocess
KEPT = (OutboxState.SENT.value, OutboxState.SENDING.value)


def reprocess(Session: sessionmaker, receipt: str, actor: str = "staff") -> Message:
    """Replay a message from the start (a quarantined one, say); never a second reply."""
    with Session.begin() as session:
        message = locked(session, by_receipt(session, receipt).id)
        session.execute(delete(FindingRow).where(FindingRow.message_id == message.id))
        session.execute(delete(StoredFile).where(StoredFile.message_id == message.id))
        session.execute(update(Project).where(Project.superseded_by.in_(
            select(Project.id).where(Project.message_id == message.id))).values(superseded_by=None))
        session.execute(delete(Project).where(Project.message_id == message.id))
        # a reply not yet sent (queued, failed, held) holds the old judgement: it goes,
        # and the new one is decided after judging again; a sent one, or one being sent,
        # stays and is never repeated
        dropped = session.execute(delete(Outbox).where(Outbox.message_id == message.id, Outbox.state.not_in(KEPT)))
        message.report, message.verdict = None, None
        message.attempts, message.next_attempt_at, message.fetch_attempts = 0, None, 0
        move(session, message, State.RECEIVED, actor, staff=True, action="reprocess",
             unsent_reply_dropped=bool(dropped.rowcount))
    with Session() as session:
        return session.get(Message, message.id)


def override(Session: sessionmaker, receipt: str, verdict: str, note: str, actor: str = "staff") -> Message:
    """A staff decision: it stands over any later judgement of the same message."""
    with Session.begin() as session:
        message = locked(session, by_receipt(session, receipt).id)
        message.override = verdict
        message.override_note = note
        message.verdict = verdict
        audit(session, message.id, actor, "override", verdict=verdict, note=note)
        return message


def resend(Session: sessionmaker, receipt: str, settings: Settings, policy: Policy, actor: str = "staff") -> Outbox:
    """Queue a reply again that was not sent: refused by the server (failed), held over
    the per-sender cap, or uncertain (left `sending`: it may have arrived, staff decide).
    The reply is composed again, so it says what holds now (a staff override since,
    say); the next delivery pass sends it. A reply that was sent is never sent again."""
    with Session.begin() as session:
        message = locked(session, by_receipt(session, receipt).id)
        row = session.scalar(select(Outbox).where(Outbox.message_id == message.id))
        if row is None:
            raise ConfigError(f"{receipt}: no reply was queued for this message; nothing to resend")
        _check_resendable(receipt, row)
        source = OutboxState(row.state)
        composed = compose(message, settings, policy)
        values: dict[str, Any] = {"raw": composed.as_string(), "subject": str(composed["Subject"]),
                  "recipient": message.from_address or row.recipient}
        if source == OutboxState.QUEUED:  # already waiting: due at once
            waiting = session.execute(update(Outbox).where(Outbox.id == row.id, Outbox.state == source.value)
                                      .values(next_attempt_at=None, attempts=0, updated_at=utcnow(), **values))
            if cast(CursorResult, waiting).rowcount != 1:  # a delivery pass took it meanwhile
                raise ConfigError(f"{receipt}: its reply changed state meanwhile; look at `intake outbox` again")
        elif not move_row(session, row.id, source, OutboxState.QUEUED, holder=row.sending_by, sending_by=None,
                          attempts=0, next_attempt_at=None, last_error=None, **values):
            raise ConfigError(f"{receipt}: its reply changed state meanwhile; look at `intake outbox` again")
        audit(session, message.id, actor, "resend", outbox=row.id, was=source.value, staff=True)
        session.flush()
    with Session() as session:
        found = session.get(Outbox, row.id)
        assert found is not None
        return found


def resend_mail(Session: sessionmaker, row_id: int, settings: Settings, policy: Policy,
                actor: str = "staff") -> Outbox:
    """`intake resend ID` with an outbox row's number: a reply goes as by its receipt;
    staff mail (the digest, an alert) is queued again as it was composed."""
    with Session() as session:
        row = session.get(Outbox, row_id)
        if row is None:
            raise ConfigError(f"no outgoing mail numbered {row_id}; `intake outbox` lists them")
        receipt = session.scalar(select(Message.receipt).where(Message.id == row.message_id)) if row.message_id else None
    if receipt:
        return resend(Session, receipt, settings, policy, actor)
    with Session.begin() as session:
        row = session.get(Outbox, row_id, populate_existing=True)
        assert row is not None
        _check_resendable(f"mail {row_id}", row)
        source = OutboxState(row.state)
        if source != OutboxState.QUEUED and not move_row(
                session, row_id, source, OutboxState.QUEUED, holder=row.sending_by, sending_by=None,
                attempts=0, next_attempt_at=None, last_error=None):
            raise ConfigError(f"mail {row_id}: it changed state meanwhile; look at `intake outbox` again")
        row.next_attempt_at = None
        audit(session, None, actor, "resend", outbox=row_id, kind=row.kind, was=source.value, staff=True)
    with Session() as session:
        found = session.get(Outbox, row_id)
        assert found is not None
        return found


def _check_resendable(receipt: str, row: Outbox) -> None:
    if row.state == OutboxState.SENT:
        raise ConfigError(f"{receipt}: its reply was sent already; it is never sent twice")
    if row.state == OutboxState.SENDING and not is_uncertain(row, worker_id()):
        raise ConfigError(f"{receipt}: its reply is being sent right now ({row.sending_by}); "
                          "if it stays so, `intake outbox` shows it as uncertain and it can be resent then")
