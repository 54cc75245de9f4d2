"""Claims: a worker id names one process's life, and every claim has a lease, so no
message stays claimed forever by a process that is gone (or by a reused pid)."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from intake.daemon import replying
from intake.daemon.claims import LEASE, claim, worker_id
from intake.daemon.ledger import poll
from intake.daemon.worker import Worker
from intake.sources import MaildirSource, deliver_to_maildir
from intake.service import open_service
from intake.states import State
from intake.store import Message
from tests.conftest import daemon_settings, simple_mail

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)


def queued_service(tmp_path, database_url):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    poll(service.settings, service.Session, lambda: MaildirSource(folder))
    return service


def held_by(service, claimed_by: str, age: timedelta) -> int:
    with service.Session.begin() as session:
        message = session.scalars(select(Message)).one()
        message.state, message.attempts = State.UNPACKING, 1
        message.claimed_by, message.claimed_at = claimed_by, datetime.now(timezone.utc) - age
        return message.id


def test_a_worker_id_is_unique_to_the_process_life():
    mine = worker_id()
    host, pid, boot, started = mine.split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert boot and boot != "-" and started.isdigit()
    assert worker_id() == mine  # stable for this process
    child = subprocess.Popen(["sleep", "30"])
    try:
        theirs = worker_id(child.pid)
        assert theirs != mine and theirs.split(":")[2] == boot and theirs.split(":")[3].isdigit()
    finally:
        child.kill()
        child.wait()
    # the same pid later names another process's life: its start time differs
    assert worker_id(child.pid) != theirs


def test_an_old_claim_by_a_reused_pid_is_taken_over(tmp_path, database_url):
    # pid 1 always exists; a 3-day-old claim in the old host:pid form was never taken over
    service = queued_service(tmp_path, database_url)
    held_by(service, f"{socket.gethostname()}:1", timedelta(days=3))
    Worker(service.settings, service.Session, service.policy).drain()
    with service.Session() as session:
        message = session.scalars(select(Message)).one()
    assert message.state == State.DONE and message.claimed_by is None


def test_a_claim_by_a_pid_now_running_another_life_is_taken_over_at_once(tmp_path, database_url):
    service = queued_service(tmp_path, database_url)
    host, pid, boot, started = worker_id().split(":")
    # this very pid, but a start time that is not this process's: the claimer is gone
    message_id = held_by(service, f"{host}:{pid}:{boot}:{int(started) + 1}", timedelta(seconds=5))
    assert claim(service.Session, "someone-else") == message_id


def test_a_live_worker_keeps_its_claim_until_its_lease_runs_out(tmp_path, database_url):
    service = queued_service(tmp_path, database_url)
    child = subprocess.Popen(["sleep", "60"])
    try:
        alive = worker_id(child.pid)
        held_by(service, alive, timedelta(minutes=1))
        assert claim(service.Session, worker_id()) is None  # alive, within its lease
        message_id = held_by(service, alive, LEASE + timedelta(minutes=1))
        assert claim(service.Session, worker_id()) == message_id  # the lease applies to every claim
    finally:
        child.kill()
        child.wait()


def test_another_hosts_claim_waits_for_its_lease(tmp_path, database_url):
    service = queued_service(tmp_path, database_url)
    held_by(service, "elsewhere:42:abcdef12:999", timedelta(minutes=5))
    assert claim(service.Session, worker_id()) is None
    message_id = held_by(service, "elsewhere:42:abcdef12:999", LEASE + timedelta(seconds=1))
    assert claim(service.Session, worker_id()) == message_id


def test_each_step_renews_the_lease(tmp_path, database_url, monkeypatch):
    import intake.core

    service = queued_service(tmp_path, database_url)
    seen = []
    started = tmp_path / "judging-started"  # judging runs in a child process: it tells through a file
    check_message = intake.core.check_message

    def judging(*args, **kwargs):  # after the claim, before the judgement is saved
        started.write_text(datetime.now(timezone.utc).isoformat())
        return check_message(*args, **kwargs)

    original = replying.reply

    def watching(worker, message_id):
        with service.Session() as session:
            seen.append(session.get(Message, message_id).claimed_at)
        return original(worker, message_id)

    monkeypatch.setattr(intake.core, "check_message", judging)
    monkeypatch.setattr(replying, "reply", watching)
    Worker(service.settings, service.Session, service.policy).drain()
    assert len(seen) == 1 and seen[0] >= datetime.fromisoformat(started.read_text())  # renewed when saved


def test_a_long_judgement_keeps_renewing_its_claim(tmp_path, database_url, monkeypatch):
    import time

    import intake.core
    import intake.daemon.claims

    service = queued_service(tmp_path, database_url)
    monkeypatch.setattr(intake.daemon.claims, "RENEW_EVERY", timedelta(seconds=0.05))
    check_message = intake.core.check_message
    renewed = tmp_path / "renewed"  # judging runs in a child process: it tells through a file

    def slow(*args, **kwargs):  # a judgement that outlasts several renewal periods
        with service.Session() as session:
            first = session.scalars(select(Message)).one().claimed_at
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with service.Session() as session:
                if session.scalars(select(Message)).one().claimed_at > first:
                    renewed.write_text("yes")
                    break
            time.sleep(0.02)
        return check_message(*args, **kwargs)

    monkeypatch.setattr(intake.core, "check_message", slow)
    Worker(service.settings, service.Session, service.policy).drain()
    assert renewed.read_text() == "yes"


def test_a_claim_from_another_pid_namespace_waits_for_its_lease(tmp_path, database_url):
    # a container on a host of the same name: its pid 1 is not our pid 1
    service = queued_service(tmp_path, database_url)
    host, _, node, _ = worker_id().split(":")
    held_by(service, f"{host}:1:{node.split('.')[0]}.999999:12345", timedelta(minutes=5))
    assert claim(service.Session, worker_id()) is None
