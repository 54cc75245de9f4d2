"""The replying stage: a reply is composed and saved as an outbox row (every outgoing
mail is a row before it is sent, one per message at most), then handed to the
transport. Some messages get no reply at all, and the audit says why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from intake.daemon.claims import aware, locked
from intake.daemon.transitions import LostClaim, move
from intake.kernel.verdicts import Verdict
from intake.notifier.replies import compose_reply
from intake.notifier.transport import Outgoing
from intake.states import OutboxState, State
from intake.settings import Settings
from intake.store import Message, Outbox, utcnow

if TYPE_CHECKING:  # the worker calls this stage; typing only, no import cycle
    from intake.daemon.worker import Worker


def reply(worker: Worker, message_id: int) -> None:
    """Queue the reply of a judged message (or decide that it gets none), then deliver."""
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was taken over")
        outbox = session.scalar(select(Outbox).where(Outbox.message_id == message_id))
        if outbox is not None and outbox.state == OutboxState.SENT:
            # answered before (a reprocessed message): never a second reply
            move(session, message, State.DONE, worker.me, release=True, replied=False, already_answered=True)
            return
        if outbox is None:
            reason = no_reply_reason(message, worker.settings)
            if reason:
                move(session, message, State.DONE, worker.me, release=True, replied=False, reason=reason)
                return
            composed = compose_reply(message, worker.settings, worker.policy)
            session.add(Outbox(message_id=message_id, recipient=message.from_address,
                               subject=composed["Subject"], raw=composed.as_string()))
            move(session, message, State.REPLYING, worker.me, action="reply_queued")
        elif message.state != State.REPLYING:
            move(session, message, State.REPLYING, worker.me, action="reply_requeued")  # a retry
    deliver(worker, message_id)


def no_reply_reason(message: Message, settings: Settings) -> str | None:
    """Why this message gets no reply, or None when it gets one."""
    if message.verdict == Verdict.IGNORED:
        return "ignored"
    if not message.from_address:
        # several addresses, or none that parses: never answered to a guess;
        # `intake submissions` lists it for staff with the From header as written
        return "no_sender_address"
    since = settings.reply_since
    if since and message.received_at and aware(message.received_at) < since:
        return "before_reply_since"
    return None


def deliver(worker: Worker, message_id: int) -> None:
    """Hand the queued reply to the transport. The row stays locked meanwhile, so staff
    cannot reprocess the message half-way; the outbox row's key names the mail, so a
    retried delivery of the same row is the same mail."""
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.claimed_by != worker.me or message.state != State.REPLYING:
            raise LostClaim(f"message {message_id} was reprocessed or taken over")
        outbox = session.scalar(select(Outbox).where(Outbox.message_id == message_id))
        if outbox.state != OutboxState.SENT:
            worker.transport.send(Outgoing(f"{message.receipt}-{outbox.id}", outbox.recipient, outbox.raw))
            outbox.state = OutboxState.SENT.value
            outbox.sent_at = utcnow()
        move(session, message, State.DONE, worker.me, release=True, replied=True)
