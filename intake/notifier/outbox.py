"""Queueing outgoing mail: every mail is an outbox row before anything sends it.

Replies are queued by the daemon's replying stage, the digest and alerts by their
schedulers; the delivery pass (``intake.daemon.delivery``) sends every due row over one
connection per batch.
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.states import OutboxState
from intake.store import Outbox

KINDS = ("reply", "digest", "alert")


def queue_mail(session: Session, mail: EmailMessage, *, kind: str, recipients: list[str],
               dedupe_key: str | None = None, message_id: int | None = None,
               state: OutboxState = OutboxState.QUEUED, note: str | None = None) -> Outbox | None:
    """Add a queued outbox row for `mail` in the caller's transaction. With a dedupe_key
    that already exists, add nothing and return None (compare-and-set: a unique
    constraint, inside a SAVEPOINT, so two workers/schedulers cannot both win).

    ``state=HELD`` (with a ``note`` saying why) records a mail that is not to be sent."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    if not recipients:
        raise ValueError("a mail needs at least one recipient")
    row = Outbox(kind=kind, recipient=", ".join(recipients), subject=str(mail.get("Subject", "")),
                 raw=mail.as_string(), dedupe_key=dedupe_key, message_id=message_id,
                 state=state.value, attempts=0, last_error=note)
    if dedupe_key is None:
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():  # on a clash only the savepoint is rolled back
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row
