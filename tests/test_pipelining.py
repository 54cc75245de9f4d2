"""The worker's pipeline (issue #13): while the judging child judges one message, the
worker claims the next one and saves the one judged before. A judged message awaiting
its save keeps its claim renewed, is never saved once its claim is lost, and a stop
asked meanwhile saves it and leaves the next one to the next round.

What the judging child sees it writes to a file: it is another process."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

import intake.budgeted
import intake.core
import intake.daemon.claims
from intake.daemon.ledger import poll
from intake.daemon.worker import Worker
from intake.service import open_service
from intake.sources import MaildirSource, deliver_to_maildir
from intake.states import State
from intake.store import AuditEvent, FindingRow, Message, Outbox, Project
from tests.conftest import daemon_settings, simple_mail

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
PATIENCE = 30.0  # seconds a child waits for what it expects (only a failing run waits that long)


def queued(tmp_path, database_url, count: int):
    folder = tmp_path / "Maildir"
    for n in range(1, count + 1):  # a second apart: the poll records them in this order (equal delivery
        # times fall back to the Maildir key, whose microsecond field is not zero-padded)
        deliver_to_maildir(folder, simple_mail(n), ON_TIME + timedelta(seconds=n))
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    poll(service.settings, service.Session, lambda: MaildirSource(folder))
    return service


def number_of(raw) -> int:
    """Which test message this is (simple_mail's Message-ID: <mN@test.example.cn>)."""
    found = re.search(rb"<m(\d+)@test\.example\.cn>", bytes(raw[:8192]))
    assert found is not None
    return int(found.group(1))


def row(service, n: int) -> Message:
    with service.Session() as session:
        return session.scalars(select(Message).where(Message.message_id == f"<m{n}@test.example.cn>")).one()


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def count(service, entity, n: int) -> int:
    with service.Session() as session:
        return session.scalar(select(func.count()).select_from(entity).where(entity.message_id == row(service, n).id))


def test_the_next_message_is_claimed_and_the_last_saved_while_one_is_judged(tmp_path, database_url, monkeypatch):
    service = queued(tmp_path, database_url, 3)
    seen = tmp_path / "seen"
    check_message = intake.core.check_message

    def watching(raw, *args, **kwargs):
        if number_of(raw) == 2:  # message 1 is saved and answered, message 3 claimed, meanwhile
            overlapped = wait_until(lambda: row(service, 1).state == State.DONE
                                    and row(service, 3).claimed_by is not None)
            seen.write_text("overlapped" if overlapped else "one after the other")
        return check_message(raw, *args, **kwargs)

    monkeypatch.setattr(intake.core, "check_message", watching)
    assert Worker(service.settings, service.Session, service.policy).drain() == 3
    assert seen.read_text() == "overlapped"
    for n in (1, 2, 3):  # each judged, saved and answered once
        assert row(service, n).state == State.DONE and row(service, n).claimed_by is None
        assert row(service, n).report is not None and count(service, Outbox, n) == 1
        with service.Session() as session:
            judged = session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.message_id == row(service, n).id, AuditEvent.action == State.JUDGED.value))
        assert judged == 1


def test_a_judged_message_keeps_its_claim_renewed_until_it_is_saved(tmp_path, database_url, monkeypatch):
    monkeypatch.setattr(intake.daemon.claims, "RENEW_EVERY", timedelta(seconds=0.05))
    service = queued(tmp_path, database_url, 2)
    seen = tmp_path / "seen"
    message_links = intake.budgeted.message_links

    def slow_links(raw, *args, **kwargs):
        if number_of(raw) == 2:  # message 1 is judged, and waits for its save
            first = row(service, 1)
            renewed = wait_until(lambda: row(service, 1).claimed_at > first.claimed_at)
            seen.write_text(f"{first.state} {first.report is None} {renewed}")
        return message_links(raw, *args, **kwargs)

    monkeypatch.setattr(intake.budgeted, "message_links", slow_links)
    assert Worker(service.settings, service.Session, service.policy).drain() == 2
    assert seen.read_text() == f"{State.UNPACKING} True True"
    assert [row(service, n).state for n in (1, 2)] == [State.DONE, State.DONE]


def test_a_judged_message_whose_claim_was_lost_is_never_saved(tmp_path, database_url, monkeypatch):
    service = queued(tmp_path, database_url, 2)
    seen = tmp_path / "seen"
    message_links = intake.budgeted.message_links
    elsewhere = "elsewhere:1:node:1"  # another worker, alive as far as we know

    def take_over(raw, *args, **kwargs):
        if number_of(raw) == 2:  # message 1 is judged, not saved: another worker takes it
            with service.Session.begin() as session:
                first = session.scalars(select(Message).where(Message.message_id == "<m1@test.example.cn>")).one()
                seen.write_text(f"{first.state} {first.report is None}")
                first.claimed_by, first.claimed_at = elsewhere, datetime.now(timezone.utc)
        return message_links(raw, *args, **kwargs)

    monkeypatch.setattr(intake.budgeted, "message_links", take_over)
    Worker(service.settings, service.Session, service.policy).drain()
    assert seen.read_text() == f"{State.UNPACKING} True"
    first = row(service, 1)
    assert (first.state, first.report, first.claimed_by) == (State.UNPACKING, None, elsewhere)
    assert count(service, Project, 1) == count(service, FindingRow, 1) == count(service, Outbox, 1) == 0
    assert row(service, 2).state == State.DONE


def test_a_stop_asked_while_judging_saves_that_message_and_leaves_the_next(tmp_path, database_url, monkeypatch):
    service = queued(tmp_path, database_url, 2)
    judging = tmp_path / "judging"
    check_message = intake.core.check_message

    def telling(raw, *args, **kwargs):
        judging.write_text(str(number_of(raw)))
        return check_message(raw, *args, **kwargs)

    monkeypatch.setattr(intake.core, "check_message", telling)
    assert Worker(service.settings, service.Session, service.policy).drain(should_stop=judging.exists) == 1
    assert judging.read_text() == "1"  # message 2 never reached the child
    first, second = row(service, 1), row(service, 2)
    assert (first.state, first.claimed_by) == (State.DONE, None) and count(service, Outbox, 1) == 1
    assert (second.state, second.claimed_by, second.attempts) == (State.RECEIVED, None, 0)


def test_a_judged_message_is_saved_before_the_next_one_downloads_its_links(tmp_path, database_url, monkeypatch):
    import intake.daemon.fetching as fetching
    from intake.kernel.errors import TransientError

    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    deliver_to_maildir(folder, simple_mail(2, "https://pan.baidu.com/s/1Pipeline2?pwd=ab12"), ON_TIME)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    poll(service.settings, service.Session, lambda: MaildirSource(folder))
    seen = []

    def downloading(worker, package, pending, name):  # downloads may take minutes: none here
        seen.append(row(service, 1).state)
        raise TransientError("the netdisk is busy")

    monkeypatch.setattr(fetching, "_fetch_pending", downloading)
    assert Worker(service.settings, service.Session, service.policy).drain() == 2
    assert seen == [State.DONE]  # message 1 was saved and answered first
    assert row(service, 2).state == State.FETCHING and row(service, 2).next_attempt_at is not None
