"""What staff commands read (and the digest, and a future web view): one place for
the queries behind `intake submissions`, `show`, `quarantine` and `status`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from intake.daemon.claims import aware
from intake.kernel.errors import ConfigError
from intake.states import State
from intake.store import Message, Outbox, ServiceStatus


def by_receipt(session: Session, receipt: str) -> Message:
    message = session.scalar(select(Message).where(Message.receipt == receipt))
    if message is None:
        raise ConfigError(f"no submission with receipt {receipt}")
    return message


def judged_messages(Session: sessionmaker, unit: str | None = None, verdict: str | None = None) -> list[Message]:
    """Every message that has been judged, oldest first; optionally one unit's or one verdict's."""
    with Session() as session:
        query = select(Message).where(Message.report.is_not(None)).order_by(Message.id)
        if unit:
            query = query.where(Message.unit_name == unit)
        if verdict:
            query = query.where(Message.verdict == verdict)
        return list(session.scalars(query).all())


def submission(message: Message) -> dict:
    """The contract's object for one submission (`intake submissions --json`)."""
    report = message.report or {}
    return {
        "receipt": message.receipt,
        "message_id": message.message_id,
        "from": message.from_address,
        "received_at": aware(message.received_at).isoformat() if message.received_at else None,
        "verdict": message.verdict,
        "unit": message.unit_name,
        "projects": [{"name": p["name"], "verdict": p["verdict"]} for p in report.get("projects", [])],
    }


def details(Session: sessionmaker, receipt: str) -> dict:
    """One submission with its state, attempts, staff decision and findings (`intake show`)."""
    with Session() as session:
        message = by_receipt(session, receipt)
        data = submission(message)
        data.update({
            "state": message.state, "attempts": message.attempts, "last_error": message.last_error,
            "fetch_attempts": message.fetch_attempts, "next_attempt_at": _iso(message.next_attempt_at),
            "override": message.override, "override_note": message.override_note,
            "subject": message.subject, "from_header": message.from_header,
            "findings": (message.report or {}).get("findings", []),
            # each link's outcome: files fetched, the sender's problem, or ours (why, the listing)
            "fetch": (message.report or {}).get("fetch"),
            "reply": _reply_of(session, message.id),
        })
    return data


def outline(Session: sessionmaker, message_id: int) -> tuple[str | None, str | None, str | None, str | None]:
    """A message's receipt, sender, state and verdict (a progress line of `intake poll`)."""
    with Session() as session:
        message = session.get(Message, message_id)
        if message is None:
            return None, None, None, None
        return message.receipt, message.from_address, message.state, message.verdict


def _iso(moment: datetime | None) -> str | None:
    return aware(moment).isoformat() if moment is not None else None


def fetching(session: Session) -> list[dict]:
    """Messages whose links are being fetched or wait for the next attempt, and why."""
    rows = session.scalars(select(Message).where(Message.state == State.FETCHING.value).order_by(Message.id)).all()
    return [{"receipt": m.receipt, "from": m.from_address, "fetch_attempts": m.fetch_attempts,
             "next_attempt_at": _iso(m.next_attempt_at), "last_error": m.last_error} for m in rows]


def _reply_of(session: Session, message_id: int) -> dict | None:
    """Where the message's reply stands (`intake outbox` has the whole list)."""
    row = session.scalar(select(Outbox).where(Outbox.message_id == message_id))
    if row is None:
        return None
    return {"state": row.state, "recipient": row.recipient, "last_error": row.last_error,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None}


def quarantined(Session: sessionmaker) -> list[dict]:
    """Messages that failed permanently or too often, for staff (`intake quarantine`)."""
    with Session() as session:
        rows = session.scalars(select(Message).where(Message.state == State.QUARANTINED.value)
                               .order_by(Message.id)).all()
        return [{"receipt": m.receipt, "from": m.from_address, "subject": m.subject, "attempts": m.attempts,
                 "last_error": m.last_error} for m in rows]


def status(Session: sessionmaker) -> dict:
    """The last poll's and the last mail delivery's outcome, and how many messages are in
    each state (`intake status`)."""
    with Session() as session:
        states = dict(session.execute(select(Message.state, func.count()).group_by(Message.state)).all())
        parts = {row.name: {"ok": row.ok, "detail": row.detail, "at": row.at.isoformat(),
                            "last_ok_at": row.last_ok_at.isoformat() if row.last_ok_at else None}
                 for row in session.scalars(select(ServiceStatus))}
        waiting = fetching(session)
    return {"mailbox": parts.get("mailbox"), "smtp": parts.get("smtp"), "states": states, "fetching": waiting}
