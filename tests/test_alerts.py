"""Alerts to staff, on the database, with `now` passed in (no timing): polling failed
too long, a refused IMAP or SMTP login; one mail when it starts, one when it recovers,
at most one of a kind an hour, one between several workers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email import message_from_string, policy as email_policy

import pytest
from sqlalchemy import select

from intake.daemon.alerts import check_alerts
from intake.kernel.errors import ConfigError, LoginRejected, TransientError
from intake.service import open_service, poll_and_process
from intake.store import Outbox, ServiceStatus, set_status, status_detail
from tests.conftest import daemon_settings, simple_mail
from tests.imap_server import PASSWORD, USER

T0 = datetime(2024, 7, 30, 1, 0, tzinfo=timezone.utc)
STAFF = ["staff@acftu.org"]
TIMED_OUT = "TransientError: imap.163.com: connection timed out"


@pytest.fixture
def service(tmp_path, database_url):
    return open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF))


def status(service, name: str, ok: bool, detail: str | None, at: datetime, last_ok_at: datetime | None) -> None:
    with service.Session.begin() as session:
        row = session.get(ServiceStatus, name) or ServiceStatus(name=name, ok=ok)
        row.ok, row.detail, row.at, row.last_ok_at = ok, detail, at, last_ok_at
        session.add(row)


def alerts(service) -> list[tuple[str, str]]:
    with service.Session() as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == "alert").order_by(Outbox.id))
        return [(row.dedupe_key, row.subject) for row in rows]


def test_polling_failed_longer_than_the_setting_then_recovered(service):
    last_ok = T0 - timedelta(minutes=20)
    status(service, "mailbox", False, TIMED_OUT, T0, last_ok)
    assert check_alerts(service.Session, service.settings, T0) == []  # 20 minutes: not yet
    late = last_ok + timedelta(minutes=30)
    assert check_alerts(service.Session, service.settings, late) == ["alert:mailbox_down:1:down"]
    assert check_alerts(service.Session, service.settings, late + timedelta(minutes=5)) == []  # once
    # it recovers ten minutes later: the recovery waits for the hour since the alert
    status(service, "mailbox", True, "3 new", late + timedelta(minutes=10), late + timedelta(minutes=10))
    assert check_alerts(service.Session, service.settings, late + timedelta(minutes=10)) == []
    assert check_alerts(service.Session, service.settings, late + timedelta(minutes=61)) == ["alert:mailbox_down:2:up"]
    assert check_alerts(service.Session, service.settings, late + timedelta(minutes=90)) == []
    subjects = [subject for _, subject in alerts(service)]
    assert subjects == ["【报送系统告警】收件邮箱长时间无法收取邮件", "【报送系统已恢复】收件邮箱已恢复收取"]


def test_never_more_than_one_alert_of_a_kind_an_hour(service):
    now = T0
    status(service, "mailbox", False, TIMED_OUT, now, now - timedelta(hours=1))
    assert check_alerts(service.Session, service.settings, now) == ["alert:mailbox_down:1:down"]
    sent = [now]
    for minute in range(5, 180, 5):  # it flaps every five minutes for three hours
        now = T0 + timedelta(minutes=minute)
        ok = minute % 10 == 5
        status(service, "mailbox", ok, "1 new" if ok else TIMED_OUT, now,
               now if ok else now - timedelta(hours=1))
        if check_alerts(service.Session, service.settings, now):
            sent.append(now)
    assert all(later - earlier >= timedelta(hours=1) for earlier, later in zip(sent, sent[1:]))
    keys = [key for key, _ in alerts(service)]
    assert len(keys) == len(sent) and all(key.endswith(":down" if n % 2 else ":up")
                                         for n, key in enumerate(keys, start=1))


def test_a_refused_imap_login_alerts_at_once_from_a_real_poll(tmp_path, database_url, mailbox_163):
    """The poll records a refused login as such (service_status 'mailbox'); the round
    that saw it has queued the alert, and delivered it to the outbox folder."""
    dovecot, proxy = mailbox_163
    dovecot.client().append("INBOX", simple_mail(1))
    settings = daemon_settings(tmp_path, database_url, staff_emails=STAFF, imap_host="127.0.0.1",
                               imap_port=proxy.port, imap_ssl=False, imap_user=USER, imap_password="wrong")
    service = open_service(settings)
    with pytest.raises(ConfigError):
        poll_and_process(service)
    with service.Session() as session:
        assert session.get(ServiceStatus, "mailbox").detail.startswith("LoginRejected: INTAKE_IMAP_PASSWORD")
    assert [key for key, _ in alerts(service)] == ["alert:imap_login:1:down"]
    [mail] = (settings.data_dir / "outbox").glob("alert-*.eml")
    body = message_from_string(mail.read_text("utf-8"), policy=email_policy.default)
    assert body["To"] == "staff@acftu.org" and body["Auto-Submitted"] == "auto-generated"
    text = body.get_content()
    assert "收件邮箱拒绝登录" in text and "INTAKE_IMAP_PASSWORD" in text and "从未成功" in text
    with pytest.raises(ConfigError):
        poll_and_process(service)  # the next round: still refused, no second mail
    assert len(alerts(service)) == 1
    settings.imap_password = PASSWORD
    assert poll_and_process(service) == (1, 1)
    assert len(alerts(service)) == 1  # mended within the hour: the recovery mail waits for it


def test_a_refused_smtp_login_alerts_and_recovers(service):
    with service.Session.begin() as session:
        set_status(session, "smtp", False, status_detail(LoginRejected("INTAKE_SMTP_PASSWORD: 535 Error: authentication failed")))
    assert check_alerts(service.Session, service.settings, T0) == ["alert:smtp_login:1:down"]
    with service.Session.begin() as session:
        set_status(session, "smtp", False, status_detail(TransientError("smtp.163.com: connection reset")))
    assert check_alerts(service.Session, service.settings, T0 + timedelta(hours=2)) == ["alert:smtp_login:2:up"]


def test_a_refused_login_is_its_own_alert_not_also_a_long_failure(service):
    status(service, "mailbox", False, status_detail(LoginRejected("INTAKE_IMAP_PASSWORD: rejected")), T0,
           T0 - timedelta(hours=5))
    assert check_alerts(service.Session, service.settings, T0) == ["alert:imap_login:1:down"]


def test_no_staff_address_no_alert(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url))
    status(service, "mailbox", False, TIMED_OUT, T0, None)
    assert check_alerts(service.Session, service.settings, T0) == [] and alerts(service) == []


def test_workers_that_see_it_at_once_queue_one_alert(tmp_path, database_url):
    services = [open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF)) for _ in range(3)]
    status(services[0], "mailbox", False, TIMED_OUT, T0, T0 - timedelta(hours=2))
    start, results, errors = threading.Barrier(3), [], []

    def check(service) -> None:
        try:
            start.wait(timeout=60)
            results.append(check_alerts(service.Session, service.settings, T0))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=check, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and sorted(map(len, results)) == [0, 0, 1]
    assert [key for key, _ in alerts(services[0])] == ["alert:mailbox_down:1:down"]
