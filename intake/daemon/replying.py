"""The replying stage: decide whether a judged message is answered, and queue the
reply as an outbox row (one per message at most: a unique key). The message is DONE in
the same transaction; delivering the row is the delivery pass's work
(``intake.daemon.delivery``), with its own retries.

Loop safety: no reply to ignored mail (auto-replies, bounces, read receipts, lists),
to mail with no single sender, to mail received before INTAKE_REPLY_SINCE, to our own
addresses or to staff; at most INTAKE_REPLY_LIMIT replies to one address in 24 hours
(the rest are recorded as `held` rows, for the digest and `intake resend`)."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from intake.daemon.claims import aware, is_postgresql, locked
from intake.daemon.transitions import LostClaim, move
from intake.kernel.policy import Policy
from intake.kernel.verdicts import Verdict
from intake.notifier.outbox import queue_mail
from intake.notifier.replies import compose_reply
from intake.settings import Settings
from intake.states import OutboxState, State
from intake.store import Message, Outbox, utcnow

if TYPE_CHECKING:  # the worker calls this stage; typing only, no import cycle
    from intake.daemon.worker import Worker

CAP_WINDOW = timedelta(hours=24)
# rows that count against the per-sender cap: replies that went or are going out
COUNTED = (OutboxState.QUEUED.value, OutboxState.SENDING.value, OutboxState.SENT.value)


def reply(worker: Worker, message_id: int) -> None:
    """Queue the reply of a judged message (or hold it, or decide that it gets none)."""
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was taken over")
        existing = session.scalar(select(Outbox).where(Outbox.message_id == message_id))
        if existing is not None:
            # answered before (a reprocessed message), or its reply has a life of its
            # own already (being sent, uncertain): never a second reply
            move(session, message, State.DONE, worker.me, release=True, replied=False,
                 already_answered=existing.state == OutboxState.SENT, outbox=existing.id, reply=existing.state)
            return
        reason = no_reply_reason(message, worker.settings)
        if reason:
            move(session, message, State.DONE, worker.me, release=True, replied=False, reason=reason)
            return
        address = message.from_address or ""
        composed = compose(message, worker.settings, worker.policy)
        if over_cap(session, address, worker.settings.reply_limit):
            note = (f"held: {worker.settings.reply_limit} replies went to {address} in the last 24 hours "
                    "(INTAKE_REPLY_LIMIT); `intake resend` releases it")
            held = queue_mail(session, composed, kind="reply", recipients=[address], message_id=message_id,
                              state=OutboxState.HELD, note=note)
            assert held is not None  # no dedupe key: always added
            move(session, message, State.DONE, worker.me, release=True, action="reply_held", replied=False,
                 reason="sender_cap", outbox=held.id, limit=worker.settings.reply_limit)
            return
        row = queue_mail(session, composed, kind="reply", recipients=[address], message_id=message_id)
        assert row is not None
        move(session, message, State.DONE, worker.me, release=True, action="reply_queued", outbox=row.id)


def compose(message: Message, settings: Settings, policy: Policy) -> EmailMessage:
    """The reply as it should read now (the one call of the reply's wording)."""
    return compose_reply(message, settings, policy)


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
    address = message.from_address.lower()
    if address in own_addresses(settings):
        return "own_address"  # our own mail come back: answering it could start a loop
    if address in {a.lower() for a in settings.staff_emails}:
        return "staff_address"
    return None


def own_addresses(settings: Settings) -> set[str]:
    """The collection's own addresses, case-blind: the mailbox, the SMTP login, the From."""
    named = [settings.imap_user, settings.smtp_user, parseaddr(settings.smtp_from or "")[1]]
    return {address.strip().lower() for address in named if address and "@" in address}


def over_cap(session: Session, address: str, limit: int) -> bool:
    """True when `limit` replies went (or are going) to `address` in the last 24 hours."""
    if is_postgresql(session):  # two workers answering one sender count one after the other
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"reply-cap:{address}"})
    sent = session.scalar(select(func.count(Outbox.id)).where(
        Outbox.kind == "reply", Outbox.recipient == address, Outbox.state.in_(COUNTED),
        Outbox.created_at >= utcnow() - CAP_WINDOW))
    return (sent or 0) >= limit
