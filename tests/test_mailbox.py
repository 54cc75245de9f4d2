"""Polling a real IMAP server (Dovecot) that behaves like 163, and a Maildir."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from intake.daemon.ledger import poll
from intake.sources import ImapSource, MaildirSource, deliver_to_maildir
from intake.service import open_service, poll_and_process
from intake.store import AuditEvent, MailboxState, Message
from tests.conftest import daemon_settings, simple_mail
from tests.imap_server import PASSWORD, USER

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
LATE = datetime(2024, 8, 1, 2, 0, tzinfo=timezone.utc)


def imap_settings(tmp_path, database_url, proxy, **values):
    # links are not fetched here (tests/test_fetching*.py fetch them): no request leaves the machine
    values = {"imap_host": "127.0.0.1", "imap_port": proxy.port, "imap_ssl": False, "imap_user": USER,
              "imap_password": PASSWORD, "fetch_links": False, **values}
    return daemon_settings(tmp_path, database_url, **values)


def append(dovecot, messages, folder="INBOX"):
    client = dovecot.client()
    if not client.folder_exists(folder):
        client.create_folder(folder)
    for raw, moment in messages:
        client.append(folder, raw, msg_time=moment)
    client.logout()


def ledger(service):
    with service.Session() as session:
        return session.scalars(select(Message).order_by(Message.id)).all()


def test_poll_once_records_each_message_once_with_its_verdict(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [
        (simple_mail(1, "链接: https://pan.baidu.com/s/1AbCdEf 提取码: ab12"), ON_TIME),
        (simple_mail(2, "我在休假", headers={"Auto-Submitted": "auto-replied"}), ON_TIME),
        (simple_mail(3, "请查收"), ON_TIME),
        (simple_mail(4, "https://pan.baidu.com/s/1LateLink?pwd=cd34"), LATE),
    ])
    service = open_service(imap_settings(tmp_path, database_url, proxy))
    assert poll_and_process(service) == (4, 4)
    verdicts = [(m.uid, m.verdict, m.state) for m in ledger(service)]
    assert verdicts == [(1, "needs_review", "done"), (2, "ignored", "done"), (3, "rejected", "done"),
                        (4, "rejected", "done")]
    assert all(s["id_sent"] and s["refused_select"] == 0 for s in proxy.sessions)
    assert poll_and_process(service) == (0, 0)  # run twice: nothing the second time
    assert len(ledger(service)) == 4
    replies = sorted((tmp_path / "data" / "outbox").glob("*.eml"))
    assert len(replies) == 3  # the auto-reply is never answered


def test_internaldate_decides_lateness_not_the_date_header(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [
        (simple_mail(1, "https://pan.baidu.com/s/1X?pwd=ab12", date="Mon, 01 Jul 2024 10:00:00 +0800"), LATE),
        (simple_mail(2, "https://pan.baidu.com/s/1Y?pwd=ab12", date="Sat, 10 Aug 2024 10:00:00 +0800"), ON_TIME),
    ])
    service = open_service(imap_settings(tmp_path, database_url, proxy))
    poll_and_process(service)
    first, second = ledger(service)
    assert "deadline.late" in [f["code"] for f in first.report["findings"]]
    assert "deadline.late" not in [f["code"] for f in second.report["findings"]]


def test_select_without_id_is_refused_like_163(mailbox_163):
    from imapclient import IMAPClient
    from imapclient.exceptions import IMAPClientError

    _, proxy = mailbox_163
    client = IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=10)
    assert b"UIDNEXT" not in b" ".join(client.capabilities())
    assert b"IDLE" not in client.capabilities() and b"MOVE" not in client.capabilities()
    client.login(USER, PASSWORD)
    try:
        client.select_folder("INBOX")
        raise AssertionError("SELECT before ID must fail")
    except IMAPClientError as err:
        assert "Unsafe Login" in str(err)
    client.id_({"name": "test"})
    assert b"UIDNEXT" not in client.select_folder("INBOX")
    client.logout()


def test_nothing_is_fetched_twice_across_polls(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(3)])
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)
    source = lambda: ImapSource(settings)  # noqa: E731
    assert poll(settings, service.Session, source) == 3
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(3, 5)])
    assert poll(settings, service.Session, source) == 2
    assert poll(settings, service.Session, source) == 0
    with service.Session() as session:
        received = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "received"))
        state = session.scalars(select(MailboxState)).one()
    assert received == 5 and state.highest_uid == 5


def test_uidvalidity_change_relists_without_rejudging(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    messages = [(simple_mail(n), ON_TIME) for n in range(3)]
    append(dovecot, messages, folder="Submissions")
    settings = imap_settings(tmp_path, database_url, proxy, imap_folder="Submissions")
    service = open_service(settings)
    assert poll_and_process(service) == (3, 3)
    client = dovecot.client()
    client.delete_folder("Submissions")  # recreated: a new UIDVALIDITY
    client.logout()
    append(dovecot, messages + [(simple_mail(9), ON_TIME)], folder="Submissions")
    assert poll_and_process(service) == (1, 1)
    with service.Session() as session:
        validities = session.scalars(select(MailboxState.uidvalidity)).all()
    assert len(set(validities)) == 2 and len(ledger(service)) == 4


def test_server_stopped_and_started_mid_poll(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(120)])
    settings = imap_settings(tmp_path, database_url, proxy, fetch_batch=10)
    service = open_service(settings)
    restarted = []

    class Dropping(ImapSource):
        def fetch(self, uids):
            fetched = super().fetch(uids)
            if len(restarted) == 0 and uids[0] > 30:
                restarted.append(uids[0])
                dovecot.stop()  # the server goes away mid-poll …
                dovecot.start()  # … and comes back
            return fetched

    assert poll(settings, service.Session, lambda: Dropping(settings), backoff=0.2) == 120
    assert restarted
    messages = ledger(service)
    assert len(messages) == 120 and len({m.uid for m in messages}) == 120


def test_a_mailbox_of_a_thousand_messages(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    client = dovecot.client()
    for n in range(1000):
        client.append("INBOX", simple_mail(n), msg_time=ON_TIME)
    client.logout()
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)
    assert poll(settings, service.Session, lambda: ImapSource(settings)) == 1000
    assert poll(settings, service.Session, lambda: ImapSource(settings)) == 0
    assert len(ledger(service)) == 1000


def test_processed_mail_is_moved_with_copy_and_expunge(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(3)])
    client = dovecot.client()
    client.create_folder("Done")
    client.logout()
    service = open_service(imap_settings(tmp_path, database_url, proxy, imap_move_to="Done"))
    poll_and_process(service)
    client = dovecot.client()
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    assert client.select_folder("Done")[b"EXISTS"] == 3
    client.logout()
    assert all(m.archived for m in ledger(service))
    commands = [c for s in proxy.sessions for c in s["commands"]]
    assert "MOVE" not in commands  # not offered by 163, so COPY + \Deleted + UID EXPUNGE


def test_maildir_source(tmp_path, database_url):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    deliver_to_maildir(folder, simple_mail(2), LATE)
    source = MaildirSource(folder)
    source.connect()
    fetched = source.fetch(source.uids_after(0))
    assert [f.internaldate for f in fetched] == [ON_TIME, LATE]
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    assert poll_and_process(service) == (2, 2)
    assert poll_and_process(service) == (0, 0)


def test_a_uid_fetched_without_its_body_is_fetched_again(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(3)])
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)

    class Flaky(ImapSource):
        def fetch(self, uids):
            return [f for f in super().fetch(uids) if f.uid != 2]  # UID 2's body did not come

    assert poll(settings, service.Session, lambda: Flaky(settings)) == 2  # UIDs 1 and 3
    assert poll(settings, service.Session, lambda: ImapSource(settings)) == 1  # 2 again; 3 is known
    assert sorted(m.uid for m in ledger(service)) == [1, 2, 3]


def test_processed_mail_is_archived_after_a_uidvalidity_change(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(2)], folder="Submissions")
    settings = imap_settings(tmp_path, database_url, proxy, imap_folder="Submissions")
    service = open_service(settings)
    poll_and_process(service)
    client = dovecot.client()
    client.delete_folder("Submissions")
    client.create_folder("Done")
    client.logout()
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(2)], folder="Submissions")
    settings.imap_move_to = "Done"
    poll_and_process(open_service(settings))
    client = dovecot.client()
    assert client.select_folder("Submissions")[b"EXISTS"] == 0 and client.select_folder("Done")[b"EXISTS"] == 2
    client.logout()


# ------------------------------------------------------------------ operators' mistakes

def test_a_rejected_login_is_permanent_and_names_the_setting(tmp_path, database_url, mailbox_163):
    import pytest

    from intake.kernel.errors import ConfigError

    dovecot, proxy = mailbox_163
    settings = imap_settings(tmp_path, database_url, proxy, imap_password="the-web-password")
    service = open_service(settings)
    with pytest.raises(ConfigError) as raised:
        poll(settings, service.Session, lambda: ImapSource(settings))
    assert "INTAKE_IMAP_PASSWORD" in str(raised.value) and "客户端授权码" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert len(proxy.sessions) == 1  # told at once: never retried like a network error


def test_tls_against_a_plain_port_is_permanent_and_names_the_setting(tmp_path, database_url, mailbox_163):
    import pytest

    from intake.kernel.errors import ConfigError

    dovecot, proxy = mailbox_163
    settings = imap_settings(tmp_path, database_url, proxy)
    settings.imap_ssl = True
    service = open_service(settings)
    with pytest.raises(ConfigError, match="INTAKE_IMAP_SSL"):
        poll(settings, service.Session, lambda: ImapSource(settings))
    assert len(proxy.sessions) == 1


def test_a_failed_poll_is_visible_to_staff_and_clears_when_mended(tmp_path, database_url, mailbox_163):
    import pytest

    from intake.kernel.errors import ConfigError
    from intake.store import ServiceStatus

    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(1), ON_TIME)])
    settings = imap_settings(tmp_path, database_url, proxy, imap_password="wrong")
    service = open_service(settings)
    with pytest.raises(ConfigError):
        poll_and_process(service)
    with service.Session() as session:
        status = session.get(ServiceStatus, "mailbox")
        assert not status.ok and "INTAKE_IMAP_PASSWORD" in status.detail and status.last_ok_at is None
    settings.imap_password = PASSWORD
    assert poll_and_process(service) == (1, 1)
    with service.Session() as session:
        status = session.get(ServiceStatus, "mailbox")
        assert status.ok and status.last_ok_at is not None


def test_a_missing_move_folder_is_created(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(n), ON_TIME) for n in range(2)])
    service = open_service(imap_settings(tmp_path, database_url, proxy, imap_move_to="已处理"))
    assert poll_and_process(service) == (2, 2)
    client = dovecot.client()
    assert client.folder_exists("已处理") and client.select_folder("已处理")[b"EXISTS"] == 2
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()
    assert all(m.archived for m in ledger(service))


def test_a_move_folder_the_server_will_not_create_is_one_line(tmp_path, database_url, mailbox_163):
    import pytest

    from intake.kernel.errors import ConfigError

    dovecot, proxy = mailbox_163
    settings = imap_settings(tmp_path, database_url, proxy, imap_move_to="~已处理")
    service = open_service(settings)
    with pytest.raises(ConfigError, match="INTAKE_IMAP_MOVE_TO") as raised:
        poll(settings, service.Session, lambda: ImapSource(settings))
    assert "\n" not in str(raised.value)


def test_run_stays_up_through_a_rejected_login_and_says_so_once_a_round(tmp_path, mailbox_163):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from intake.store import ServiceStatus

    dovecot, proxy = mailbox_163
    database_url = f"sqlite:///{tmp_path / 'intake.sqlite3'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update({"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "INTAKE_DATA_DIR": str(tmp_path / "data"),
                "INTAKE_DATABASE_URL": database_url, "INTAKE_IMAP_HOST": "127.0.0.1",
                "INTAKE_IMAP_PORT": str(proxy.port), "INTAKE_IMAP_SSL": "false", "INTAKE_IMAP_USER": USER,
                "INTAKE_IMAP_PASSWORD": "wrong", "INTAKE_POLL_MINUTES": "0.01"})
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "run"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        service = open_service(daemon_settings(tmp_path, database_url))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(proxy.sessions) < 4:  # start-up and three rounds have tried
            time.sleep(0.1)
        assert len(proxy.sessions) >= 4 and process.poll() is None  # still up, polling each round
        with service.Session() as session:
            status = session.get(ServiceStatus, "mailbox")
            assert not status.ok and "INTAKE_IMAP_PASSWORD" in status.detail
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read()
    errors = [line for line in stderr.splitlines() if "round failed" in line]
    assert errors and all("INTAKE_IMAP_PASSWORD" in line for line in errors)
    # one login at start-up, then one per round, none retried within a round (the old
    # code retried five times); the last round may still have been under way at SIGTERM
    assert len(errors) >= 3 and len(errors) >= len(proxy.sessions) - 2
    assert "Traceback" not in stderr


def test_a_temporary_login_refusal_is_retried_not_blamed_on_the_password(tmp_path, database_url, mailbox_163):
    import pytest

    from intake.kernel.errors import ConfigError, TransientError

    dovecot, proxy = mailbox_163
    proxy.refuse_login = b"[UNAVAILABLE] Temporary authentication failure"
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)
    with pytest.raises(TransientError) as raised:
        poll(settings, service.Session, lambda: ImapSource(settings), retries=1, backoff=0.01)
    assert not isinstance(raised.value, ConfigError) and "PASSWORD" not in str(raised.value)
    assert len(proxy.sessions) == 2  # tried again, like any passing fault


def test_a_stop_request_ends_the_reconnect_backoff(tmp_path, database_url):
    from tests.imap_server import free_port

    settings = daemon_settings(tmp_path, database_url, imap_host="127.0.0.1", imap_port=free_port(),
                               imap_ssl=False, imap_user=USER, imap_password=PASSWORD)
    service = open_service(settings)
    attempts: list[int] = []

    def source():
        attempts.append(1)
        return ImapSource(settings)

    # nothing listens there: refused at once; the stop comes during the first backoff
    assert poll(settings, service.Session, source, retries=5, backoff=600.0, should_stop=lambda: bool(attempts)) == 0
    assert len(attempts) == 1  # no second attempt, and no 600 s wait (the test would time out)


def test_archiving_closes_the_connection_when_select_fails(tmp_path, database_url, mailbox_163):
    import pytest

    from intake.kernel.errors import ConfigError

    from intake.daemon.ledger import archive_done

    dovecot, proxy = mailbox_163
    settings = imap_settings(tmp_path, database_url, proxy, imap_folder="NoSuchFolder", imap_move_to="Done")
    service = open_service(settings)
    with pytest.raises(ConfigError, match="INTAKE_IMAP_FOLDER"):  # named, not an imaplib error
        archive_done(settings, service.Session, lambda: ImapSource(settings))
    (session,) = proxy.sessions
    assert session["commands"][-1].strip() == "LOGOUT"


def test_an_unverifiable_certificate_never_advises_plain_imap(tmp_path, database_url):
    import shutil
    import socket
    import ssl
    import subprocess
    import threading

    import pytest

    from intake.kernel.errors import ConfigError

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():  # a TLS server whose certificate no CA vouches for
        try:
            connection, _ = listener.accept()
            with context.wrap_socket(connection, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    threading.Thread(target=serve, daemon=True).start()
    settings = daemon_settings(tmp_path, database_url, imap_host="127.0.0.1", imap_port=listener.getsockname()[1],
                               imap_ssl=True, imap_user=USER, imap_password=PASSWORD)
    try:
        with pytest.raises(ConfigError) as raised:
            ImapSource(settings).connect()
    finally:
        listener.close()
    assert "certificate" in str(raised.value) and "INTAKE_IMAP_SSL=false" not in str(raised.value)


def test_a_no_on_select_of_a_folder_that_exists_is_retried(tmp_path, database_url, mailbox_163):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(1), ON_TIME)])
    proxy.refuse_selects = 1  # a busy moment, as 163 has them
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)
    assert poll(settings, service.Session, lambda: ImapSource(settings), backoff=0.01) == 1
    assert len(proxy.sessions) == 2  # refused once, then polled


def test_a_maildir_message_moved_by_a_mail_client_meanwhile_is_not_lost(tmp_path, database_url):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    sources: list[MaildirSource] = []

    def source() -> MaildirSource:
        made = MaildirSource(folder)
        sources.append(made)
        if len(sources) == 1:  # a mail client files the message between listing and reading
            listed = made.connect

            def connect_then_move() -> None:
                listed()
                for path in (folder / "new").iterdir():
                    path.rename(folder / "cur" / f"{path.name}:2,S")

            made.connect = connect_then_move  # type: ignore[method-assign]
        return made

    assert poll(service.settings, service.Session, source, backoff=0.01) == 1
    assert len(sources) == 2 and [m.from_address for m in ledger(service)] == ["unit1@163.com"]


def test_a_maildir_delivered_in_one_second_is_read_in_delivery_order(tmp_path):
    """Keys the stdlib makes ("<sec>.M<usec>P<pid>Q<n>.<host>") do not zero-pad the
    microseconds: read as text, M100000 came before M99999 and the later mail was recorded
    first (one CI run in many, for tests that deliver at one moment)."""
    import os

    folder = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    moment = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc).timestamp()
    names = ["1722312000.M99999P7Q1.host", "1722312000.M100000P7Q2.host", "1722312000.M100001P7Q10.host"]
    for n, name in enumerate(names, start=1):
        path = folder / "new" / name
        path.write_bytes(simple_mail(n))
        os.utime(path, (moment, moment))  # one delivery time for all three
    source = MaildirSource(folder)
    source.connect()
    fetched = source.fetch(source.uids_after(0))
    assert [b"".join(item.body).count(f"<m{n}@".encode()) for n, item in enumerate(fetched, start=1)] == [1, 1, 1]
