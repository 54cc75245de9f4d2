"""The daemon's processing: states, retries, quarantine, staff actions, business rules,
crash safety (SIGKILL at random moments) and several workers on one queue."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intake.daemon.claims import claim
from intake.daemon.ledger import poll
from intake.daemon.staff import override, reprocess
from intake.daemon.worker import Worker
from intake.kernel.errors import ConfigError, TransientError
from intake.sources import MaildirSource, deliver_to_maildir
from intake.samples import make_document, make_form, make_question_bank, make_scan
from intake.service import open_service, poll_and_process
from intake.states import State
from intake.store import AuditEvent, FindingRow, Message, Outbox, Project, Unit, UnitContact
from intake.units import import_units
from tests.conftest import daemon_settings, simple_mail
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]


def maildir_service(tmp_path, database_url, messages, **values):
    folder = tmp_path / "Maildir"
    for index, raw in enumerate(messages):
        deliver_to_maildir(folder, raw, ON_TIME + timedelta(minutes=index))
    return open_service(daemon_settings(tmp_path, database_url, maildir=folder, **values))


def package_zip(tmp_path: Path, unit: str, courses: list[str], tag: str) -> bytes:
    """A package without videos: judged quickly (video.missing), projects recorded."""
    root = tmp_path / f"pkg-{tag}"
    make_form(root / "报送表.docx", unit=unit, courses=courses)
    make_scan(root / "报送表.pdf")
    for course in courses:
        make_document(root / course / "说明.docx")
        make_question_bank(root / course / "题库.xlsx")
    from intake.samples import zip_folder

    return zip_folder(root, tmp_path / f"{tag}.zip", zipfile.ZIP_STORED).read_bytes()


def messages_of(service):
    with service.Session() as session:
        return session.scalars(select(Message).order_by(Message.id)).all()


def events(service, action):
    with service.Session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


# ------------------------------------------------------------------ states and staff actions

def test_receipts_are_short_unique_and_printable(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(n) for n in range(3)])
    poll_and_process(service)
    receipts = [m.receipt for m in messages_of(service)]
    assert receipts == ["WX2024-000001", "WX2024-000002", "WX2024-000003"]


def test_a_failure_is_recorded_retried_then_quarantined_and_reprocess_replays(tmp_path, database_url, monkeypatch):
    service = maildir_service(tmp_path, database_url, [simple_mail(1)], max_attempts=3)
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    calls = tmp_path / "calls"  # judging runs in a child process: it counts in a file

    def broken(*args, **kwargs):
        with open(calls, "a") as out:
            out.write("call\n")
        raise TransientError("disk full")

    monkeypatch.setattr("intake.core.check_message", broken)
    worker = Worker(service.settings, service.Session, service.policy)
    worker.drain()
    (message,) = messages_of(service)
    assert message.state == State.FAILED and message.attempts == 1 and "disk full" in message.last_error
    assert message.traceback and message.next_attempt_at > datetime.now(timezone.utc)
    assert claim(service.Session, worker.me) is None  # not due yet
    for _ in range(2):  # make it due and fail again
        with service.Session.begin() as session:
            session.get(Message, message.id).next_attempt_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        worker.drain()
    (message,) = messages_of(service)
    assert message.state == State.QUARANTINED and message.attempts == 3 and len(calls.read_text().splitlines()) == 3
    monkeypatch.undo()
    reprocess(service.Session, message.receipt)
    Worker(service.settings, service.Session, service.policy).drain()
    (message,) = messages_of(service)
    assert message.state == State.DONE and message.verdict == "rejected"
    assert [e.actor for e in events(service, "reprocess")] == ["staff"]


def test_reprocess_never_answers_twice(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(1)])
    poll_and_process(service)
    reprocess(service.Session, "WX2024-000001")
    poll_and_process(service)
    with service.Session() as session:
        assert session.scalar(select(func.count()).select_from(Outbox)) == 1
    assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 1
    assert len(events(service, "judged")) == 2  # judged again on purpose, answered once


def test_override_is_a_staff_action(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(1)])
    poll_and_process(service)
    override(service.Session, "WX2024-000001", "accepted", "材料已线下补交")
    (message,) = messages_of(service)
    assert message.verdict == "accepted" and message.override_note == "材料已线下补交"
    (event,) = events(service, "override")
    assert event.actor == "staff" and event.detail["note"] == "材料已线下补交"


def test_reply_since_records_but_does_not_answer(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(1)],
                              reply_since=datetime(2024, 7, 31, tzinfo=timezone.utc))
    poll_and_process(service)
    (message,) = messages_of(service)
    assert message.state == State.DONE and message.verdict == "rejected"
    assert not (tmp_path / "data" / "outbox").exists()


def test_reply_is_marked_automatic_and_threads(tmp_path, database_url):
    import email

    service = maildir_service(tmp_path, database_url, [simple_mail(1)])
    poll_and_process(service)
    (reply_file,) = (tmp_path / "data" / "outbox").glob("*.eml")
    reply = email.message_from_bytes(reply_file.read_bytes())
    assert reply["Auto-Submitted"] == "auto-replied" and reply["In-Reply-To"] == "<m1@test.example.cn>"
    from intake.parsers.messages import decode_header

    assert reply["To"] == "unit1@163.com" and "WX2024-000001" in decode_header(reply["Subject"])
    plain, html = reply.get_payload()  # multipart/alternative: plain text first, then HTML
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    body = plain.get_payload(decode=True).decode("utf-8")
    assert "回执号：WX2024-000001" in body and "package.empty" not in body and "没有附件" in body


# ------------------------------------------------------------------ business rules

def test_units_import_and_unit_found_by_sender_then_by_form(tmp_path, database_url):
    table = tmp_path / "units.csv"
    table.write_text("单位名称,名额,联系邮箱\n湖北省总工会,1,hbzgh@126.com; hb2@163.com\n湖南省总工会,2,\n",
                     encoding="gb18030")
    by_sender = simple_mail(1, attachments={"a.zip": package_zip(tmp_path, "某某单位", ["课程甲"], "a")})
    by_sender = by_sender.replace(b"unit1@163.com", b"HBZGH@126.com")
    by_form = simple_mail(2, attachments={"b.zip": package_zip(tmp_path, "湖南省总工会", ["课程乙"], "b")})
    unknown = simple_mail(3, attachments={"c.zip": package_zip(tmp_path, "不存在的单位", ["课程丙"], "c")})
    service = maildir_service(tmp_path, database_url, [by_sender, by_form, unknown])
    assert import_units(service.Session, table) == (2, 2)
    poll_and_process(service)
    assert [m.unit_name for m in messages_of(service)] == ["湖北省总工会", "湖南省总工会", "不存在的单位"]
    with service.Session() as session:
        assert [m.unit_id is not None for m in session.scalars(select(Message).order_by(Message.id))] == [True, True, False]
        assert session.scalar(select(Unit).where(Unit.name == "湖北省总工会")).quota == 1
        assert session.scalar(select(func.count()).select_from(UnitContact)) == 2


def test_units_import_xlsx(tmp_path, database_url):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["附件2：名额分配表"])
    workbook.active.append(["序号", "单位", "推荐名额", "邮箱"])
    workbook.active.append([1, "四川省总工会", 3, "sc@qq.com"])
    workbook.save(tmp_path / "quota.xlsx")
    service = open_service(daemon_settings(tmp_path, database_url))
    assert import_units(service.Session, tmp_path / "quota.xlsx") == (1, 1)


def test_resubmission_supersedes_and_quota_is_watched(tmp_path, database_url):
    first = simple_mail(1, attachments={"a.zip": package_zip(tmp_path, "湖北省总工会", ["课程甲"], "a")})
    second = simple_mail(2, attachments={"b.zip": package_zip(tmp_path, "湖北省总工会", ["课程 甲", "课程乙"], "b")})
    table = tmp_path / "units.csv"
    table.write_text("单位,名额\n湖北省总工会,1\n", encoding="utf-8")
    service = maildir_service(tmp_path, database_url, [first, second])
    import_units(service.Session, table)
    poll_and_process(service)
    with service.Session() as session:
        projects = session.scalars(select(Project).order_by(Project.id)).all()
        codes = session.scalars(select(FindingRow.code).where(FindingRow.message_id == projects[-1].message_id)).all()
    old, new_a, new_b = projects
    assert old.superseded_by == new_a.id and new_a.superseded_by is None and new_b.superseded_by is None
    assert "duplicate.resubmission" in codes and "quota.exceeded" in codes


# ------------------------------------------------------------------ crashes and workers

def crash_corpus(tmp_path: Path, fake, count: int = 100) -> list[bytes]:
    """Attachments, Baidu links (fetched from the loopback fake by the probe route: a
    valid share needs staff, a missing one is the sender's), auto-replies, empty mail."""
    package = package_zip(tmp_path, "湖北省总工会", ["课程甲"], "crash")
    corpus = []
    for n in range(count):
        kind = n % 4
        if kind == 0:
            corpus.append(simple_mail(n, attachments={"材料.zip": package}))
        elif kind == 1:
            url = fake.add_share({"作品/视频.mp4": 1000}, "ab12").url if n % 8 == 1 else f"https://pan.baidu.com/s/1Crash{n}"
            corpus.append(simple_mail(n, f"{url}?pwd=ab12"))
        elif kind == 2:
            corpus.append(simple_mail(n, "我在休假", headers={"Auto-Submitted": "auto-replied"}))
        else:
            corpus.append(simple_mail(n, "忘了附件"))
    return corpus


def run_daemon(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "intake.cli", "poll", "--once"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def assert_consistent(service, count: int) -> None:
    messages = messages_of(service)
    assert len(messages) == count
    stuck = [(m.receipt, m.state, m.last_error) for m in messages if m.state != State.DONE or m.claimed_by]
    assert stuck == [], (Counter(m.state for m in messages), stuck[:5])
    judged = Counter(e.message_id for e in events(service, "judged"))
    assert all(judged[m.id] == 1 for m in messages)  # judged exactly once
    with service.Session() as session:
        for message in messages:
            projects = session.scalar(select(func.count()).select_from(Project).where(Project.message_id == message.id))
            assert projects == len(message.report["projects"])  # every project recorded once
            findings = session.scalar(select(func.count()).select_from(FindingRow).where(FindingRow.message_id == message.id))
            assert findings == len(message.report["findings"])
        replies = session.scalars(select(Outbox)).all()
    expected = [m for m in messages if m.verdict != "ignored"]
    assert len(replies) == len(expected) and all(r.state == "sent" for r in replies)
    assert len({r.message_id for r in replies}) == len(replies)  # never answered twice
    assert len(list((service.settings.data_dir / "outbox").glob("*.eml"))) == len(replies)


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path, database_url, fake_netdisk):
    corpus = crash_corpus(tmp_path, fake_netdisk, 200)
    folder = tmp_path / "Maildir"
    for index, raw in enumerate(corpus):
        deliver_to_maildir(folder, raw, ON_TIME + timedelta(seconds=index))
    data = tmp_path / "data"
    # the kills come from outside, not from the messages: a message that happens to be
    # in hand at several kills must not count as poison (that is tested on its own)
    env = {**os.environ, "INTAKE_DATA_DIR": str(data), "INTAKE_MAILDIR": str(folder),
           "INTAKE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "INTAKE_MAX_ATTEMPTS": "100",
           "INTAKE_FETCH_ATTEMPTS": "100", "INTAKE_HOST_MAP": fake_netdisk.host_map}
    randomness = random.Random(20240731)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))

    def progress() -> int:  # every step of every message writes one audit event
        with service.Session() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent))

    kills = 0
    for _ in range(20):
        # kill after a random amount of progress, not after a random time: under load a
        # timed kill may land before the daemon has even started, and test nothing
        target = progress() + randomness.randint(1, 80)
        process = run_daemon(env)
        try:
            deadline = time.monotonic() + 300
            while process.poll() is None and progress() < target and time.monotonic() < deadline:
                time.sleep(0.01)
            if process.poll() is not None:
                break  # the mailbox was done before this much more progress
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert kills >= 3, "the kills must land while work is in hand, or nothing is tested"
    assert run_daemon(env).wait(timeout=600) == 0
    assert_consistent(service, 200)  # every message judged exactly once, nothing doubled


def test_two_workers_drain_one_queue_without_double_work(tmp_path, database_url, fake_netdisk):
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share one PostgreSQL database (SKIP LOCKED)")
    corpus = crash_corpus(tmp_path, fake_netdisk, 60)
    folder = tmp_path / "Maildir"
    for index, raw in enumerate(corpus):
        deliver_to_maildir(folder, raw, ON_TIME + timedelta(seconds=index))
    env = {**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(folder),
           "INTAKE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "INTAKE_HOST_MAP": fake_netdisk.host_map}
    open_service(daemon_settings(tmp_path, database_url, maildir=folder))  # schema first
    workers = [run_daemon(env) for _ in range(2)]
    assert [w.wait(timeout=600) for w in workers] == [0, 0]
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    assert_consistent(service, 60)
    actors = {e.actor for e in events(service, "judged")}
    assert len(actors) == 2  # both workers took part


# ------------------------------------------------------------------ commands

def test_commands_submissions_show_override(tmp_path, database_url, fake_netdisk):
    folder = tmp_path / "Maildir"
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")  # valid: the probe route gives it to staff
    deliver_to_maildir(folder, simple_mail(1, f"{share.url}?pwd=ab12"), ON_TIME)
    env = {**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(folder),
           "INTAKE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "INTAKE_HOST_MAP": fake_netdisk.host_map}

    def intake(*args):
        return subprocess.run([sys.executable, "-m", "intake.cli", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    assert intake("db", "upgrade").returncode == 0
    assert intake("poll", "--once").returncode == 0
    listing = json.loads(intake("submissions", "--json").stdout)
    assert listing == [{"receipt": "WX2024-000001", "message_id": "<m1@test.example.cn>", "from": "unit1@163.com",
                        "received_at": "2024-07-30T04:00:00+00:00", "verdict": "needs_review", "unit": None,
                        "projects": []}]
    assert json.loads(intake("submissions", "--json", "--verdict", "accepted").stdout) == []
    shown = json.loads(intake("show", "WX2024-000001", "--json").stdout)
    assert shown["state"] == "done" and shown["findings"][0]["code"] == "link.fetch_failed"
    assert intake("override", "WX2024-000001", "--reject", "--note", "链接已失效").returncode == 0
    assert json.loads(intake("show", "WX2024-000001", "--json").stdout)["verdict"] == "rejected"
    assert intake("show", "WX2024-999999").returncode == 2
    assert intake("poll", "--once").stdout.strip() == "新邮件 0 封，本次处理 0 封。"


def test_run_finishes_the_step_in_hand_on_sigterm(tmp_path, fake_netdisk):
    database_url = f"sqlite:///{tmp_path / 'intake.sqlite3'}"
    folder = tmp_path / "Maildir"
    for index, raw in enumerate(crash_corpus(tmp_path, fake_netdisk, 40)):
        deliver_to_maildir(folder, raw, ON_TIME + timedelta(seconds=index))
    env = {**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(folder),
           "INTAKE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "INTAKE_POLL_MINUTES": "60",
           "INTAKE_HOST_MAP": fake_netdisk.host_map}
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "run"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(m.state == State.DONE for m in messages_of(service)):
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        # one SIGTERM must be enough, however far the round has got (even when it is over)
        assert process.wait(timeout=120) == 0, process.stderr.read()
    finally:  # a failing run leaves nothing behind
        if process.poll() is None:
            process.kill()
            process.wait()
    states = Counter(m.state for m in messages_of(service))
    assert set(states) <= {State.DONE, "received"}, states  # nothing left half-done
    assert states[State.DONE] >= 1
    assert all(m.claimed_by is None for m in messages_of(service))


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Signal one thread of another process (tgkill(2); Python has no wrapper)."""
    import ctypes
    import platform

    number = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
    if number is None:
        pytest.skip(f"tgkill's syscall number is not known here ({platform.machine()})")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


def test_sigterm_delivered_to_a_non_main_thread_still_stops_run(tmp_path):
    # the kernel may hand a process's SIGTERM to any thread; one that lands on the
    # scheduler's thread only sets a flag, which an untimed wait in the main thread
    # never looks at (the old code hung here until a second signal)
    folder = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    env = {**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(folder),
           "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.sqlite3'}", "PYTHONPATH": str(ROOT),
           "INTAKE_POLL_MINUTES": "60"}
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "run"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        others: list[int] = []
        while not others and time.monotonic() < deadline and process.poll() is None:
            # threads exist only after the handlers are installed (scheduler.start())
            others = [int(t) for t in os.listdir(f"/proc/{process.pid}/task") if int(t) != process.pid]
            time.sleep(0.1)
        assert others, "intake run started no scheduler thread"
        _tgkill(process.pid, others[0], signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_quarantine_is_listed_for_staff(tmp_path, database_url, monkeypatch):
    from types import SimpleNamespace

    from intake.commands import quarantine

    service = maildir_service(tmp_path, database_url, [simple_mail(1)], max_attempts=1)
    monkeypatch.setattr("intake.core.check_message", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    poll_and_process(service)
    monkeypatch.undo()
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert quarantine(service, SimpleNamespace(json=True)) == 0
    (item,) = json.loads(out.getvalue())
    assert item["receipt"] == "WX2024-000001" and item["attempts"] == 1 and "boom" in item["last_error"]


def test_the_readme_demo_on_embedded_defaults(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "intake.cli", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "新邮件 5 封，本次处理 5 封。" in proc.stdout and "回复邮件 4 封" in proc.stdout
    service = open_service(daemon_settings(tmp_path, f"sqlite:///{tmp_path / 'intake-data' / 'intake.sqlite3'}"))
    verdicts = {m.from_address: m.verdict for m in messages_of(service)}
    assert verdicts == {"hbzgh@126.com": "accepted", "hnzgh@163.com": "rejected", "sczgh@qq.com": "rejected",
                        "gdzgh@163.com": "needs_review", "jszgh@163.com": "ignored"}
    late = next(m for m in messages_of(service) if m.from_address == "hnzgh@163.com")
    assert [f["code"] for f in late.report["findings"]] == ["deadline.late"]
    assert late.unit_name == "湖南省总工会"  # its own unit's package, not Hubei's under Hunan's name


def test_a_late_resubmission_replaces_nothing(tmp_path, database_url):
    package = package_zip(tmp_path, "湖北省总工会", ["课程甲"], "a")
    on_time = simple_mail(1, attachments={"a.zip": package})
    late = simple_mail(2, attachments={"b.zip": package})
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, on_time, ON_TIME)
    deliver_to_maildir(folder, late, datetime(2024, 8, 2, tzinfo=timezone.utc))
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    poll_and_process(service)
    with service.Session() as session:
        assert [p.superseded_by for p in session.scalars(select(Project).order_by(Project.id))] == [None, None]


# ------------------------------------------------------------------ found in review

def test_a_huge_from_header_does_not_block_the_mailbox(tmp_path, database_url):
    odd = simple_mail(1).replace(b"From: unit1@163.com", b"From: \"" + b"a" * 400 + b"\" x@163.com")
    service = maildir_service(tmp_path, database_url, [odd, simple_mail(2)])
    assert poll_and_process(service) == (2, 2)


def test_a_mailbox_outage_still_works_the_queue(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(1)])
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    service.settings.maildir = tmp_path / "gone"  # the mailbox is unreachable now
    with pytest.raises(ConfigError, match="not a Maildir"):
        poll_and_process(service)
    assert [m.state for m in messages_of(service)] == [State.DONE]


def test_a_message_that_kills_its_worker_is_quarantined(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(1), simple_mail(2)], max_attempts=2)
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    with service.Session.begin() as session:  # as if two workers had died on message 1
        first = session.scalars(select(Message).order_by(Message.id)).first()
        first.state, first.attempts, first.claimed_by = "unpacking", 2, "nohost-dead:1"
    Worker(service.settings, service.Session, service.policy).drain()
    assert [m.state for m in messages_of(service)] == [State.QUARANTINED, State.DONE]


def test_supersession_holds_whatever_the_judging_order(tmp_path, database_url):
    package = package_zip(tmp_path, "湖北省总工会", ["课程甲"], "a")
    service = maildir_service(tmp_path, database_url, [simple_mail(n, attachments={"a.zip": package}) for n in (1, 2)])
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    worker = Worker(service.settings, service.Session, service.policy)
    second, first = [m.id for m in reversed(messages_of(service))]
    for message_id in (second, first):  # the later report is judged first
        assert claim(service.Session, worker.me) in (first, second)
        with service.Session.begin() as session:  # hand this worker the one we want
            for m in session.scalars(select(Message)):
                m.claimed_by = worker.me if m.id == message_id else None
        worker.process(message_id)
    with service.Session() as session:
        projects = {p.message_id: p for p in session.scalars(select(Project))}
    assert projects[first].superseded_by == projects[second].id and projects[second].superseded_by is None


def test_rejudging_keeps_a_staff_override(tmp_path, database_url):
    service = maildir_service(tmp_path, database_url, [simple_mail(1)])
    poll_and_process(service)
    override(service.Session, "WX2024-000001", "accepted", "线下已补交")
    reprocess(service.Session, "WX2024-000001")
    poll_and_process(service)
    assert messages_of(service)[0].verdict == "accepted"


def test_maildir_mail_arriving_with_an_older_time_is_not_lost(tmp_path, database_url):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME + timedelta(hours=1))
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    assert poll_and_process(service) == (1, 1)
    deliver_to_maildir(folder, simple_mail(2), ON_TIME)  # sorts first now
    assert poll_and_process(service) == (1, 1)
    assert sorted(m.from_address for m in messages_of(service)) == ["unit1@163.com", "unit2@163.com"]


def test_a_subject_that_decodes_to_a_lone_surrogate_does_not_block_the_mailbox(tmp_path, database_url):
    odd = simple_mail(1).replace(b"Subject: ", b"Subject: =?utf-7?Q?+2D0-?= ", 1)
    service = maildir_service(tmp_path, database_url, [odd, simple_mail(2)])
    assert poll_and_process(service) == (2, 2)
    assert [m.state for m in messages_of(service)] == [State.DONE, State.DONE]
    assert messages_of(service)[0].subject.startswith("\ufffd")
