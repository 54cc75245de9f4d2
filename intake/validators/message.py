"""What a message's own shape kept from being read, said to the sender: structure past
the depth bounds (``message.too_deep``) and links past the cap (``link.too_many``).

intake.parsers.messages records each as data (TooDeep: how deep, the limit, the names
of attachments left unread); this is the one place that words them.
"""

from __future__ import annotations

from collections.abc import Iterable

from intake.kernel.findings import ERROR, Finding
from intake.kernel.report import Report
from intake.kernel.verdicts import Verdict
from intake.parsers.links import MAX_LINKS
from intake.parsers.mail_depth import TooDeep

NAMES_SHOWN = 10  # attachments named in one finding; the rest are counted


def with_message_findings(report: Report, too_deep: Iterable[TooDeep], links_found: int) -> Report:
    """``report`` with the message's own findings added after a lateness finding.

    A message-level error rejects the whole message, as ``core.decide`` does; a
    ``package.empty`` is dropped when a ``message.too_deep`` says why nothing arrived.
    """
    findings = message_findings(too_deep, links_found)
    if not findings:
        return report
    if any(f.code == "message.too_deep" for f in findings):
        report.findings = [f for f in report.findings if f.code != "package.empty"]
    at = 1 if report.findings and report.findings[0].code == "deadline.late" else 0
    report.findings[at:at] = findings
    if any(f.severity == ERROR for f in findings):
        report.verdict = Verdict.REJECTED
        for project in report.projects:
            project.verdict = Verdict.REJECTED
    return report


def message_findings(too_deep: Iterable[TooDeep], links_found: int) -> list[Finding]:
    found = list(too_deep)
    findings = [Finding("message.too_deep", _mime(t)) for t in found if t.what == "mime"][:1]
    forwarded = [t for t in found if t.what == "forwarded"]
    if forwarded and (not findings or any(t.names for t in forwarded)):  # else the MIME one says it
        names = tuple(dict.fromkeys(name for t in forwarded for name in t.names))
        findings.append(Finding("message.too_deep", _forwarded(forwarded[0].limit, names)))
    if links_found > MAX_LINKS:
        findings.append(Finding(
            "link.too_many",
            f"邮件中共有 {links_found} 个不同的网盘链接，超过每封邮件 {MAX_LINKS} 个的上限，"
            f"只核对了前 {MAX_LINKS} 个，其余链接未予处理。请将材料整理打包，减少链接数量"
            "（例如每个项目只发送一个网盘链接并附提取码）。",
        ))
    return findings


def _mime(too_deep: TooDeep) -> str:
    return (f"邮件的结构嵌套达 {too_deep.depth} 层，超过 {too_deep.limit} 层的上限，"
            f"第 {too_deep.limit + 1} 层及更深的内容（附件、正文和链接）未予读取。"
            "请不要多层转发或嵌套邮件，将材料作为附件（或百度网盘链接及提取码）直接放入一封新邮件后重新发送。")


def _forwarded(limit: int, names: tuple[str, ...]) -> str:
    head = f"邮件中的转发邮件嵌套超过 {limit} 层，第 {limit + 1} 层及更深的转发邮件未予读取"
    if not names:
        return (f"{head}。请不要多层转发，将材料作为附件（或百度网盘链接及提取码）"
                "直接放入一封新邮件后重新发送。")
    listed = "、".join(f"“{name}”" for name in names[:NAMES_SHOWN])
    more = f"等 {len(names)} 个附件" if len(names) > NAMES_SHOWN else ""
    return (f"{head}，其中的附件{listed}{more}没有收到。"
            "请不要多层转发，将这些附件直接添加到一封新邮件后重新发送。")
