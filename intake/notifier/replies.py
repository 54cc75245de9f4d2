"""The reply to a sender: an acknowledgement, or a rejection with every reason and how
to fix it, in plain Chinese. Sent at most once per message (the outbox row is unique
per message), marked as an automatic reply so that auto-responders do not answer it.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from intake.kernel.report import beijing_text
from intake.settings import Settings
from intake.store import Message

VERDICTS = {
    "accepted": "已受理，材料审核通过",
    "partial": "部分通过，部分项目需要修改后重新报送",
    "rejected": "未通过，需要修改后重新报送",
    "needs_review": "已收到，正在由工作人员人工核对",
}
LATE = "逾期报送，不予受理"  # 逾期上报无效: never an invitation to resend
# A message id is quoted back only when it is one (RFC 5322 msg-id: printable ASCII in
# angle brackets): a sender's header, or a row stored before control characters were
# replaced, must never make the reply itself impossible to compose
_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,900}>")


def has_late_finding(message: Message) -> bool:
    return any(f["code"] == "deadline.late" for f in (message.report or {}).get("findings", []))


def is_late(message: Message) -> bool:
    """Void as late: judged late and no staff decision since (staff may still accept it)."""
    return has_late_finding(message) and not message.override


def verdict_text(message: Message) -> str:
    return LATE if is_late(message) else VERDICTS.get(message.verdict or "", message.verdict or "已收到")


def reply_text(message: Message) -> str:
    report = message.report or {}
    lines = [
        "您好！",
        "",
        f"您于北京时间 {_beijing(message.received_at)} 发送的报送邮件（主题：{message.subject or '无主题'}）已收到。",
        f"回执号：{message.receipt}",
        f"审核结论：{verdict_text(message)}",
    ]
    if report.get("unit"):
        lines.append(f"上报单位：{report['unit']}")
    late = is_late(message)
    projects = [] if late else report.get("projects", [])  # a void report judges no project
    if projects:
        lines += ["", "各项目审核结果："]
        for project in projects:
            mark = "通过" if project["verdict"] == "accepted" else "未通过"
            lines.append(f"  · {project['name']}：{mark}")
    # a void report needs no fixing: only why it is void; after a staff decision on a
    # late report, the lateness is no longer the verdict's reason and is not repeated
    problems = [f for f in report.get("findings", []) if f["severity"] in ("error", "warning")
                and (f["code"] == "deadline.late" if late else f["code"] != "deadline.late")]
    if problems:
        lines += ["", "说明：" if late else "需要注意或修改的问题："]
        for number, finding in enumerate(problems, start=1):
            where = f"【{finding['project']}】" if finding.get("project") else ""
            kind = "" if finding["severity"] == "error" else "（提醒）"
            lines.append(f"  {number}. {where}{kind}{finding['message']}")
    if message.verdict in ("partial", "rejected") and not has_late_finding(message):  # never after a deadline
        lines += ["", "请按上述说明修改后，在截止时间前重新发送全部材料（以最后一次报送为准）。"]
    lines += ["", "本邮件由报送系统自动发送，请勿直接回复。如有疑问，请与工作人员联系。"]
    return "\n".join(lines) + "\n"


def compose_reply(message: Message, settings: Settings) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = settings.smtp_from or settings.imap_user or "intake@localhost"
    reply["To"] = message.from_address
    reply["Subject"] = f"【回执 {message.receipt}】{verdict_text(message)}"
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = make_msgid(idstring=message.receipt, domain="intake.local")
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    if message.message_id and _MESSAGE_ID.fullmatch(message.message_id):
        reply["In-Reply-To"] = message.message_id
        reply["References"] = message.message_id
    reply.set_content(reply_text(message), charset="utf-8")
    return reply


def _beijing(moment: datetime | None) -> str:
    return "（未知时间）" if moment is None else beijing_text(moment)  # as the findings write it
