"""The daily digest as mail and as a preview file.

The mail is multipart: a plain-text part and an HTML part that shows the chart inline
(multipart/related, ``cid:``), and the workbook attached. The preview writes the same
HTML with the chart and the workbook beside it, referenced by relative names.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from intake.kernel.report import beijing_text
from intake.notifier.digest_chart import quota_chart
from intake.notifier.digest_data import COUNT_NAMES, COUNTED, Digest
from intake.notifier.digest_workbook import digest_workbook
from intake.settings import Settings
from intake.states import OutboxState

TEMPLATES = Path(__file__).parent / "templates"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
LOW_DISK_PERCENT = 10
MAIL_KINDS = {"reply": "回复", "digest": "日报", "alert": "告警"}
OUTBOX_STATES = {OutboxState.FAILED: "发送失败（服务器拒绝）", OutboxState.HELD: "暂缓（超出回复上限）",
                 OutboxState.SENDING: "发送结果不明", OutboxState.QUEUED: "待发送"}
PART_NAMES = {"mailbox": "收件邮箱（IMAP）", "smtp": "发件服务器（SMTP）"}

_environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html.j2"]),
                           undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def size_text(count: int) -> str:
    """Bytes for people: 1.5 GB, 320.0 MB, 12.0 KB."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


_environment.filters["bj"] = lambda moment: beijing_text(moment) if isinstance(moment, datetime) else ""
_environment.filters["size"] = size_text


def workbook_name(digest: Digest) -> str:
    return f"digest-{digest.day.isoformat()}.xlsx"  # ASCII: every mail client keeps the name


def subject(digest: Digest) -> str:
    counts = digest.overall.counts
    waiting = len(digest.attention) + len(digest.failures)
    return (f"【报送日报】{digest.day.strftime('%Y年%m月%d日')}：累计收到 {digest.overall.received} 封，"
            f"通过 {counts['accepted']} 封，待处理 {waiting} 件")


def _context(digest: Digest) -> dict:
    total = digest.disk.total_bytes or 1
    free_percent = round(100 * digest.disk.free_bytes / total, 1)
    return {"digest": digest, "subject": subject(digest), "names": COUNT_NAMES, "counted": COUNTED,
            "mail_kinds": MAIL_KINDS, "outbox_states": OUTBOX_STATES, "part_names": PART_NAMES,
            "free_percent": free_percent, "low_disk": free_percent < LOW_DISK_PERCENT,
            "workbook_name": workbook_name(digest)}


def render_html(digest: Digest, chart_src: str, workbook_href: str | None = None) -> str:
    """The HTML digest; the chart's ``src`` and the workbook's link are the caller's
    (``cid:`` in mail, a file name beside a preview)."""
    return _environment.get_template("digest.html.j2").render(
        _context(digest), chart_src=chart_src, workbook_href=workbook_href)


def render_text(digest: Digest) -> str:
    return _environment.get_template("digest.txt.j2").render(_context(digest))


def compose_digest(digest: Digest, settings: Settings, recipients: list[str]) -> EmailMessage:
    """The digest mail: text and HTML (the chart inline), the workbook attached."""
    mail = EmailMessage()
    mail["From"] = settings.smtp_from or settings.imap_user or "intake@localhost"
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = subject(digest)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=f"digest-{digest.day.isoformat()}", domain="intake.local")
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answers to it
    mail.set_content(render_text(digest), charset="utf-8")
    chart_id = make_msgid(idstring="chart", domain="intake.local")
    mail.add_alternative(render_html(digest, f"cid:{chart_id[1:-1]}"), subtype="html", charset="utf-8")
    html_part = mail.get_body(("html",))
    assert html_part is not None  # added just above
    html_part.add_related(quota_chart(digest.units), "image", "png", cid=chart_id, filename="chart.png",
                          disposition="inline")
    mail.add_attachment(digest_workbook(digest), *XLSX, filename=workbook_name(digest))
    return mail


def write_preview(digest: Digest, target: Path) -> list[Path]:
    """The HTML at `target`, the chart and the workbook beside it; returns the three paths."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    chart = target.with_name(f"{target.stem}-chart.png")
    workbook = target.with_name(workbook_name(digest))
    chart.write_bytes(quota_chart(digest.units))
    workbook.write_bytes(digest_workbook(digest))
    target.write_text(render_html(digest, quote(chart.name), quote(workbook.name)), encoding="utf-8")
    return [target, chart, workbook]
