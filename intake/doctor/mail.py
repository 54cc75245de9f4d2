"""The mailbox (IMAP login with ID, the folder) and the SMTP login, through the very code
the daemon uses (``ImapSource.connect``, ``SMTPTransport.open``): nothing is sent, no
message is marked or moved (the folder is selected read-only unless INTAKE_IMAP_MOVE_TO
asks the daemon to move mail, exactly as a poll selects it)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from intake.doctor.model import Check, Context, ServerTime, failed, not_needed, passed
from intake.kernel.errors import ConfigError, LoginRejected, TransientError
from intake.notifier.smtp import SMTPTransport, from_mismatch
from intake.settings import Settings
from intake.sources.imap import ImapSource

IMAP, IMAP_TITLE = "imap", "收件邮箱（IMAP 登录、ID、文件夹）"
SMTP, SMTP_TITLE = "smtp", "发信（SMTP 登录）"
SMTP_TIMEOUT = 30.0  # seconds per read or write: a doctor answers sooner than a delivery pass waits
PASSWORD_163 = "163 邮箱须使用客户端授权码而非网页登录密码"


def check_imap(context: Context) -> Check:
    settings = _settings(context)
    if settings.maildir is not None:
        return _maildir(settings.maildir)
    if not settings.imap_user or settings.imap_password is None:
        return failed(IMAP, IMAP_TITLE, "未设置收件邮箱账号：请设置 INTAKE_IMAP_USER 和 INTAKE_IMAP_PASSWORD"
                      f"（{PASSWORD_163}）")
    where = f"{settings.imap_host}:{settings.imap_port}"
    source = ImapSource(settings)
    try:
        source.connect()
        return passed(IMAP, IMAP_TITLE, _mailbox_found(source, context))
    except LoginRejected as err:
        return failed(IMAP, IMAP_TITLE, f"{where} 拒绝了 {settings.imap_user} 的登录：请核对 INTAKE_IMAP_USER 和 "
                      f"INTAKE_IMAP_PASSWORD（{PASSWORD_163}，并在邮箱设置中开启 IMAP 服务）。详情：{err}")
    except ConfigError as err:
        setting = str(err).split(":", 1)[0]
        return failed(IMAP, IMAP_TITLE, f"请修正 {setting}。详情：{err}")
    except TransientError as err:
        return failed(IMAP, IMAP_TITLE, f"无法连接收件服务器 {where}：请确认 INTAKE_IMAP_HOST、INTAKE_IMAP_PORT、"
                      f"INTAKE_IMAP_SSL 正确，服务器正在运行且网络可达。详情：{err}")
    finally:
        source.close()


def _mailbox_found(source: ImapSource, context: Context) -> str:
    """What the logged-in, selected mailbox shows: ID sent or not, the number of messages,
    and the newest one's INTERNALDATE (a lower bound of the server's clock)."""
    settings = source.settings
    client = source.client
    assert client is not None
    sent_id = b"ID" in client.capabilities()  # ImapSource sends ID exactly when it is advertised
    uids = source.uids_after(0)
    said = [f"已以 {settings.imap_user} 登录 {settings.imap_host}:{settings.imap_port}",
            "已发送 ID 命令" if sent_id else "服务器未声明 ID 扩展，未发送 ID",
            f"文件夹 {settings.imap_folder} 可打开，共 {len(uids)} 封邮件"]
    if uids:
        newest = client.fetch([max(uids)], ["INTERNALDATE"]).get(max(uids)) or {}
        moment = newest.get(b"INTERNALDATE")
        if isinstance(moment, datetime):
            moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
            context.server_times.append(ServerTime("最新邮件的服务器接收时间（INTERNALDATE）", moment,
                                                   datetime.now(timezone.utc), 0.0, lower_bound=True))
    return "；".join(said)


def _maildir(folder: Path) -> Check:
    if (folder / "cur").is_dir() and (folder / "new").is_dir():
        return not_needed(IMAP, IMAP_TITLE, f"已设置 INTAKE_MAILDIR，读取本地邮件目录 {folder}（目录可用）")
    return failed(IMAP, IMAP_TITLE, f"INTAKE_MAILDIR 指向的 {folder} 不是邮件目录（缺少 cur、new 子目录）："
                  "请修正 INTAKE_MAILDIR，或删除该设置以使用 IMAP")


def check_smtp(context: Context) -> Check:
    settings = _settings(context)
    if not settings.smtp_password:
        return not_needed(SMTP, SMTP_TITLE, "未设置 INTAKE_SMTP_PASSWORD，回复和汇总写入 "
                          f"{settings.data_dir / 'outbox'}，不经 SMTP 发出；如需发信，请设置 INTAKE_SMTP_PASSWORD")
    where = f"{settings.smtp_host}:{settings.smtp_port}（{settings.smtp_security}）"
    try:
        transport = SMTPTransport(settings, timeout=SMTP_TIMEOUT)
        with transport.open():
            pass  # logged in: nothing is sent
    except LoginRejected as err:
        return failed(SMTP, SMTP_TITLE, f"{where} 拒绝了 {settings.smtp_user} 的登录：请核对 INTAKE_SMTP_USER 和 "
                      f"INTAKE_SMTP_PASSWORD（{PASSWORD_163}，并在邮箱设置中开启 SMTP 服务）。详情：{err}")
    except ConfigError as err:
        setting = str(err).split(":", 1)[0]
        return failed(SMTP, SMTP_TITLE, f"请修正 {setting}。详情：{err}")
    except TransientError as err:
        return failed(SMTP, SMTP_TITLE, f"无法连接发信服务器 {where}：请确认 INTAKE_SMTP_HOST、INTAKE_SMTP_PORT、"
                      f"INTAKE_SMTP_SECURITY 正确，服务器正在运行且网络可达。详情：{err}")
    detail = f"已以 {settings.smtp_user} 登录 {where}，未发送任何邮件"
    mismatch = from_mismatch(settings)
    if mismatch:
        detail += f"；注意：INTAKE_SMTP_FROM 中的地址不是登录账号，发信时将使用 {settings.smtp_user}"
    return passed(SMTP, SMTP_TITLE, detail)


def _settings(context: Context) -> Settings:
    assert context.settings is not None, "the runner skips this check without settings"
    return context.settings
