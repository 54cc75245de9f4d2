"""What the daily digest says, as plain data: the daemon gathers it from the database
(``intake.daemon.digest``), the renderers here turn it into HTML, text, a chart and a
workbook. Times are aware; the renderers write them in Beijing time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from intake.kernel.report import BEIJING

# The order of the totals and their Chinese names (one partition of the messages:
# every message is in exactly one, so the counts add up to 收到)
COUNTED = ("accepted", "partial", "rejected", "late", "needs_review", "ignored", "in_progress")
COUNT_NAMES = {
    "received": "收到邮件", "accepted": "通过", "partial": "部分通过", "rejected": "未通过",
    "late": "逾期（无效）", "needs_review": "待人工核对", "ignored": "非报送邮件（已忽略）",
    "in_progress": "尚无结论",
}
VERDICT_NAMES = {
    "accepted": "通过", "partial": "部分通过", "rejected": "未通过", "needs_review": "待人工核对",
    "ignored": "已忽略", "late": "逾期（无效）",
}
SEVERITY_NAMES = {"error": "错误", "warning": "提醒", "info": "说明"}


@dataclass
class Totals:
    """Messages per outcome; ``received`` is all of them."""

    received: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {name: 0 for name in COUNTED})


@dataclass
class UnitLine:
    name: str
    quota: int | None
    accepted: int  # current projects that pass: not superseded, not late
    current: int  # current projects, passing or not
    messages: int  # reports the unit sent (any verdict)
    known: bool = True  # False: the row for projects whose unit could not be told
    imported: bool = True  # False: a name read from a form that matches no imported unit

    @property
    def status(self) -> str:
        if self.messages == 0:
            return "尚未报送"
        if self.quota is None:
            return "未设名额"
        if self.accepted > self.quota:
            return "超出名额"
        if self.accepted == self.quota:
            return "已满额"
        return f"尚差 {self.quota - self.accepted} 个"


@dataclass
class Attention:
    """A message staff must look at, why, and the commands that act on it."""

    kind: str  # 待人工核对 | 已隔离 | 等待下载 | 未回复
    receipt: str
    unit: str | None
    sender: str | None
    received_at: datetime | None
    reason: str
    commands: list[str]


@dataclass
class ReplyFailure:
    """An outbox row that did not go out: failed, held, or stuck in sending."""

    receipt: str | None
    kind: str  # reply | digest | alert
    recipient: str
    subject: str
    state: str
    detail: str | None
    at: datetime | None
    command: str | None


@dataclass
class Health:
    name: str  # mailbox | smtp
    ok: bool
    at: datetime
    last_ok_at: datetime | None
    detail: str | None


@dataclass
class Disk:
    free_bytes: int
    total_bytes: int
    data_bytes: int
    data_dir: str


@dataclass
class ProjectLine:
    unit: str | None
    course: str
    verdict: str  # the project's own (accepted | rejected), as the staff decision left it
    standing: str  # 当前有效 | 已被替换 | 逾期无效
    receipt: str
    received_at: datetime | None
    files: dict


@dataclass
class FindingLine:
    receipt: str
    unit: str | None
    project: str | None
    code: str
    severity: str
    message: str
    path: str | None


@dataclass
class Digest:
    day: date  # the Beijing day it is for
    made_at: datetime
    title: str  # the policy's title
    deadline: datetime
    contact: str | None
    last_day: Totals
    overall: Totals
    units: list[UnitLine]
    attention: list[Attention]
    failures: list[ReplyFailure]
    held: dict[str, int]  # replies held over the per-sender cap, per recipient
    health: list[Health]
    disk: Disk
    projects: list[ProjectLine]
    findings: list[FindingLine]

    @property
    def days_left(self) -> int:
        """Whole days from the digest's day to the deadline's day (0: today; negative: past)."""
        return (self.deadline.astimezone(BEIJING).date() - self.day).days

    @property
    def silent_units(self) -> list[UnitLine]:
        return [u for u in self.units if u.imported and u.messages == 0]
