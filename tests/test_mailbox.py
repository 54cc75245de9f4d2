"""Polling a real IMAP server (Dovecot) that behaves like 163, and a Maildir."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from intake.daemon import poll
from intake.mailbox import ImapSource, MaildirSource, deliver_to_maildir
from intake.service import open_service, poll_and_process
from intake.store import AuditEvent, MailboxState, Message
from tests.conftest import daemon_settings, simple_mail
from tests.imap_server import PASSWORD, USER

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
LATE = datetime(2024, 8, 1, 2, 0, tzinfo=timezone.utc)


def imap_settings(tmp_path, database_url, proxy, **values):
    return daemon_settings(tmp_path, database_url, imap_host="127.0.0.1", imap_port=proxy.port, imap_ssl=False,
                           imap_user=USER, imap_password=PASSWORD, **values)


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
