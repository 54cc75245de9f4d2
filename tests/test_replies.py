"""Whom the daemon answers and what the answer says: the address comes from the From
header's addr-spec only, a late message is told it is void, and a reprocessed message
never gets a stale reply."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from intake.daemon.ledger import poll
from intake.daemon.staff import reprocess
from intake.daemon.worker import Worker
from intake.sources import MaildirSource, deliver_to_maildir
from intake.kernel.policy import load_policy
from intake.notifier.replies import compose_reply
from intake.service import open_service, poll_and_process
from intake.states import State
from intake.store import AuditEvent, Message, Outbox, Unit, UnitContact
from tests.conftest import daemon_settings, simple_mail
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
LATE = datetime(2024, 8, 2, 1, 0, tzinfo=timezone.utc)


def with_from(raw: bytes, header: bytes) -> bytes:
    assert b"From: unit1@163.com" in raw
    return raw.replace(b"From: unit1@163.com", b"From: " + header, 1)


def service_for(tmp_path, database_url, mails, **values):
    folder = tmp_path / "Maildir"
    for raw, moment in mails:
        deliver_to_maildir(folder, raw, moment)
    return open_service(daemon_settings(tmp_path, database_url, maildir=folder, **values))


def only_message(service) -> Message:
    with service.Session() as session:
        (message,) = session.scalars(select(Message)).all()
        return message


def outbox(service) -> list[Outbox]:
    with service.Session() as session:
        return session.scalars(select(Outbox).order_by(Outbox.id)).all()


def reply_of(row: Outbox) -> email.message.EmailMessage:
    return email.message_from_string(row.raw, policy=email.policy.default)


# ------------------------------------------------------------------ the sender's address

def test_a_display_name_that_spells_an_address_is_not_the_address(tmp_path, database_url):
    # the name decodes to "hbzgh@126.com", a registered unit's contact; the mailbox is the attacker's
    forged = with_from(simple_mail(1), b"=?utf-8?b?aGJ6Z2hAMTI2LmNvbQ==?= <attacker@evil.example>")
    service = service_for(tmp_path, database_url, [(forged, ON_TIME)])
    with service.Session.begin() as session:
        unit = Unit(name="湖北省总工会", quota=3)
        session.add(unit)
        session.flush()
        session.add(UnitContact(unit_id=unit.id, email="hbzgh@126.com"))
    poll_and_process(service)
    message = only_message(service)
    assert message.from_address == "attacker@evil.example"
    assert message.unit_id is None and message.unit_name is None  # never matched to the unit
    (row,) = outbox(service)
    assert row.recipient == "attacker@evil.example" and reply_of(row)["To"] == "attacker@evil.example"


def test_a_name_with_a_comma_keeps_its_address(tmp_path, database_url):
    # "张三, 办公室" as an encoded word: decoded first, the comma split the header in two
    named = with_from(simple_mail(1), b"=?utf-8?b?" + base64.b64encode("张三, 办公室".encode()) + b"?= <real@163.com>")
    quoted = with_from(simple_mail(1, subject="报送 2"), '"张三, 办公室" <Real2@163.com>'.encode())
    service = service_for(tmp_path, database_url, [(named, ON_TIME), (quoted, ON_TIME)])
    poll_and_process(service)
    assert sorted(row.recipient for row in outbox(service)) == ["real2@163.com", "real@163.com"]


def test_several_or_unparsable_senders_are_answered_nowhere_and_listed(tmp_path, database_url, capsys):
    from types import SimpleNamespace

    from intake.commands import submissions

    mails = [
        (with_from(simple_mail(1), b"a@163.com, b@126.com"), ON_TIME),
        (with_from(simple_mail(1, subject="报送 2"), b"undisclosed-recipients:;"), ON_TIME),
        (with_from(simple_mail(1, subject="报送 3"), "湖北省总工会 办公室".encode()), ON_TIME),
    ]
    service = service_for(tmp_path, database_url, mails)
    assert poll_and_process(service) == (3, 3)
    with service.Session() as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        done = session.scalars(select(AuditEvent).where(AuditEvent.action == "done")).all()
    assert [m.from_address for m in messages] == [None, None, None]
    assert [m.state for m in messages] == [State.DONE, State.DONE, State.DONE]
    assert outbox(service) == []  # never to a guess
    assert {e.detail["reason"] for e in done} == {"no_sender_address"}
    assert submissions(service, SimpleNamespace(unit=None, verdict=None, json=False)) == 0
    listing = capsys.readouterr().out
    assert listing.count("发件地址无法识别，未回复") == 3 and "a@163.com, b@126.com" in listing


# ------------------------------------------------------------------ the late reply

def test_a_late_reply_says_void_in_subject_and_body_and_invites_nothing(tmp_path, database_url):
    service = service_for(tmp_path, database_url, [(simple_mail(1), LATE)])
    poll_and_process(service)
    (row,) = outbox(service)
    reply = reply_of(row)
    body = reply.get_body(("plain",)).get_content()
    assert "逾期" in reply["Subject"] and "不予受理" in reply["Subject"]
    assert "修改" not in reply["Subject"] and "重新" not in reply["Subject"]
    assert "逾期上报无效" in body and "2024年08月02日 09:00:00" in body and "2024年07月31日 23:59:59" in body
    assert "重新发送" not in body and "重新报送" not in body and "修改" not in body and "请将" not in body


def test_an_on_time_rejection_still_asks_for_a_corrected_resend(tmp_path, database_url):
    service = service_for(tmp_path, database_url, [(simple_mail(1), ON_TIME)])
    poll_and_process(service)
    reply = reply_of(outbox(service)[0])
    assert "重新报送" in reply["Subject"] and "逾期" not in reply["Subject"]
    assert "在截止时间前重新发送全部材料" in reply.get_body(("plain",)).get_content()


# ------------------------------------------------------------------ reprocessing

def test_reprocess_replaces_an_unsent_reply_with_the_new_judgement(tmp_path, database_url, smtp_server):
    server = smtp_server("none")
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder, **server.settings_values()))
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    server.behaviour.data.append("451 4.3.0 Temporary local problem, try again later")  # the one reply waits
    Worker(service.settings, service.Session, service.policy).drain()
    (queued,) = outbox(service)
    assert queued.state == "queued" and "逾期" not in queued.subject and queued.attempts == 1
    assert server.messages == [] and len(server.refused) == 1
    # judged again under a deadline that has passed by then: the new reply must say so
    service.policy = load_policy("roadshow", {"deadline": {"at": "2024-07-01T00:00:00"}})
    reprocess(service.Session, only_message(service).receipt)
    assert outbox(service) == []  # the stale text is gone before anything can send it
    Worker(service.settings, service.Session, service.policy).drain()
    (sent,) = outbox(service)
    assert sent.state == "sent" and "逾期" in sent.subject
    (delivered,) = server.messages
    assert "逾期" in delivered.message["Subject"]


def test_reprocess_keeps_a_sent_reply_and_never_repeats_it(tmp_path, database_url):
    service = service_for(tmp_path, database_url, [(simple_mail(1), ON_TIME)])
    poll_and_process(service)
    (before,) = outbox(service)
    reprocess(service.Session, only_message(service).receipt)
    poll_and_process(service)
    (after,) = outbox(service)
    assert (after.id, after.state, after.raw) == (before.id, "sent", before.raw)
    assert only_message(service).state == State.DONE
    assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 1


def test_reply_since_is_told_apart_from_a_missing_sender(tmp_path, database_url):
    service = service_for(tmp_path, database_url, [(simple_mail(1), ON_TIME)],
                          reply_since=ON_TIME + timedelta(days=1))
    poll_and_process(service)
    with service.Session() as session:
        (done,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "done")).all()
    assert done.detail == {"replied": False, "reason": "before_reply_since"}


def test_reprocess_during_a_delivery_keeps_the_reply_being_sent_and_never_doubles_it(tmp_path, database_url,
                                                                                     monkeypatch):
    import os
    import threading

    import intake.notifier.transport

    service = service_for(tmp_path, database_url, [(simple_mail(1), ON_TIME)])
    poll(service.settings, service.Session, lambda: MaildirSource(service.settings.maildir))
    receipt = only_message(service).receipt
    replace = os.replace
    staff: list[threading.Thread] = []
    seen: list[str] = []

    def replace_while_staff_reprocess(source, target):
        if str(target).endswith(".eml") and not staff:
            # staff press reprocess while the reply is being written: the row is already
            # `sending` (committed), so reprocess goes ahead and leaves that row alone
            staff.append(threading.Thread(target=reprocess, args=(service.Session, receipt)))
            staff[0].start()
            staff[0].join(timeout=120)
            seen.extend(row.state for row in outbox(service))
        return replace(source, target)

    monkeypatch.setattr(intake.notifier.transport.os, "replace", replace_while_staff_reprocess)
    Worker(service.settings, service.Session, service.policy).drain()
    assert not staff[0].is_alive() and seen == ["sending"]  # kept, not dropped as unsent
    monkeypatch.undo()
    Worker(service.settings, service.Session, service.policy).drain()  # judged again after the reprocess
    (row,) = outbox(service)
    assert row.state == "sent"
    assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 1  # answered once
    with service.Session() as session:
        judged = session.scalars(select(AuditEvent).where(AuditEvent.action == "judged")).all()
    assert len(judged) == 2 and only_message(service).state == State.DONE


def test_a_late_report_that_staff_overrode_says_what_staff_decided(tmp_path, database_url):
    from intake.daemon.staff import override
    from intake.notifier.replies import compose_reply

    service = service_for(tmp_path, database_url, [(simple_mail(1), LATE)])
    poll_and_process(service)
    for verdict, subject_word in (("accepted", "通过"), ("partial", "部分通过")):
        message = override(service.Session, only_message(service).receipt, verdict, "经研究同意受理")
        reply = compose_reply(message, service.settings, service.policy)
        body = reply.get_body(("plain",)).get_content()
        assert subject_word in reply["Subject"] and "逾期" not in reply["Subject"]
        assert "不予受理" not in body and "重新发送" not in body  # no void text, no resend after the deadline


# ------------------------------------------------------------------ a Message-ID that held a line break

@pytest.mark.parametrize("stored", ["<m1\r@test.example.cn>", "<m1\u2028@test.example.cn>", "<m1\ufffd@test.example.cn>"])
def test_a_reply_is_composed_whatever_the_stored_message_id_holds(tmp_path, stored):
    # a row stored before control characters were replaced may hold a lone CR: the
    # reply used to raise ValueError for it, so that message was never answered
    settings = daemon_settings(tmp_path, f"sqlite:///{tmp_path / 'x.sqlite3'}")
    message = Message(message_id=stored, from_address="unit1@163.com", receipt="WX2024-000001",
                      verdict="accepted", report={}, subject="报送")
    reply = email.message_from_string(compose_reply(message, settings, load_policy()).as_string(), policy=email.policy.default)
    assert reply["To"] == "unit1@163.com" and reply["In-Reply-To"] is None and reply["References"] is None
    message.message_id = "<m1@test.example.cn>"
    assert compose_reply(message, settings, load_policy())["In-Reply-To"] == "<m1@test.example.cn>"


@pytest.mark.parametrize("encoded", ["=?utf-8?q?m1=0D?=", "=?utf-8?b?bTHigKg=?="])  # a lone CR; U+2028
def test_a_message_whose_message_id_held_a_line_break_is_answered(tmp_path, database_url, encoded):
    raw = simple_mail(1).replace(b"<m1@test.example.cn>", f"<{encoded}@test.example.cn>".encode(), 1)
    service = service_for(tmp_path, database_url, [(raw, ON_TIME)])
    poll_and_process(service)
    message = only_message(service)
    assert message.message_id == "<m1\ufffd@test.example.cn>"  # no line break stored
    (row,) = outbox(service)
    assert row.recipient == "unit1@163.com" and reply_of(row)["In-Reply-To"] is None
