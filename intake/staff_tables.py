"""The staff commands' tables (`intake submissions`, `show`, `quarantine`, `status`,
`outbox`): Chinese headers and values, Beijing times, drawn by rich.

On a terminal rich draws them with colour and fits them to its width; piped (a file,
`grep`, a script) the same table is plain text: no ANSI codes, no wrapping (a line is
as long as its row), no trailing blanks, so the output is stable. rich measures CJK
characters as two cells, so the columns line up either way. Every cell is a
``rich.text.Text``: what a sender wrote ("[bold]" in a subject) is never read as markup.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from intake.staff_words import (MAIL_KIND_NAMES, OUTBOX_STATE_NAMES, OVERRIDE_NAMES, PROJECT_VERDICT_NAMES,
                                SEVERITY_NAMES, STATE_NAMES, beijing_minute, one_line, staff_reason, state_name,
                                verdict_name)

UNBROKEN = {"回执编号", "编号", "序号", "收到（北京时间）", "时间（北京时间）", "最近一次成功", "下次尝试", "封数",
            "审核次数", "已尝试次数", "级别", "字段", "结论"}
PIPED_WIDTH = 100_000  # piped: as wide as the longest row, never wrapped
STATUS_PARTS = {"mailbox": "收件邮箱（最近一次收取）", "smtp": "发信服务器（最近一次发送）"}


def print_tables(parts: Iterable[Table | str], out: TextIO) -> None:
    """Tables (and lines between them) to ``out``: drawn for a terminal, plain when piped."""
    if out.isatty():
        _print_parts(Console(file=out, highlight=False, emoji=False), parts)
        return
    buffer = io.StringIO()
    _print_parts(Console(file=buffer, width=PIPED_WIDTH, color_system=None, force_terminal=False,
                         highlight=False, emoji=False, soft_wrap=False), parts)
    out.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def _print_parts(console: Console, parts: Iterable[Table | str]) -> None:
    for number, part in enumerate(parts):
        if number and isinstance(part, Table):
            console.print()  # a blank line before each table but the first
        console.print(Text(part) if isinstance(part, str) else part)


def _table(title: str | None, *headers: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, header_style="bold",
                  title_style="bold", pad_edge=False)
    for header in headers:
        # short values (receipts, times, names of states) are never broken on a narrow
        # terminal; the long ones (senders, subjects, reasons) wrap instead
        table.add_column(header, no_wrap=header in UNBROKEN, overflow="fold")
    return table


def _row(table: Table, *cells: Any) -> None:
    # one line per row, piped: a sender's line break or escape sequence never reaches the terminal
    table.add_row(*(Text("—" if cell is None or cell == "" else one_line(str(cell))) for cell in cells))


def projects_text(projects: list[dict]) -> str:
    return "；".join(f"{p['name']}（{PROJECT_VERDICT_NAMES.get(p['verdict'], p['verdict'])}）" for p in projects)


def submissions_table(items: list[dict], from_headers: list[str | None]) -> list[Table | str]:
    """`intake submissions`: one row per judged message, oldest first."""
    if not items:
        return ["没有已审核的报送邮件。"]
    table = _table(None, "回执编号", "收到（北京时间）", "结论", "单位", "发件人", "项目（结论）")
    for item, from_header in zip(items, from_headers):
        # mail with no single sender address is answered nowhere: staff see what it said
        sender = item["from"] or f"发件地址无法识别，未回复（From: {from_header or '无'}）"
        _row(table, item["receipt"], beijing_minute(item["received_at"]), verdict_name(item["verdict"]),
             item["unit"] or "单位未识别", sender, projects_text(item["projects"]))
    return [table]


def show_tables(data: dict) -> list[Table | str]:
    """`intake show RECEIPT`: the message, its findings, its links' fetch and its reply."""
    about = _table(f"报送邮件 {data['receipt']}", "字段", "内容")
    verdict = verdict_name(data["verdict"]) if data["verdict"] else "尚未审核"
    if data.get("override"):
        verdict += f"（{OVERRIDE_NAMES.get(data['override'], data['override'])}：{data.get('override_note') or '无说明'}）"
    for name, value in (
        ("状态", state_name(data["state"])), ("结论", verdict), ("单位", data["unit"] or "单位未识别"),
        ("发件人", data["from"] or f"发件地址无法识别（From: {data.get('from_header') or '无'}）"),
        ("主题", data.get("subject")), ("收到（北京时间）", beijing_minute(data["received_at"])),
        ("项目", projects_text(data["projects"])), ("审核次数", data.get("attempts")),
        ("链接下载次数", data.get("fetch_attempts")), ("下次尝试", _when(data.get("next_attempt_at"))),
        ("最近错误", staff_reason(data.get("last_error"))), ("回复", _reply_text(data.get("reply"))),
    ):
        _row(about, name, value)
    parts: list[Table | str] = [about]
    findings = data.get("findings") or []
    if findings:
        table = _table("审核意见", "级别", "代码", "项目", "说明", "文件")
        for finding in findings:
            _row(table, SEVERITY_NAMES.get(finding["severity"], finding["severity"]), finding["code"],
                 finding.get("project"), finding["message"], finding.get("path"))
        parts.append(table)
    links = data.get("fetch") or []
    if links:
        table = _table("链接下载", "序号", "链接", "结果", "说明")
        for link in links:
            number = link.get("n")  # counted from 0 in the report; staff count from 1
            _row(table, number + 1 if isinstance(number, int) else None, link["url"], LINK_OUTCOMES.get(link["outcome"], link["outcome"]),
                 _link_note(link))
        parts.append(table)
    return parts


LINK_OUTCOMES = {"fetched": "已下载", "sender": "链接有误（发件人）", "failed": "未能下载（我方）",
                 "quoted": "此前已收到", "late": "逾期，未下载"}


def _link_note(link: dict) -> str:
    notes = [f["message"] for f in link.get("findings") or []]
    if link.get("reason"):
        notes.append(link["reason"])
    if link.get("detail"):
        notes.append(staff_reason(link["detail"]) or "")
    if link.get("earlier"):
        notes.append(f"同一链接见 {link['earlier']}")
    if link.get("listing"):
        notes.append(f"网盘中共 {len(link['listing'])} 个文件")
    return "；".join(notes)


def _reply_text(reply: dict | None) -> str:
    if reply is None:
        return "无（不需回复或尚未决定）"
    text = f"{OUTBOX_STATE_NAMES.get(reply['state'], reply['state'])}，收件人 {reply['recipient']}"
    if reply.get("sent_at"):
        text += f"，发送于 {beijing_minute(reply['sent_at'])}"
    if reply.get("last_error"):
        text += f"；{staff_reason(reply['last_error'])}"
    return text


def _when(moment: str | None) -> str | None:
    return beijing_minute(moment) if moment else None


def quarantine_table(rows: list[dict]) -> list[Table | str]:
    """`intake quarantine`: messages that failed too often or permanently."""
    if not rows:
        return ["没有已隔离的邮件。"]
    table = _table(None, "回执编号", "发件人", "主题", "审核次数", "最近错误")
    for row in rows:
        _row(table, row["receipt"], row["from"], row["subject"], row["attempts"], staff_reason(row["last_error"]))
    return [table, "用 intake show 回执编号 查看详情，用 intake reprocess 回执编号 重新处理。"]


def status_tables(found: dict) -> list[Table | str]:
    """`intake status`: the mailbox's and the SMTP server's last outcome, the messages in
    each state, and those whose links wait for their next attempt."""
    health = _table("服务状态", "部分", "状态", "时间（北京时间）", "最近一次成功", "说明")
    for part, name in STATUS_PARTS.items():
        row = found.get(part)
        if row is None:
            _row(health, name, "尚无记录", None, None, None)
            continue
        _row(health, name, "正常" if row["ok"] else "异常", beijing_minute(row["at"]),
             beijing_minute(row["last_ok_at"]) if row["last_ok_at"] else "从未成功", staff_reason(row["detail"]))
    counts = _table("各状态邮件数", "状态", "封数")
    lifecycle = list(STATE_NAMES)  # in the order a message goes through them
    for state, count in sorted(found["states"].items(),
                               key=lambda item: lifecycle.index(item[0]) if item[0] in lifecycle else len(lifecycle)):
        _row(counts, state_name(state), count)
    parts: list[Table | str] = [health, counts if found["states"] else "数据库中还没有邮件。"]
    if found["fetching"]:
        waiting = _table("等待下载链接文件", "回执编号", "发件人", "已尝试次数", "下次尝试", "原因")
        for row in found["fetching"]:
            _row(waiting, row["receipt"], row["from"], row["fetch_attempts"], _when(row["next_attempt_at"]),
                 staff_reason(row["last_error"]))
        parts.append(waiting)
    return parts


OUTBOX_NOTES = {"failed": "被拒收", "held": "已暂缓（超过每个地址 24 小时内的回复上限）",
                "sent": "已发送，但部分收件人被拒收"}


def outbox_table(rows: list[dict]) -> list[Table | str]:
    """`intake outbox`: every outgoing mail not sent, and sent mail some recipients refused."""
    if not rows:
        return ["没有未发送的邮件。"]
    table = _table(None, "编号", "回执编号", "类别", "状态", "收件人", "主题", "说明")
    for row in rows:
        _row(table, row["id"], row["receipt"], MAIL_KIND_NAMES.get(row["kind"], row["kind"]), _outbox_state(row),
             row["recipient"], row["subject"], _outbox_note(row))
    return [table]


def _outbox_state(row: dict) -> str:
    if row["state"] == "sending":
        return "发送结果不明" if row["uncertain"] else "正在发送"
    if row["state"] == "queued":
        when = beijing_minute(datetime.fromisoformat(row["next_attempt_at"])) if row["next_attempt_at"] else "下一轮"
        tried = f"已失败 {row['attempts']} 次，" if row["attempts"] else ""
        return f"待发送（{tried}将于{when}发送）"
    return OUTBOX_NOTES.get(row["state"], row["state"])


def _outbox_note(row: dict) -> str | None:
    if row["state"] == "sending":
        return ("发送过程中断，邮件可能已送达，系统不会自动重发；核实后可用 "
                f"intake resend {row['receipt'] or row['id']} 重新发送") if row["uncertain"] else None
    if not row["last_error"]:
        return None
    return f"{'原因' if row['state'] == 'held' else '服务器答复'}：{staff_reason(row['last_error'])}"
