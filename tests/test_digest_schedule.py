"""The digest once a day: from INTAKE_DIGEST_AT (Beijing time), across restarts, with
several workers or processes at once (the unique dedupe key decides), and
`intake digest` as staff run it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from intake.daemon.digest import digest_key, is_due, queue_due_digest
from intake.daemon.delivery import deliver_pending
from intake.demo import build_demo_maildir
from intake.notifier.outbox import queue_mail
from intake.notifier.transport import make_transport
from intake.service import open_service, poll_and_process, staff_mail
from intake.kernel.errors import ConfigError
from intake.settings import Settings, load_settings
from intake.store import FindingRow, Message, Outbox, Project
from tests.conftest import daemon_settings
from tests.digest_seed import SEEDED_DIGEST as SEEDED, seed

ROOT = Path(__file__).resolve().parents[1]
BEIJING_0829 = datetime(2024, 7, 30, 0, 29, 59, tzinfo=timezone.utc)  # 08:29:59 in Beijing
BEIJING_0830 = datetime(2024, 7, 30, 0, 30, tzinfo=timezone.utc)
STAFF = ["staff@acftu.org", "lead@acftu.org"]


def digest_rows(service) -> list[Outbox]:
    """The digests queued, but the seed's own (a digest left in `sending` yesterday)."""
    with service.Session() as session:
        return list(session.scalars(select(Outbox).where(Outbox.kind == "digest", Outbox.dedupe_key != SEEDED)
                                    .order_by(Outbox.id)))


def delivered(service) -> list[Path]:
    return sorted((service.settings.data_dir / "outbox").glob("digest-*.eml"))


def test_due_from_the_set_time_to_the_end_of_the_beijing_day():
    settings = Settings(digest_at="08:30")
    assert not is_due(settings, BEIJING_0829) and is_due(settings, BEIJING_0830)
    assert is_due(settings, datetime(2024, 7, 30, 15, 59, tzinfo=timezone.utc))  # 23:59 in Beijing
    assert not is_due(settings, datetime(2024, 7, 30, 16, 1, tzinfo=timezone.utc))  # 00:01 the next day
    assert digest_key(datetime(2024, 7, 30, 16, 30, tzinfo=timezone.utc)) == "digest:2024-07-31"  # Beijing's day
    assert digest_key(BEIJING_0830) == "digest:2024-07-30"


def test_the_settings_and_their_defaults():
    assert (load_settings(environ={}).digest_at, load_settings(environ={}).alert_after_minutes) == ("08:30", 30)
    settings = load_settings(environ={"INTAKE_DIGEST_AT": "7:05", "INTAKE_ALERT_AFTER_MINUTES": "45"})
    assert (settings.digest_at, settings.alert_after_minutes) == ("07:05", 45)
    for environ in ({"INTAKE_DIGEST_AT": "8.30"}, {"INTAKE_DIGEST_AT": "24:00"}, {"INTAKE_DIGEST_AT": "08:3"}):
        with pytest.raises(ConfigError, match="INTAKE_DIGEST_AT: must be a time of day HH:MM"):
            load_settings(environ=environ)
    with pytest.raises(ConfigError, match="INTAKE_ALERT_AFTER_MINUTES"):
        load_settings(environ={"INTAKE_ALERT_AFTER_MINUTES": "0"})


def test_the_round_sends_it_once_a_day_across_restarts(tmp_path, database_url):
    settings = daemon_settings(tmp_path, database_url, staff_emails=STAFF)
    service = open_service(settings)
    seed(service.Session, BEIJING_0830)
    staff_mail(service, BEIJING_0829)
    assert digest_rows(service) == []
    staff_mail(service, BEIJING_0830)
    staff_mail(service, BEIJING_0830 + timedelta(minutes=5))
    restarted = open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF))
    staff_mail(restarted, BEIJING_0830 + timedelta(hours=6))
    today = [row for row in digest_rows(restarted) if row.dedupe_key == "digest:2024-07-30"]
    assert len(today) == 1 and today[0].state == "sent" and today[0].recipient == ", ".join(STAFF)
    assert len(delivered(restarted)) == 1
    staff_mail(restarted, BEIJING_0830 + timedelta(days=1, minutes=1))
    assert [r.dedupe_key for r in digest_rows(restarted)][-2:] == ["digest:2024-07-30", "digest:2024-07-31"]


def test_a_daemon_down_at_the_set_time_sends_it_when_it_comes_up(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF, digest_at="07:00"))
    staff_mail(service, datetime(2024, 7, 30, 6, 0, tzinfo=timezone.utc))  # first round at 14:00 in Beijing
    assert [r.dedupe_key for r in digest_rows(service)] == ["digest:2024-07-30"]


def test_no_staff_address_no_digest_from_the_round(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url))
    staff_mail(service, BEIJING_0830)
    assert digest_rows(service) == []


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_at_once_queue_and_deliver_one_digest(tmp_path, database_url, workers):
    """Each worker has its own engine and sessions, as separate processes would."""
    services = [open_service(daemon_settings(tmp_path, database_url, staff_emails=STAFF)) for _ in range(workers)]
    seed(services[0].Session, BEIJING_0830)
    start, errors, queued = threading.Barrier(workers), [], []

    def worker(number: int, service) -> None:
        try:
            start.wait(timeout=60)
            row = queue_due_digest(service.Session, service.settings, service.policy, BEIJING_0830)
            queued.append(row)
            # a worker id of its own each (as processes have; threads share the process's)
            deliver_pending(service.Session, make_transport(service.settings), f"worker-{number}")
        except Exception as err:  # reported below: a thread's failure must fail the test
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n, service)) for n, service in enumerate(services)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    assert len(digest_rows(services[0])) == 1 and sum(row is not None for row in queued) == 1
    assert digest_rows(services[0])[0].state == "sent" and len(delivered(services[0])) == 1


def test_the_dedupe_key_is_a_compare_and_set(tmp_path, database_url):
    """Every worker inserts at the same moment, none looks first: one row, one winner."""
    services = [open_service(daemon_settings(tmp_path, database_url)) for _ in range(4)]
    start, results, errors = threading.Barrier(len(services)), [], []
    mail = EmailMessage()
    mail["Subject"] = "日报"
    mail.set_content("正文")

    def insert(service) -> None:
        try:
            with service.Session.begin() as session:
                start.wait(timeout=60)
                row = queue_mail(session, mail, kind="digest", recipients=STAFF, dedupe_key="digest:2024-07-30")
                results.append(row is not None)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=insert, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and sorted(results) == [False, False, False, True]
    assert len(digest_rows(services[0])) == 1


# ------------------------------------------------------------------ the command

def intake(tmp_path, database_url, *args: str, staff: str | None = "staff@acftu.org") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTAKE_DATA_DIR": str(tmp_path / "data"),
           "INTAKE_DATABASE_URL": database_url}
    env.pop("INTAKE_STAFF_EMAILS", None)
    if staff:
        env["INTAKE_STAFF_EMAILS"] = staff
    return subprocess.Popen([sys.executable, "-m", "intake.cli", "digest", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()  # a hung command must not outlive the test
    return process.returncode, out, err


def test_send_once_then_force_and_two_processes_at_once(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url))
    seed(service.Session, datetime.now(timezone.utc))
    both = [finished(p) for p in [intake(tmp_path, database_url, "--send") for _ in range(2)]]
    assert [status for status, _, _ in both] == [0, 0], both
    assert sum("每天只发送一次" in out for _, out, _ in both) <= 1
    rows = digest_rows(service)
    assert [r.dedupe_key for r in rows] == [digest_key(datetime.now(timezone.utc))] and rows[0].state == "sent"
    status, out, _ = finished(intake(tmp_path, database_url, "--send"))
    assert status == 0 and "每天只发送一次" in out and "--force" in out and len(digest_rows(service)) == 1
    status, out, _ = finished(intake(tmp_path, database_url, "--send", "--force"))
    keys = [r.dedupe_key for r in digest_rows(service)]
    assert status == 0 and len(keys) == 2 and keys[1].startswith(keys[0] + ":again:")
    assert len(delivered(service)) == 2


def test_send_without_staff_addresses_is_one_line(tmp_path):
    status, out, err = finished(intake(tmp_path, f"sqlite:///{tmp_path / 'intake.sqlite3'}", "--send", staff=None))
    assert status == 2 and err.count("\n") == 1 and "INTAKE_STAFF_EMAILS" in err and "Traceback" not in err


def test_force_without_send_and_help_lines(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'intake.sqlite3'}"
    status, _, err = finished(intake(tmp_path, database_url, "--preview", str(tmp_path / "d.html"), "--force"))
    assert status == 2 and "--force goes with --send" in err
    status, out, _ = finished(intake(tmp_path, database_url, "--help"))
    said = " ".join(out.split())
    assert status == 0
    for option, words in (("--preview FILE.html", "write today's digest to FILE.html"),
                          ("--send", "queue today's digest to INTAKE_STAFF_EMAILS and deliver it now"),
                          ("--force", "with --send: send today's digest again"), ("--config CONFIG", "settings TOML")):
        assert f"{option} {words}" in said, option


def test_preview_writes_the_page_with_its_chart_and_workbook_beside_it(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url))
    seed(service.Session, datetime.now(timezone.utc))
    target = tmp_path / "预览" / "digest.html"
    status, out, err = finished(intake(tmp_path, database_url, "--preview", str(target), staff=None))
    assert status == 0, err
    day = digest_key(datetime.now(timezone.utc)).split(":")[1]
    page = target.read_text("utf-8")
    assert 'src="digest-chart.png"' in page and f'href="digest-{day}.xlsx"' in page
    assert (target.parent / "digest-chart.png").read_bytes()[:4] == b"\x89PNG"
    assert (target.parent / f"digest-{day}.xlsx").stat().st_size > 0
    assert digest_rows(service) == [] and "未发送" in out


def test_a_round_over_real_mail_delivers_the_digest_with_every_project_and_finding(tmp_path, database_url):
    """The demo's mail judged by the daemon, then the digest its round delivers: the
    workbook attached to the mail holds every project and finding of the database."""
    settings = daemon_settings(tmp_path, database_url, staff_emails=STAFF, digest_at="00:00",
                               maildir=build_demo_maildir(tmp_path / "demo-maildir"),
                               fetch_links=False)  # as `intake demo`: its Baidu link is made up
    service = open_service(settings)
    poll_and_process(service)
    [mail_file] = delivered(service)
    mail = message_from_bytes(mail_file.read_bytes(), policy=email_policy.default)
    [attachment] = list(mail.iter_attachments())
    book = load_workbook(io.BytesIO(attachment.get_content()))
    with service.Session() as session:
        projects = session.execute(select(Message.receipt, Project.name).join(Project.message)).all()
        findings = session.execute(select(Message.receipt, FindingRow.code, FindingRow.text)
                                   .join(FindingRow.message)).all()
    assert len(projects) >= 2 and len(findings) >= 3  # the good, the late and the broken report
    assert sorted((r[4], r[1]) for r in book["项目"].iter_rows(min_row=2, values_only=True)) == \
        sorted(tuple(p) for p in projects)
    assert sorted((r[0], r[3], r[5]) for r in book["问题"].iter_rows(min_row=2, values_only=True)) == \
        sorted(tuple(f) for f in findings)
    poll_and_process(service)  # the next round: no second digest
    assert len(digest_rows(service)) == 1
