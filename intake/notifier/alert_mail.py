"""Alert mail to staff: the mailbox cannot be polled, or a login is refused; and the
mail that says it works again. Plain text, formal Chinese, Beijing time."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from intake.kernel.report import beijing_text
from intake.settings import Settings
from intake.staff_words import staff_reason

# kind: (what is wrong, what to do, what recovery means)
ALERTS = {
    "imap_login": ("收件邮箱拒绝登录，系统无法收取报送邮件",
                   "请核对 INTAKE_IMAP_USER 和 INTAKE_IMAP_PASSWORD（163 邮箱应使用客户端授权码，并已开启 IMAP 服务），"
                   "修改后重启守护进程。",
                   "收件邮箱登录已恢复"),
    "mailbox_down": ("收件邮箱长时间无法收取邮件",
                     "请检查网络、收件服务器地址（INTAKE_IMAP_HOST、INTAKE_IMAP_PORT）和邮箱状态；"
                     "守护进程会在每一轮自动重试。",
                     "收件邮箱已恢复收取"),
    "smtp_login": ("发件服务器拒绝登录，回复和日报无法发出",
                   "请核对 INTAKE_SMTP_USER 和 INTAKE_SMTP_PASSWORD（163 邮箱应使用客户端授权码，并已开启 SMTP 服务）。"
                   "本告警要在发件恢复后才能送达，请同时查看 intake status。",
                   "发件服务器登录已恢复"),
}


def alert_subject(kind: str, recovered: bool) -> str:
    problem, _, recovery = ALERTS[kind]
    return f"【报送系统已恢复】{recovery}" if recovered else f"【报送系统告警】{problem}"


def compose_alert(kind: str, *, recovered: bool, detail: str | None, last_ok_at: datetime | None,
                  now: datetime, settings: Settings) -> EmailMessage:
    problem, remedy, recovery = ALERTS[kind]
    if recovered:
        lines = [f"{recovery}（北京时间 {beijing_text(now)} 检查时已正常）。", "此前告警的问题已不再出现，无需处理。"]
    else:
        lines = [f"{problem}。", f"发现时间：北京时间 {beijing_text(now)}",
                 f"最近一次成功：{'北京时间 ' + beijing_text(last_ok_at) if last_ok_at else '自部署以来从未成功'}",
                 f"错误信息：{staff_reason(detail) or '未记录'}", "", f"处理方法：{remedy}"]
    lines += ["", "当前状态可用 intake status 查看。同一类告警每小时至多发送一封；恢复后另发一封通知。",
              "本邮件由报送系统自动发送，请勿直接回复。"]
    mail = EmailMessage()
    mail["From"] = settings.smtp_from or settings.imap_user or "intake@localhost"
    mail["To"] = ", ".join(settings.staff_emails)
    mail["Subject"] = alert_subject(kind, recovered)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=f"alert-{kind}", domain="intake.local")
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answers to it
    mail.set_content("\n".join(lines) + "\n", charset="utf-8")
    return mail
