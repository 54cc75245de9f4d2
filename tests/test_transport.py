"""The delivery edge: the transport raises the kernel's errors, and the delivery pass
acts on them (a transient one is retried when the transport says, a permanent one is
recorded on the outbox row for staff, who `resend` once they have fixed the cause).
The message itself is done once its reply is queued: the row has its own life."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.daemon.staff import resend
from intake.kernel.errors import ConfigError
from intake.notifier.transport import DISK_FULL_RETRY_SECONDS
from intake.service import open_service, poll_and_process
from intake.sources import deliver_to_maildir
from intake.states import OutboxState, State
from intake.store import AuditEvent, Message, Outbox
from tests.conftest import daemon_settings, simple_mail

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)


def one_message_service(tmp_path, database_url):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    return open_service(daemon_settings(tmp_path, database_url, maildir=folder))


def state_of(service) -> tuple[Message, Outbox | None]:
    with service.Session() as session:
        message = session.scalars(select(Message)).one()
        return message, session.scalar(select(Outbox))


def test_a_full_disk_is_transient_and_retried_when_the_transport_says(tmp_path, database_url):
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is not available")
    service = one_message_service(tmp_path, database_url)
    outbox = service.settings.data_dir / "outbox"
    outbox.mkdir(parents=True)
    # the reply's temporary file is a real device that answers every write with ENOSPC
    os.symlink("/dev/full", outbox / "WX2024-000001-1.tmp")
    before = datetime.now(timezone.utc)
    poll_and_process(service)
    message, row = state_of(service)
    assert message.state == State.DONE and row.state == OutboxState.QUEUED
    assert row.attempts == 1 and "No space left" in row.last_error
    wait = (row.next_attempt_at - before).total_seconds()
    assert DISK_FULL_RETRY_SECONDS - 5 <= wait <= DISK_FULL_RETRY_SECONDS + 60  # not the 60 s default backoff


def test_an_unwritable_outbox_is_permanent_recorded_then_resent_by_staff(tmp_path, database_url):
    service = one_message_service(tmp_path, database_url)
    blocker = service.settings.data_dir / "outbox"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # an operator's mistake no retry can mend
    poll_and_process(service)
    message, row = state_of(service)
    assert message.state == State.DONE and row.state == OutboxState.FAILED and row.attempts == 0
    with service.Session() as session:  # at once: no retry was scheduled before
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert "mail_retry" not in actions and actions[-1] == "mail_refused"
    assert "outbox folder" in row.last_error
    blocker.unlink()  # staff fix the cause
    resend(service.Session, message.receipt, service.settings, service.policy)
    poll_and_process(service)
    message, row = state_of(service)
    assert message.state == State.DONE and row.state == OutboxState.SENT and row.last_error is None
    assert [p.name for p in blocker.glob("*.eml")] == [f"{message.receipt}-{row.id}.eml"]
    with pytest.raises(ConfigError, match="never sent twice"):
        resend(service.Session, message.receipt, service.settings, service.policy)


def test_resend_needs_a_queued_reply(tmp_path, database_url):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1, headers={"Auto-Submitted": "auto-replied"}), ON_TIME)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    poll_and_process(service)
    with pytest.raises(ConfigError, match="no reply was queued"):
        resend(service.Session, "WX2024-000001", service.settings, service.policy)


def test_resend_composes_the_reply_again_after_a_staff_override(tmp_path, database_url):
    from intake.daemon.staff import override

    service = one_message_service(tmp_path, database_url)
    blocker = service.settings.data_dir / "outbox"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    poll_and_process(service)
    message, queued = state_of(service)
    assert message.verdict == "rejected" and "未通过" in queued.subject
    assert queued.state == OutboxState.FAILED
    override(service.Session, message.receipt, "accepted", "线下已补交材料")
    blocker.unlink()
    resend(service.Session, message.receipt, service.settings, service.policy)
    poll_and_process(service)
    message, sent = state_of(service)
    assert sent.state == OutboxState.SENT and "已受理" in sent.subject and "未通过" not in sent.subject


def test_a_passing_write_error_is_retried_not_quarantined(tmp_path, database_url, monkeypatch):
    import errno

    import intake.notifier.transport

    service = one_message_service(tmp_path, database_url)

    replace = intake.notifier.transport.os.replace

    def too_many_open_files(source, target):  # only the reply's own file: the raw store must work
        if str(target).endswith(".eml") and "outbox" in str(target):
            raise OSError(errno.EMFILE, "Too many open files")
        return replace(source, target)

    monkeypatch.setattr(intake.notifier.transport.os, "replace", too_many_open_files)
    before = datetime.now(timezone.utc)
    poll_and_process(service)
    message, row = state_of(service)
    assert message.state == State.DONE and row.state == OutboxState.QUEUED  # due again, not given up
    assert row.attempts == 1 and row.next_attempt_at >= before + timedelta(seconds=55)  # the 1-minute backoff
