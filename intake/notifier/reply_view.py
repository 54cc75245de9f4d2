"""What a reply says, as data: the kind of reply, the verdict in words, the projects,
every finding grouped by project with how to fix it, the deadline and the contact.
Both templates (plain text and HTML) render this one view, so the two parts of a
reply cannot disagree, and the subject's verdict is the body's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from intake.kernel.policy import Policy
from intake.kernel.report import beijing_text
from intake.notifier.fix_hints import fix_hint
from intake.settings import Settings
from intake.store import Message

VERDICTS = {
    "accepted": "已受理，材料审核通过",
    "partial": "部分通过，部分项目需要修改后重新报送",
    "rejected": "未通过，需要修改后重新报送",
    "needs_review": "已收到，正在由工作人员人工核对",
}
LATE = "逾期报送，不予受理"  # 逾期上报无效: never an invitation to resend
# a staff decision on a late report: resending cannot help any more, so no 修改后重新报送
AFTER_DEADLINE = {"partial": "部分通过（经工作人员复核）", "rejected": "未通过（经工作人员复核）"}
MESSAGE_GROUP = "报送整体（邮件、报送表及材料包）"  # findings that belong to no project
REVIEW_CODES = frozenset({"link.fetch_failed"})  # why a message waits for staff: our side, not the sender's
HEADINGS = {
    "accepted": "需要注意的问题（不影响受理）",
    "needs_review": "其他说明",
    "resend": "需要修改的问题（按项目列出，标“提醒”的不影响受理）",
    "after_deadline": "审核中发现的问题（供参考）",
}


@dataclass(frozen=True)
class Item:
    """One finding as the sender reads it."""

    text: str
    hint: str | None  # how to fix it, where the text does not say
    reminder: bool  # a warning: worth fixing, does not stop acceptance


@dataclass(frozen=True)
class Group:
    title: str  # the project's name, or MESSAGE_GROUP
    is_project: bool
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ProjectLine:
    name: str
    passed: bool


@dataclass(frozen=True)
class Replaced:
    """A project of this report that replaces one sent earlier."""

    project: str
    receipt: str | None  # the earlier receipt; None in a report stored before it was kept as data
    text: str


@dataclass(frozen=True)
class ReplyView:
    kind: str  # accepted | partial | rejected | needs_review | late
    collection: str  # the policy's title: what was collected
    receipt: str
    verdict: str  # the subject's words
    subject: str  # the sender's subject
    received: str  # Beijing time
    unit: str | None
    deadline: str  # Beijing time
    contact: str
    overridden: bool  # a staff decision, not the machine's
    invite_resend: bool  # fix and send again before the deadline
    projects: tuple[ProjectLine, ...]
    groups_heading: str
    groups: tuple[Group, ...]
    reasons: tuple[str, ...]  # needs_review: why staff check it
    our_side: bool  # every reason is ours to solve (a link we could not fetch)
    replaced: tuple[Replaced, ...]


def findings_of(message: Message) -> list[dict]:
    return list((message.report or {}).get("findings", []))


def has_late_finding(message: Message) -> bool:
    return any(f["code"] == "deadline.late" for f in findings_of(message))


def is_late(message: Message) -> bool:
    """Void as late: judged late and no staff decision since (staff may still accept it)."""
    return has_late_finding(message) and not message.override


def verdict_text(message: Message) -> str:
    if is_late(message):
        return LATE
    if has_late_finding(message) and message.verdict in AFTER_DEADLINE:
        return AFTER_DEADLINE[message.verdict]
    return VERDICTS.get(message.verdict or "", message.verdict or "已收到")


def reply_kind(message: Message) -> str:
    if is_late(message):
        return "late"
    return message.verdict if message.verdict in VERDICTS else "needs_review"


def build_view(message: Message, settings: Settings, policy: Policy) -> ReplyView:
    kind = reply_kind(message)
    after_deadline = has_late_finding(message)  # fixing cannot help any more: no hints, no resend
    findings = [] if kind == "late" else findings_of(message)  # a void report needs no fixing
    report = message.report or {}
    shown = [f for f in findings if _shown(f, kind)]
    projects = () if kind == "late" else tuple(
        ProjectLine(p["name"], _passed(p, message.override)) for p in report.get("projects", []))
    resend = message.verdict in ("partial", "rejected") and kind != "late" and not after_deadline
    return ReplyView(
        kind=kind,
        collection=policy.title,
        receipt=message.receipt or "",
        verdict=verdict_text(message),
        subject=message.subject or "无主题",
        received=_beijing(message.received_at),
        unit=report.get("unit") or message.unit_name,
        deadline=beijing_text(policy.deadline),
        contact=settings.contact or policy.contact,
        overridden=bool(message.override),
        invite_resend=resend,
        projects=projects,
        groups_heading=_heading(kind, after_deadline),
        groups=tuple(_groups(shown, [p.name for p in projects], hints=not after_deadline)),
        reasons=tuple(f["message"] for f in findings if f["code"] in REVIEW_CODES) if kind == "needs_review" else (),
        our_side=kind == "needs_review" and any(f["code"] in REVIEW_CODES for f in findings),
        replaced=tuple(Replaced(f.get("project") or MESSAGE_GROUP, f.get("replaces"), f["message"])
                       for f in findings if f["code"] == "duplicate.resubmission"),
    )


def _heading(kind: str, after_deadline: bool) -> str:
    if after_deadline and kind != "needs_review":  # a staff decision on a late report
        return HEADINGS["after_deadline"]
    return HEADINGS["resend" if kind in ("partial", "rejected") else kind]


def _shown(finding: dict, kind: str) -> bool:
    """Whether a finding is listed among the problems of this kind of reply."""
    if finding["code"] == "deadline.late" or finding["severity"] not in ("error", "warning"):
        return False  # lateness is said apart (or no longer the reason); info is said apart
    if kind == "accepted":  # a staff acceptance stands over the machine's errors
        return finding["severity"] == "warning"
    if kind == "needs_review":
        return finding["code"] not in REVIEW_CODES  # those are the reasons, said apart
    return True


def _passed(project: dict, override: str | None) -> bool:
    if override in ("accepted", "rejected"):  # a staff decision covers every project of the message
        return override == "accepted"
    return project["verdict"] == "accepted"


def _groups(findings: list[dict], project_names: list[str], *, hints: bool) -> list[Group]:
    """Every finding in the group of its project (in the report's order of projects),
    then those that belong to no project, in a group of their own."""
    order = list(dict.fromkeys(project_names + [f["project"] for f in findings if f.get("project")]))
    groups = []
    for title in order + [None]:
        items = tuple(_item(f, hints) for f in findings if (f.get("project") or None) == title)
        if items:
            groups.append(Group(title or MESSAGE_GROUP, title is not None, items))
    return groups


def _item(finding: dict, hints: bool) -> Item:
    hint = fix_hint(finding["code"], finding["message"]) if hints else None
    return Item(finding["message"], hint, finding["severity"] == "warning")


def _beijing(moment: datetime | None) -> str:
    return "（未知时间）" if moment is None else beijing_text(moment)  # as the findings write it
