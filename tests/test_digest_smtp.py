"""Staff mail over a real SMTP server (aiosmtpd on loopback) and a real database
(SQLite and PostgreSQL): `intake digest --send` as staff run it, delivering the digest
with its chart inline and its workbook attached, once a day unless forced; and an alert
about a refused SMTP login, which leaves as soon as the login works again."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select

from intake.daemon.digest import digest_key
from intake.kernel.errors import LoginRejected
from intake.service import open_service, poll_and_process, staff_mail
from intake.sources import deliver_to_maildir
from intake.store import Message, Outbox, Project, ServiceStatus, utcnow
from tests.conftest import daemon_settings, simple_mail
from tests.digest_seed import SEEDED_DIGEST, seed
from tests.smtp_server import PASSWORD, USER
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
STAFF = ["staff@acftu.org", "lead@acftu.org"]


def send_digest(tmp_path: Path, database_url: str, server, *options: str, **settings: str
                ) -> subprocess.CompletedProcess:
    """`intake digest --send` in its own process, with INTAKE_SMTP_* naming the server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update(server.environment(**settings), PYTHONPATH=str(ROOT), INTAKE_DATA_DIR=str(tmp_path / "data"),
               INTAKE_DATABASE_URL=database_url, INTAKE_STAFF_EMAILS=", ".join(STAFF))
    return subprocess.run([sys.executable, "-m", "intake.cli", "digest", "--send", *options], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def digests(service) -> list[Outbox]:
    with service.Session() as session:
        return list(session.scalars(select(Outbox).where(Outbox.kind == "digest", Outbox.dedupe_key != SEEDED_DIGEST)
                                    .order_by(Outbox.id)))


def check_digest_mail(mail: EmailMessage, service) -> None:
    """The digest as staff receive it: text, HTML with the chart inline by its cid, and
    the workbook attached, holding every project of the database."""
    assert mail["To"] == ", ".join(STAFF) and mail["From"].addresses[0].addr_spec == USER
    assert mail["Subject"].startswith("【报送日报】") and mail["Auto-Submitted"] == "auto-generated"
    html = mail.get_body(("html",))
    text = mail.get_body(("plain",))
    assert html is not None and text is not None and "湖北省总工会：3 / 3" in text.get_content()
    [chart] = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert f'src="cid:{chart["Content-ID"].strip("<>")}"' in html.get_content()
    assert chart.get_content_disposition() == "inline"
    image = Image.open(io.BytesIO(chart.get_content()))
    assert image.format == "PNG" and image.width > 0 and image.height > 0
    [workbook] = list(mail.iter_attachments())
    assert workbook.get_filename().startswith("digest-") and workbook.get_filename().endswith(".xlsx")
    book = load_workbook(io.BytesIO(workbook.get_content()))
    assert book.sheetnames == ["项目", "问题", "单位"]
    with service.Session() as session:
        projects = session.execute(select(Message.receipt, Project.name).join(Project.message)).all()
    assert len(projects) >= 10
    assert sorted((row[4], row[1]) for row in book["项目"].iter_rows(min_row=2, values_only=True)) == \
        sorted(tuple(project) for project in projects)


def test_digest_send_delivers_it_over_smtp_once_a_day_and_again_when_forced(tmp_path, database_url, smtp_server):
    server = smtp_server("ssl")
    service = open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF))
    seed(service.Session, datetime.now(timezone.utc))

    first = send_digest(tmp_path, database_url, server)
    assert first.returncode == 0, first.stderr
    assert f"今日简报（{digest_key(datetime.now(timezone.utc))}）已排队" in first.stdout
    assert f"本次经 SMTP localhost:{server.port} (ssl) as {USER} 投递：已发送 1 封，被拒 0 封" in first.stdout
    [received] = server.messages
    assert received.mail_from == USER and received.recipients == STAFF
    assert [(c.tls, c.login, c.mails) for c in server.connections] == [(True, USER, 1)]
    check_digest_mail(received.message, service)
    [row] = digests(service)
    assert row.state == "sent" and row.sent_at is not None
    with service.Session() as session:
        assert session.get(ServiceStatus, "smtp").ok  # the pass recorded how SMTP fared

    again = send_digest(tmp_path, database_url, server)
    assert again.returncode == 0, again.stderr
    assert "每天只发送一次" in again.stdout and "已发送 0 封" in again.stdout
    assert len(server.messages) == 1 and len(digests(service)) == 1  # nothing sent the same day

    forced = send_digest(tmp_path, database_url, server, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "已再次排队" in forced.stdout and "已发送 1 封" in forced.stdout
    assert len(server.messages) == 2 and [r.state for r in digests(service)] == ["sent", "sent"]
    check_digest_mail(server.messages[1].message, service)
    # the seed's uncertain digest (left in `sending` yesterday) was never sent again
    assert all("昨天" not in m.message["Subject"] for m in server.messages)


def test_digest_send_with_a_refused_smtp_login_is_one_line(tmp_path, database_url, smtp_server):
    server = smtp_server("none")
    service = open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF))
    done = send_digest(tmp_path, database_url, server, INTAKE_SMTP_PASSWORD="a-web-password")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the log lines: the one line of the error
    assert last.startswith("intake: INTAKE_SMTP_PASSWORD:") and "535" in last, done.stderr
    assert server.messages == [] and [r.state for r in digests(service)] == ["queued"]  # for the next round


def test_a_refused_smtp_login_is_alerted_over_smtp_once_the_login_works(tmp_path, database_url, smtp_server,
                                                                         monkeypatch):
    """The delivery pass records the refused login (status 'smtp', LoginRejected: …); the
    same round queues the alert; it goes out, with the reply, when the login works."""
    server = smtp_server("starttls")
    server.trust(monkeypatch)
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc))
    values = {**server.settings_values(), "smtp_password": "a-web-password"}
    settings = daemon_settings(tmp_path, database_url, maildir=folder, staff_emails=STAFF, **values)
    service = open_service(settings)

    with pytest.raises(LoginRejected):
        poll_and_process(service)
    with service.Session() as session:
        status = session.get(ServiceStatus, "smtp")
        assert not status.ok and status.detail.startswith("LoginRejected: INTAKE_SMTP_PASSWORD")
        alerts = session.scalars(select(Outbox.dedupe_key).where(Outbox.kind == "alert")).all()
    assert alerts == ["alert:smtp_login:1:down"] and server.messages == []

    settings.smtp_password = PASSWORD
    assert poll_and_process(service) == (0, 0)
    assert [m.recipients for m in server.messages if not is_staff_mail(m)] == [["unit1@163.com"]]  # the reply
    [alert] = alert_mails(server)
    assert alert["Subject"] == "【报送系统告警】发件服务器拒绝登录，回复和日报无法发出"
    assert alert["Auto-Submitted"] == "auto-generated" and alert["From"].addresses[0].addr_spec == USER
    body = alert.get_content()
    assert "INTAKE_SMTP_PASSWORD" in body and "535" in body

    # recovered: told once the hour since the alert is up, over SMTP as well
    staff_mail(service, utcnow() + timedelta(hours=1, minutes=1))
    assert [m["Subject"] for m in alert_mails(server)][1:] == ["【报送系统已恢复】发件服务器登录已恢复"]
    staff_mail(service, utcnow() + timedelta(hours=3))
    assert len(alert_mails(server)) == 2  # nothing changed since: no further alert


def is_staff_mail(received) -> bool:
    return received.recipients == STAFF


def alert_mails(server) -> list[EmailMessage]:
    """The alerts the server took (a round past INTAKE_DIGEST_AT may send the digest too)."""
    return [m.message for m in server.messages
            if is_staff_mail(m) and m.message["Subject"].startswith(("【报送系统告警】", "【报送系统已恢复】"))]
