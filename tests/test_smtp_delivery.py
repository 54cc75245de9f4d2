"""Replies and staff mail delivered over SMTP by the daemon, against a real server
(aiosmtpd on loopback) and a real database (SQLite and PostgreSQL): exactly once, with
the right headers, one connection per batch, never to a loop, never twice after a
crash, and every refusal recorded with the server's own words."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import select, update

from intake.commands import _say_transport, outbox
from intake.daemon.delivery import deliver_pending
from intake.daemon.ledger import poll
from intake.daemon.staff import resend
from intake.daemon.worker import Worker
from intake.notifier.outbox import queue_mail
from intake.notifier.smtp import SMTPTransport
from intake.notifier.transport import DeliveryUncertain, make_transport
from intake.service import open_service, poll_and_process
from intake.sources import MaildirSource, deliver_to_maildir
from intake.states import State
from intake.store import AuditEvent, Message, Outbox, ServiceStatus
from tests.conftest import daemon_settings, simple_mail
from tests.smtp_server import USER
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]


def bounce() -> bytes:
    return (b"From: MAILER-DAEMON@163.com\r\nTo: collect@163.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            b"Message-ID: <bounce1@163.com>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
            b"--b1\r\nContent-Type: text/plain\r\n\r\nDelivery to the following recipient failed.\r\n"
            b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.163.com\r\n\r\n"
            b"Final-Recipient: rfc822; someone@example.cn\r\nAction: failed\r\nStatus: 5.1.1\r\n--b1--\r\n")


def read_receipt() -> bytes:
    return ("From: unit8@163.com\r\nTo: collect@163.com\r\nSubject: 已读: 报送\r\n"
            "Message-ID: <receipt8@163.com>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=disposition-notification; boundary="r1"\r\n\r\n'
            "--r1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您的邮件已被阅读。\r\n"
            "--r1\r\nContent-Type: message/disposition-notification\r\n\r\n"
            "Final-Recipient: rfc822; collect@163.com\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n"
            "--r1--\r\n").encode("utf-8")


def from_unit1(k: int) -> bytes:
    """The k-th mail of one sender (unit1@163.com)."""
    return simple_mail(1, subject=f"报送 第{k}次").replace(b"<m1@", f"<m1-{k}@".encode())


def sent_by(raw: bytes, sender: str) -> bytes:
    return raw.replace(b"From: unit2@163.com", f"From: {sender}".encode(), 1)


def maildir(tmp_path: Path, mails: list[bytes]) -> Path:
    folder = tmp_path / "Maildir"
    for index, raw in enumerate(mails):
        deliver_to_maildir(folder, raw, ON_TIME + timedelta(minutes=index))
    return folder


def service_for(tmp_path, database_url, server, mails, **values):
    folder = maildir(tmp_path, mails)
    return open_service(daemon_settings(tmp_path, database_url, maildir=folder, **server.settings_values(), **values))


def rows(service) -> list[Outbox]:
    with service.Session() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def reply_rows(service) -> list[Outbox]:
    return [row for row in rows(service) if row.kind == "reply"]


def actions(service, action: str) -> list[AuditEvent]:
    with service.Session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def intake_env(tmp_path, database_url, server, **extra) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    return {**env, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(tmp_path / "Maildir"),
            "INTAKE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **server.environment(), **extra}


def intake(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "intake.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


# ------------------------------------------------------------------ exactly once, with the right headers

def test_poll_once_delivers_each_reply_exactly_once_over_one_connection(tmp_path, database_url, smtp_server):
    server = smtp_server("ssl")
    mails = [simple_mail(1), simple_mail(2, "忘了附件"), simple_mail(3),
             simple_mail(4, "我在休假", headers={"Auto-Submitted": "auto-replied"}), bounce(), read_receipt()]
    maildir(tmp_path, mails)
    env = intake_env(tmp_path, database_url, server)
    done = intake(env, "poll", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "新邮件 6 封，本次处理 6 封。"
    # one connection, over TLS, logged in as the collection account, for the whole batch
    assert [(c.tls, c.login, c.mails) for c in server.connections] == [(True, USER, 3)]
    replies = [m.message for m in server.messages]
    assert [m.recipients for m in server.messages] == [["unit1@163.com"], ["unit2@163.com"], ["unit3@163.com"]]
    assert all(m.mail_from == USER for m in server.messages)
    own_ids = [reply["Message-ID"] for reply in replies]
    for n, reply in enumerate(replies, start=1):
        assert reply["To"] == f"unit{n}@163.com" and reply["From"].addresses[0].addr_spec == USER
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["In-Reply-To"] == reply["References"] == f"<m{n}@test.example.cn>"
        assert f"WX2024-00000{n}" in reply["Subject"] and f"回执号：WX2024-00000{n}" in reply.get_body(("plain",)).get_content()
    assert len(set(own_ids)) == 3 and all(i and i.endswith("@intake.local>") for i in own_ids)
    # no reply to the auto-reply, the bounce or the read receipt; nothing twice
    again = intake(env, "poll", "--once")
    assert again.returncode == 0 and again.stdout.strip() == "新邮件 0 封，本次处理 0 封。"
    assert len(server.messages) == 3 and len(server.connections) == 1  # nothing due: no connection at all
    service = open_service(daemon_settings(tmp_path, database_url))
    assert [(r.state, r.attempts, r.last_error) for r in rows(service)] == [("sent", 0, None)] * 3
    status = json.loads(intake(env, "status", "--json").stdout)
    assert status["smtp"]["ok"] and status["smtp"]["detail"] == "3 sent, 0 refused, 0 to retry, 0 uncertain"
    listing = intake(env, "outbox")
    assert listing.returncode == 0 and listing.stdout.strip() == "没有未发送的邮件。"


# ------------------------------------------------------------------ loop safety

def test_loop_safety_and_the_per_sender_cap(tmp_path, database_url, smtp_server, capsys):
    server = smtp_server("none")
    mails = [from_unit1(k) for k in range(1, 5)]
    mails += [sent_by(simple_mail(2), "Collect@163.com"), sent_by(simple_mail(2, subject="x"), "Staff@ACFTU.org")]
    service = service_for(tmp_path, database_url, server, mails, reply_limit=2, staff_emails=["staff@acftu.org"])
    assert poll_and_process(service) == (6, 6)
    # staff get their mail (a round past INTAKE_DIGEST_AT queues the digest), never a reply
    replies = [m for m in server.messages if m.recipients != ["staff@acftu.org"]]
    assert [m.message["Subject"].split("】")[0] for m in replies] == ["【回执 WX2024-000001", "【回执 WX2024-000002"]
    assert all(m.message["Subject"].startswith("【报送日报】") for m in server.messages if m not in replies)
    assert [(r.recipient, r.state) for r in reply_rows(service)] == [("unit1@163.com", "sent")] * 2 + [
        ("unit1@163.com", "held")] * 2
    assert "INTAKE_REPLY_LIMIT" in reply_rows(service)[2].last_error
    reasons = [e.detail.get("reason") for e in actions(service, "done")]
    assert reasons == ["own_address", "staff_address"]  # never to ourselves, never to staff
    assert [e.detail["reason"] for e in actions(service, "reply_held")] == ["sender_cap"] * 2
    assert outbox(service, SimpleNamespace(json=False)) == 0
    header, rule, *lines = capsys.readouterr().out.splitlines()  # the staff table, piped
    assert header.split()[:4] == ["编号", "回执编号", "类别", "状态"]
    assert [line.split()[1] for line in lines] == ["WX2024-000003", "WX2024-000004"]
    assert all("已暂缓" in line and "unit1@163.com" in line for line in lines)
    # staff release one; the cap does not hold back what staff release
    resend(service.Session, "WX2024-000003", service.settings, service.policy)
    before = len(server.messages)
    poll_and_process(service)
    assert "WX2024-000003" in server.messages[before].message["Subject"]
    assert [m.recipients for m in server.messages[before:]][0] == ["unit1@163.com"]
    assert [r.state for r in reply_rows(service)] == ["sent", "sent", "sent", "held"]


# ------------------------------------------------------------------ outages and refusals

def test_smtp_down_then_up_sends_each_reply_once(tmp_path, database_url, smtp_server):
    server = smtp_server("none")
    server.stop()  # down: nothing listens on its port
    service = service_for(tmp_path, database_url, server, [simple_mail(n) for n in (1, 2, 3)])
    assert poll_and_process(service) == (3, 3)  # a passing outage is no operator's error
    assert [(r.state, r.attempts) for r in rows(service)] == [("queued", 0)] * 3  # never tried: not counted
    with service.Session() as session:
        smtp = session.get(ServiceStatus, "smtp")
        assert not smtp.ok and "cannot connect" in smtp.detail
    with service.Session() as session:
        assert set(session.scalars(select(Message.state))) == {State.DONE}
    server.start()  # up again, and the first DATA is refused for the moment
    server.behaviour.data = ["451 4.3.0 Temporary local problem, try again later"]
    poll_and_process(service)
    first, *others = rows(service)
    assert (first.state, first.attempts) == ("queued", 1) and "451 4.3.0" in first.last_error
    assert first.next_attempt_at - first.updated_at >= timedelta(seconds=50)  # the 1-minute backoff, not at once
    assert [r.state for r in others] == ["sent", "sent"]
    with service.Session.begin() as session:  # however slow this machine: not due yet
        session.execute(update(Outbox).where(Outbox.id == first.id).values(
            next_attempt_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    poll_and_process(service)
    assert len(server.messages) == 2
    with service.Session.begin() as session:  # its backoff has passed
        session.execute(update(Outbox).where(Outbox.id == first.id).values(next_attempt_at=ON_TIME))
    poll_and_process(service)
    poll_and_process(service)
    assert sorted(m.recipients[0] for m in server.messages) == ["unit1@163.com", "unit2@163.com", "unit3@163.com"]
    assert [r.state for r in rows(service)] == ["sent"] * 3
    assert [e.detail["attempts"] for e in actions(service, "mail_retry")] == [1]


def test_permanent_refusals_are_recorded_with_the_servers_answer(tmp_path, database_url, smtp_server, capsys,
                                                                 monkeypatch):
    server = smtp_server("starttls")
    server.trust(monkeypatch)
    server.behaviour.rcpt = {"unit1@163.com": "550 用户不存在 (User not found)".encode("gbk")}
    server.behaviour.data = ["554 DT:SPM 163 smtp3,DdGowAD3 1722312000,please see http://mail.163.com/help"]
    service = service_for(tmp_path, database_url, server, [simple_mail(n) for n in (1, 2, 3)])
    poll_and_process(service)
    refused, spam, sent = rows(service)
    assert (refused.state, refused.last_error) == ("failed", "unit1@163.com: 550 用户不存在 (User not found)")
    assert spam.state == "failed" and spam.last_error.startswith("554 DT:SPM 163 smtp3")
    assert sent.state == "sent" and [m.recipients for m in server.messages] == [["unit3@163.com"]]
    assert len(server.connections) == 1  # a refused mail does not end the batch
    with service.Session() as session:
        smtp = session.get(ServiceStatus, "smtp")
        assert smtp.ok and smtp.detail == "1 sent, 2 refused, 0 to retry, 0 uncertain"
    outbox(service, SimpleNamespace(json=False))
    header, rule, *lines = capsys.readouterr().out.splitlines()  # the staff table, piped
    assert len(lines) == 2 and all("被拒收" in line for line in lines)
    assert "服务器答复：unit1@163.com: 550 用户不存在" in lines[0] and "服务器答复：554 DT:SPM" in lines[1]
    poll_and_process(service)  # never retried by itself
    assert len(server.messages) == 1


def test_a_refused_login_stops_poll_once_with_one_line_naming_the_setting(tmp_path, database_url, smtp_server):
    server = smtp_server("ssl")
    maildir(tmp_path, [simple_mail(1)])
    env = intake_env(tmp_path, database_url, server, INTAKE_SMTP_PASSWORD="the-web-password")
    done = intake(env, "poll", "--once")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("intake: INTAKE_SMTP_PASSWORD: localhost rejected the login of collect@163.com")
    assert "客户端授权码" in last and "Traceback" not in done.stderr and "the-web-password" not in done.stderr
    service = open_service(daemon_settings(tmp_path, database_url))
    assert [r.state for r in rows(service)] == ["queued"]  # kept for the next round
    shown = json.loads(intake(env, "show", "WX2024-000001", "--json").stdout)
    assert shown["state"] == "done" and shown["reply"]["state"] == "queued"
    status = intake(env, "status", "--json")
    assert status.returncode == 1 and "INTAKE_SMTP_PASSWORD" in json.loads(status.stdout)["smtp"]["detail"]
    assert server.messages == []


# ------------------------------------------------------------------ no second copy

def test_a_kill_while_the_server_holds_the_data_sends_no_second_copy(tmp_path, database_url, smtp_server):
    server = smtp_server("none")
    server.behaviour.hold = True
    maildir(tmp_path, [simple_mail(1), simple_mail(2)])
    env = intake_env(tmp_path, database_url, server)
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "poll", "--once"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server.wait_holding()  # the first reply's data is at the server, its answer held back
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    server.release()  # the server takes it after all: the first copy arrived
    done = intake(env, "poll", "--once")
    assert done.returncode == 0, done.stderr
    subjects = [m.message["Subject"] for m in server.messages]
    assert len(subjects) == 2 and "WX2024-000001" in subjects[0] and "WX2024-000002" in subjects[1]
    listed = json.loads(intake(env, "outbox", "--json").stdout)
    assert [(r["receipt"], r["state"], r["uncertain"]) for r in listed] == [("WX2024-000001", "sending", True)]
    text = intake(env, "outbox").stdout
    assert "WX2024-000001" in text and "发送结果不明" in text and "intake resend WX2024-000001" in text
    service = open_service(daemon_settings(tmp_path, database_url))
    (uncertain,) = actions(service, "mail_uncertain")
    assert uncertain.message_id == 1 and uncertain.detail["left_by"]
    assert intake(env, "poll", "--once").returncode == 0 and len(server.messages) == 2  # still never again
    # staff checked with the sender and want it again: their decision, once
    assert intake(env, "resend", "WX2024-000001").returncode == 0
    assert intake(env, "poll", "--once").returncode == 0
    assert len(server.messages) == 3 and "WX2024-000001" in server.messages[-1].message["Subject"]
    assert json.loads(intake(env, "outbox", "--json").stdout) == []


def test_no_answer_to_the_data_leaves_the_reply_uncertain_and_never_repeated(tmp_path, database_url, smtp_server):
    server = smtp_server("none")
    server.behaviour.hold = True  # held until released: longer than the client waits
    service = service_for(tmp_path, database_url, server, [simple_mail(1), simple_mail(2)])
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    impatient = SMTPTransport(service.settings, timeout=1.0)
    worker = Worker(service.settings, service.Session, service.policy, transport=impatient)
    worker.drain()
    server.release()
    first, second = rows(service)
    assert first.state == "sending" and "may have been delivered" in first.last_error
    assert second.state == "queued" and second.attempts == 0  # the batch ended with the connection
    assert isinstance(worker.delivery.error, DeliveryUncertain) and worker.delivery.uncertain == 1
    poll_and_process(service)
    poll_and_process(service)
    assert [m.recipients for m in server.messages] == [["unit1@163.com"], ["unit2@163.com"]]  # one copy each
    assert [r.state for r in rows(service)] == ["sending", "sent"]
    (event,) = actions(service, "mail_uncertain")
    assert event.message_id == first.message_id and event.detail["kind"] == "reply"


# ------------------------------------------------------------------ staff mail

def test_staff_mail_is_queued_once_per_key_and_delivered_with_its_attachment(tmp_path, database_url, smtp_server):
    server = smtp_server("none")
    service = service_for(tmp_path, database_url, server, [])
    workbook = b"PK\x03\x04" + bytes(range(256)) * 40  # stands for the digest's XLSX

    def digest() -> EmailMessage:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = USER, "a@acftu.org, b@acftu.org", "报送情况日报 2024年07月30日"
        mail.set_content("今日汇总见附件。")
        mail.add_attachment(workbook, maintype="application",
                            subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename="汇总.xlsx")
        return mail

    for _ in range(2):  # two schedulers, say: the day's digest is one row
        with service.Session.begin() as session:
            added = queue_mail(session, digest(), kind="digest", recipients=["a@acftu.org", "b@acftu.org"],
                               dedupe_key="digest:2024-07-30")
        assert (added is None) == (_ == 1)
    result = deliver_pending(service.Session, make_transport(service.settings), "a test")
    assert (result.sent, result.error) == (1, None)
    (received,) = server.messages
    assert received.recipients == ["a@acftu.org", "b@acftu.org"]
    (attachment,) = received.message.iter_attachments()
    assert attachment.get_filename() == "汇总.xlsx" and attachment.get_content() == workbook
    (row,) = rows(service)
    assert (row.kind, row.state, row.message_id) == ("digest", "sent", None)
    (event,) = actions(service, "mail_sent")
    assert event.message_id is None and event.detail == {"outbox": row.id, "kind": "digest"}


# ------------------------------------------------------------------ start-up

def test_start_up_says_where_mail_goes_and_never_the_password(tmp_path, smtp_server, monkeypatch, caplog):
    server = smtp_server("ssl")
    server.trust(monkeypatch)
    service = open_service(daemon_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}",
                                           smtp_from="报送系统 <other@163.com>", **server.settings_values()))
    with caplog.at_level("INFO", logger="intake"):
        _say_transport(service)
    assert f"replies go to SMTP localhost:{server.port} (ssl) as {USER}" in caplog.text
    assert "INTAKE_SMTP_FROM: other@163.com is not the login account" in caplog.text
    assert server.password not in caplog.text and len(server.connections) == 1  # the login was tried
    caplog.clear()
    service.settings.smtp_password = "a-web-password"
    with caplog.at_level("INFO", logger="intake"):
        _say_transport(service)  # logged; `intake run` keeps going and tries again each round
    assert "INTAKE_SMTP_PASSWORD: localhost rejected the login" in caplog.text and "a-web-password" not in caplog.text
