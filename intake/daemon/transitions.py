"""The one function that moves a message: it checks the move against the table in
``intake.states``, checks that the claim is still the mover's, sets the state, keeps
(renewing the lease) or releases the claim, and writes the audit event."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from intake.logs import about
from intake.states import State, allowed
from intake.store import Message, audit, utcnow


log = logging.getLogger("intake")


class LostClaim(Exception):
    """Another worker (or staff) took this message over meanwhile: stop, save nothing."""


class IllegalMove(RuntimeError):
    """A move the state table does not allow: a bug in the daemon, never the sender's."""


def move(session: Session, message: Message, target: State, actor: str, *, release: bool = False, staff: bool = False,
         action: str | None = None, **detail: object) -> None:
    """Move ``message`` to ``target`` inside the caller's transaction (the row locked by
    ``claims.locked``). A worker must hold the claim; ``staff=True`` is a staff action."""
    if not staff and message.claimed_by != actor:
        raise LostClaim(f"message {message.id} is no longer claimed by {actor}")
    source = State(message.state)
    if not allowed(source, target, staff=staff):
        raise IllegalMove(f"message {message.id}: {source} -> {target} is not a move the daemon makes")
    message.state = target.value
    if release or staff:
        message.claimed_by = None
    else:
        message.claimed_at = utcnow()  # each step renews the lease
    audit(session, message.id, actor, action or target.value, **detail)
    log.info("message %s: %s -> %s%s", message.id, source.value, target.value,
             f" ({action})" if action and action != target.value else "",
             extra=about(message.receipt, message.message_id))
