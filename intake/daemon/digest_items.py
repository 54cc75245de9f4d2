"""What the digest asks staff to act on: messages waiting for a person (needs review,
quarantined, unanswered), each with its reason and the commands that act on it, and
outgoing mail that did not go out (failed, held over the per-sender cap, stuck in
sending).

The outbox states ``failed``, ``held`` and ``sending`` belong to the SMTP delivery
(the notifier issue's smtp part); they are matched here by name.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.daemon.claims import aware
from intake.notifier.digest_data import Attention, ReplyFailure
from intake.states import OutboxState, State
from intake.store import FindingRow, Message, Outbox

FAILED, HELD, SENDING = "failed", "held", "sending"
STUCK_AFTER = timedelta(minutes=15)  # a row in `sending` this long: its worker died mid-send
REASON_CHARS = 300


def attention(session: Session, messages: list[Message]) -> list[Attention]:
    """Quarantined, then needs-review, then unanswered messages, oldest first."""
    unsent = {row.message_id: row for row in session.scalars(
        select(Outbox).where(Outbox.message_id.is_not(None), Outbox.state != OutboxState.SENT.value))}
    items: list[Attention] = []
    for message in messages:
        item = _item(session, message, unsent.get(message.id))
        if item is not None:
            items.append(item)
    order = {"已隔离": 0, "待人工核对": 1, "未回复": 2}
    return sorted(items, key=lambda item: order[item.kind])


def _item(session: Session, message: Message, unsent: Outbox | None) -> Attention | None:
    receipt = message.receipt or str(message.id)
    show = f"intake show {receipt}"
    resend = [f"intake resend {receipt}"] if unsent is not None else []

    def item(kind: str, reason: str, commands: list[str]) -> Attention:
        return Attention(kind=kind, receipt=receipt, unit=message.unit_name, sender=message.from_address,
                         received_at=message.received_at, reason=_short(reason), commands=commands)

    if message.state == State.QUARANTINED:
        return item("已隔离", message.last_error or "多次处理失败",
                    [show, f"intake reprocess {receipt}", *resend])
    if message.verdict == "needs_review":
        return item("待人工核对", _review_reason(session, message.id),
                    [show, f"intake reprocess {receipt}", f"intake override {receipt} --accept --note …"])
    if message.verdict in (None, "ignored"):
        return None
    if message.state == State.DONE and not message.from_address:
        return item("未回复", f"发件地址无法识别，未回复（From：{message.from_header or '无'}），请人工联系", [show])
    if message.state == State.FAILED and unsent is not None:
        return item("未回复", f"回复未能发出，将自动重试：{message.last_error or '原因未记录'}", [show, *resend])
    return None


def _review_reason(session: Session, message_id: int) -> str:
    texts = session.scalars(select(FindingRow.text).where(
        FindingRow.message_id == message_id, FindingRow.severity.in_(("error", "warning"))
        | (FindingRow.code == "link.fetch_failed")).order_by(FindingRow.id).limit(3)).all()
    return "；".join(texts) or "需要工作人员核对"


def failures(session: Session, now: datetime) -> list[ReplyFailure]:
    """Outbox rows that failed for good, or have been in ``sending`` too long."""
    rows = session.execute(
        select(Outbox, Message.receipt).outerjoin(Message, Outbox.message_id == Message.id)
        .where(Outbox.state.in_((FAILED, SENDING))).order_by(Outbox.id)).all()
    found = []
    for row, receipt in rows:
        touched = aware(row.updated_at or row.created_at)
        if row.state == SENDING and touched > aware(now) - STUCK_AFTER:
            continue  # being sent right now
        found.append(ReplyFailure(receipt=receipt, kind=row.kind, recipient=row.recipient, subject=row.subject,
                                  state=row.state, detail=_short(row.last_error) if row.last_error else None,
                                  at=touched, command=_command(row.kind, receipt)))
    return found


def _command(kind: str, receipt: str | None) -> str | None:
    if kind == "reply" and receipt:
        return f"intake resend {receipt}"
    if kind == "digest":
        return "intake digest --send --force"
    return None


def held_replies(session: Session) -> dict[str, int]:
    """Replies held over the per-sender cap, counted per recipient."""
    return dict(Counter(session.scalars(select(Outbox.recipient).where(Outbox.state == HELD))).most_common())


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 1] + "…"
