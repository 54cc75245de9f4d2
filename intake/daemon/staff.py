"""What staff do to a message: judge it again (reprocess), decide it (override), or
deliver its reply again after fixing what stopped it (resend). Each takes the message
row's lock first, as the workers do, and is an audit event."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import sessionmaker

from intake.daemon.claims import locked
from intake.daemon.queries import by_receipt
from intake.daemon.transitions import move
from intake.kernel.errors import ConfigError
from intake.states import OutboxState, State
from intake.store import FindingRow, Message, Outbox, Project, StoredFile, audit, utcnow


def reprocess(Session: sessionmaker, receipt: str, actor: str = "staff") -> Message:
    """Replay a message from the start (a quarantined one, say); never a second reply."""
    with Session.begin() as session:
        message = locked(session, by_receipt(session, receipt).id)
        session.execute(delete(FindingRow).where(FindingRow.message_id == message.id))
        session.execute(delete(StoredFile).where(StoredFile.message_id == message.id))
        session.execute(update(Project).where(Project.superseded_by.in_(
            select(Project.id).where(Project.message_id == message.id))).values(superseded_by=None))
        session.execute(delete(Project).where(Project.message_id == message.id))
        # a reply not yet sent holds the old judgement: it goes, and the new one is
        # composed after judging again; a sent one stays and is never repeated
        dropped = session.execute(delete(Outbox).where(Outbox.message_id == message.id,
                                                       Outbox.state != OutboxState.SENT.value))
        message.report, message.verdict = None, None
        message.attempts, message.next_attempt_at = 0, None
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


def resend(Session: sessionmaker, receipt: str, actor: str = "staff") -> Message:
    """Deliver a reply that was queued but not sent (the transport failed, the message
    was quarantined) at the next round, after staff fixed the cause. The reply is
    composed again then, so it says what holds now (a staff override since, say). A
    reply that was sent is never sent again."""
    with Session.begin() as session:
        message = locked(session, by_receipt(session, receipt).id)
        outbox = session.scalar(select(Outbox).where(Outbox.message_id == message.id))
        if outbox is None:
            raise ConfigError(f"{receipt}: no reply was queued for this message; nothing to resend")
        if outbox.state == OutboxState.SENT:
            raise ConfigError(f"{receipt}: its reply was sent already; it is never sent twice")
        session.delete(outbox)  # composed again at delivery, from the judgement as it is now
        message.attempts, message.next_attempt_at = 0, utcnow()
        move(session, message, State.FAILED, actor, staff=True, action="resend")
    with Session() as session:
        return session.get(Message, message.id)
