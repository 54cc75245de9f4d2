"""The Chinese report a person reads (``intake check`` without --json)."""

from __future__ import annotations

from intake.validators.links import PROVIDER_NAMES
from intake.kernel.report import BEIJING, Report
from intake.kernel.findings import ERROR, WARNING
from intake.staff_words import VERDICT_NAMES as STAFF_VERDICT_NAMES, one_line

# the staff commands' names (intake/staff_words.py), so that staff read one word for one verdict
VERDICT_NAMES = {**STAFF_VERDICT_NAMES, "ignored": "已忽略（非报送邮件）"}
SEVERITY_NAMES = {"error": "错误", "warning": "提醒", "info": "说明"}
KIND_NAMES = {"video": "视频", "document": "文档", "question_bank": "题库", "photos": "照片",
              "audio": "音频", "declaration": "申报表", "letters": "授权书及承诺书"}


def render_text(report: Report, policy_title: str = "") -> str:
    lines = [f"检查结论：{VERDICT_NAMES.get(report.verdict, report.verdict)}"]
    if report.source:
        lines.append(f"检查对象：{report.source}")
    lines.append(f"适用规则：{policy_title or report.policy}（{report.policy}）")
    if report.received_at is None:
        lines.append("接收时间：未提供（未核对截止时间；可用 --received-at 指定）")
    else:
        moment = report.received_at.astimezone(BEIJING)
        lines.append(f"接收时间：{moment:%Y-%m-%d %H:%M:%S}（北京时间）")
    if report.message is not None:
        message = report.message
        lines.append(f"发件人：{message['from'] or '未知'}")
        lines.append(f"主题：{message['subject'] or '（无主题）'}")
        if message["attachments"]:
            lines.append("附件：" + "；".join(message["attachments"]))
        for link in message["links"]:
            code = f"，提取码 {link['code']}" if link["code"] else ""
            lines.append(f"链接：{link['url']}（{PROVIDER_NAMES.get(link['provider'], '其他网盘')}{code}）")
    if report.ignored_reason:
        lines.append(f"原因：不是报送邮件（自动回复、退信、已读回执或邮件列表），不予处理。依据：{report.ignored_reason}")
    lines.append(f"上报单位：{report.unit or '未能识别'}")
    passed = sum(1 for p in report.projects if p.verdict == "accepted")
    lines.append(f"项目：共 {len(report.projects)} 个，通过 {passed} 个，未通过 {len(report.projects) - passed} 个")

    general = [f for f in report.findings if f.project is None]
    failed = [p for p in report.projects if p.verdict != "accepted"]
    accepted = [p for p in report.projects if p.verdict == "accepted"]
    section = 0
    if general:
        section += 1
        lines += ["", f"{_number(section)}、整体问题"]
        lines += _finding_lines(sorted(general, key=_severity_rank))
    for title, group in (("未通过的项目", failed), ("通过的项目", accepted)):
        if not group:
            continue
        section += 1
        lines += ["", f"{_number(section)}、{title}"]
        for project in group:
            lines.append(f"  ■ {project.name}（{VERDICT_NAMES.get(project.verdict, project.verdict)}）")
            shown = [f"{KIND_NAMES.get(k, k)}：{'、'.join(v) if isinstance(v, list) else v}"
                     for k, v in project.files.items() if v]
            if shown:
                lines.append("    材料：" + "；".join(shown))
            own = [f for f in report.findings if f.project == project.name]
            lines += ["  " + line for line in _finding_lines(sorted(own, key=_severity_rank))]
            if not own:
                lines.append("    未发现问题。")
    # a sender's names (files, courses, subject) never break a line or reach the terminal as
    # control sequences (ESC would recolour or clear it)
    return "\n".join(one_line(line) for line in lines) + "\n"


def _finding_lines(findings) -> list[str]:
    marks = {ERROR: "✗", WARNING: "!"}
    return [
        f"  {marks.get(f.severity, '·')} {SEVERITY_NAMES[f.severity]}［{f.code}］{f.message}"
        for f in findings
    ]


def _severity_rank(finding) -> int:
    return {"error": 0, "warning": 1, "info": 2}[finding.severity]


def _number(n: int) -> str:
    return "一二三四五六七八九十"[n - 1] if n <= 10 else str(n)
