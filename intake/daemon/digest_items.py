"""What the digest asks staff to act on: messages waiting for a person (needs review,
quarantined, unanswered) or for their links (fetching, after a failure on our side), each with its reason and the commands that act on it, and
outgoing mail that did not go out: refused for good (``failed``), held over the
per-sender cap (``held``), or uncertain (left ``sending`` by a process that is gone, or
a server that never answered: exactly what `intake outbox` calls uncertain,
``intake.daemon.delivery.is_uncertain``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.daemon.claims import aware, worker_id
from intake.daemon.delivery import is_uncertain
from intake.kernel.report import beijing_text
from intake.notifier.digest_data import Attention, ReplyFailure
from intake.staff_words import staff_reason
from intake.states import OutboxState, State
from intake.store import FindingRow, Message, Outbox

REASON_CHARS = 300
UNCERTAIN = "发送过程中断，邮件可能已经送达，系统不会自动重发；请向收件人核实，确未收到的可重新发送"


def attention(session: Session, messages: list[Message], now: datetime) -> list[Attention]:
    """Quarantined, then needs-review, then unanswered messages, oldest first."""
    me = worker_id()
    # replies `intake resend` takes: refused, held, or uncertain (not one being sent now)
    resendable = {row.message_id for row in session.scalars(
        select(Outbox).where(Outbox.message_id.is_not(None), Outbox.state != OutboxState.SENT.value))
        if row.state != OutboxState.SENDING or is_uncertain(row, me, now)}
    items: list[Attention] = []
    for message in messages:
        item = _item(session, message, message.id in resendable)
        if item is not None:
            items.append(item)
    order = {"已隔离": 0, "待人工核对": 1, "等待下载": 2, "未回复": 3}
    return sorted(items, key=lambda item: order[item.kind])


def _item(session: Session, message: Message, resendable: bool) -> Attention | None:
    receipt = message.receipt or str(message.id)
    show = f"intake show {receipt}"
    resend = [f"intake resend {receipt}"] if resendable else []

    def item(kind: str, reason: str, commands: list[str]) -> Attention:
        return Attention(kind=kind, receipt=receipt, unit=message.unit_name, sender=message.from_address,
                         received_at=message.received_at, reason=_short(staff_reason(reason) or ""), commands=commands)

    if message.state == State.QUARANTINED:
        return item("已隔离", message.last_error or "多次处理失败",
                    [show, f"intake reprocess {receipt}", *resend])
    if message.verdict == "needs_review":
        return item("待人工核对", _review_reason(session, message.id),
                    [show, f"intake reprocess {receipt}", f"intake override {receipt} --accept --note …"])
    if message.state == State.FETCHING and message.last_error:  # its links wait for the next attempt
        when = beijing_text(message.next_attempt_at) if message.next_attempt_at else "尽快"
        return item("等待下载", f"网盘链接暂未下载成功（已尝试 {message.fetch_attempts} 次），将于北京时间 {when} "
                    f"自动重试：{message.last_error}", [show])
    if message.verdict in (None, "ignored"):
        return None
    if message.state == State.DONE and not message.from_address:
        return item("未回复", f"发件地址无法识别，未回复（From：{message.from_header or '无'}），请人工联系", [show])
    if message.state == State.FAILED:  # judged, but its reply could not be decided and queued yet
        return item("未回复", f"回复尚未发出，将自动重试：{message.last_error or '原因未记录'}", [show, *resend])
    return None


def _review_reason(session: Session, message_id: int) -> str:
    texts = session.scalars(select(FindingRow.text).where(
        FindingRow.message_id == message_id, FindingRow.severity.in_(("error", "warning"))
        | (FindingRow.code == "link.fetch_failed")).order_by(FindingRow.id).limit(3)).all()
    return "；".join(texts) or "需要工作人员核对"


def failures(session: Session, now: datetime) -> list[ReplyFailure]:
    """Outbox rows that the server refused for good, or whose sending is uncertain
    (a row a live process is sending right now is not listed)."""
    rows = session.execute(
        select(Outbox, Message.receipt).outerjoin(Message, Outbox.message_id == Message.id)
        .where(Outbox.state.in_((OutboxState.FAILED.value, OutboxState.SENDING.value))).order_by(Outbox.id)).all()
    me = worker_id()
    found = []
    for row, receipt in rows:
        touched = aware(row.updated_at or row.created_at)
        if row.state == OutboxState.SENDING and not is_uncertain(row, me, now):
            continue  # being sent right now
        # a refusal is told in the server's own words; an uncertain send in ours
        detail = UNCERTAIN if row.state == OutboxState.SENDING else _short(staff_reason(row.last_error) or "") or None
        found.append(ReplyFailure(receipt=receipt, kind=row.kind, recipient=row.recipient, subject=row.subject,
                                  state=row.state, detail=detail, at=touched,
                                  command=f"intake resend {receipt or row.id}"))
    return found


def held_replies(session: Session) -> dict[str, int]:
    """Replies held over the per-sender cap, counted per recipient."""
    held = session.scalars(select(Outbox.recipient).where(Outbox.state == OutboxState.HELD.value))
    return dict(Counter(held).most_common())


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 1] + "…"
