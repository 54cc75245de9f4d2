"""The outbox queue: every outgoing mail is a row before it is sent.

Written here by the digest branch with exactly the shared design's signature, only so
that staff mail can be queued and tested; the smtp branch owns this module (with the
delivery pass and the ``sending`` state) and its version replaces this one at merge.
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.states import OutboxState
from intake.store import Outbox


def queue_mail(session: Session, mail: EmailMessage, *, kind: str, recipients: list[str],
               dedupe_key: str | None = None, message_id: int | None = None) -> Outbox | None:
    """Add a queued outbox row for `mail` in the caller's transaction. With a dedupe_key
    that already exists, add nothing and return None (compare-and-set: a unique
    constraint, inside a SAVEPOINT, so two workers/schedulers cannot both win)."""
    row = Outbox(kind=kind, dedupe_key=dedupe_key, message_id=message_id, recipient=", ".join(recipients),
                 subject=str(mail["Subject"] or ""), raw=mail.as_string(), state=OutboxState.QUEUED.value)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None  # another worker queued the same mail first
    return row
