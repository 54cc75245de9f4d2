"""The fetching stage reads a message's links in the judging child, under the policy's
budget, and the judgement of the same message reuses the structure parsed there: one
parse a message on the hot path, none of the sender's bytes parsed in the daemon."""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

import intake.budgeted as budgeted
import intake.core
import intake.parsers.message_links
import intake.parsers.messages as messages
from intake.kernel.policy import load_policy
from intake.parsers.message_links import message_links
from intake.service import open_service, poll_and_process
from intake.sources import deliver_to_maildir
from intake.states import State
from intake.store import Message
from tests.conftest import daemon_settings, simple_mail

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return out.getvalue()


def _forwarded() -> bytes:
    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "unit9@163.com", "collect@163.com", "转发：报送"
    outer.set_content("见转发邮件 https://pan.baidu.com/s/1fwd 提取码: ab12")
    outer.add_attachment(simple_mail(8, attachments={"表.zip": _zip({"a.txt": b"a"})}), maintype="message",
                         subtype="rfc822", filename="原邮件.eml")
    return outer.as_bytes()


def _html() -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "unit7@qq.com", "collect@163.com", "报送"
    message.set_content("<p>百度网盘 <a href='https://pan.baidu.com/s/1html'>链接</a> 提取码：xy34</p>", subtype="html",
                        cte="base64")
    return message.as_bytes()


CORPUS = {
    "plain": simple_mail(1),
    "attachment": simple_mail(2, body="链接: https://pan.baidu.com/s/1abc 提取码: 1234",
                              attachments={"材料.zip": _zip({"x.docx": b"x" * 1000})}),
    "large": simple_mail(3, attachments={"视频.zip": os.urandom(3 << 20)}),  # a body cut out before parsing
    "forwarded": _forwarded(),
    "html": _html(),
}


def _comparable(parsed: messages.ParsedMessage, root: Path) -> dict:
    data = dataclasses.asdict(parsed)
    data["attachments"] = [(a.name, a.path.relative_to(root).as_posix(), a.size, a.path.read_bytes())
                           for a in parsed.attachments]
    return data


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_walk_of_a_loaded_message_is_a_fresh_parse(tmp_path, name):
    raw = CORPUS[name]
    loaded = messages.load_message(raw)
    assert message_links(raw, loaded) == message_links(raw)  # the links' walk first, as the daemon does
    again = messages.parse_message(raw, tmp_path / "again" / "attachments", loaded)
    fresh = messages.parse_message(raw, tmp_path / "fresh" / "attachments")
    assert fresh.attachments or name in ("plain", "html")
    assert _comparable(again, tmp_path / "again") == _comparable(fresh, tmp_path / "fresh")


def test_the_judgement_reuses_the_structure_the_links_were_read_from(tmp_path, monkeypatch):
    policy = load_policy()
    a, b = tmp_path / "a.eml", tmp_path / "b.eml"
    a.write_bytes(CORPUS["attachment"])
    b.write_bytes(CORPUS["large"])
    loads = []
    load = messages._load
    monkeypatch.setattr(messages, "_load", lambda raw: loads.append(len(raw)) or load(raw))

    found = budgeted._stored_links(a)
    assert [link.url for _, link in found.fetchable()] == ["https://pan.baidu.com/s/1abc"]
    reused = budgeted._check_stored_message(a, policy, ON_TIME, tmp_path / "w1", None)
    assert len(loads) == 1  # one parse for the links and the judgement
    fresh = budgeted._check_stored_message(a, policy, ON_TIME, tmp_path / "w2", None)
    assert len(loads) == 2  # kept for one judgement only
    assert reused.to_json() == fresh.to_json()

    budgeted._stored_links(a)
    other = budgeted._check_stored_message(b, policy, ON_TIME, tmp_path / "w3", None)  # another message: its own parse
    assert len(loads) == 4 and other.message["attachments"] == ["视频.zip"]
    assert budgeted._loaded is None


def _hostile(n: int) -> bytes:
    """A text body of ``n`` share links: reading them all costs seconds of CPU and
    hundreds of MiB (every link is found before the first 100 are kept)."""
    lines = b"".join(f"链接: https://pan.baidu.com/s/1abc{i:08d} 提取码: ab{i % 100:02d}\n".encode() for i in range(n))
    return (b"From: unit1@163.com\nTo: collect@163.com\nSubject: links\nMessage-ID: <m1@test.example.cn>\n"
            b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + lines)


def test_a_hostile_body_is_read_under_the_budget_never_in_the_daemon(tmp_path, monkeypatch):
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, _hostile(400_000), ON_TIME)  # 20 MB
    deliver_to_maildir(folder, simple_mail(2, subject="正常"), ON_TIME)
    settings = daemon_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", maildir=folder)
    service = open_service(settings)
    service.policy = load_policy("roadshow", {"budget": {"memory_mb": 256, "cpu_seconds": 1}})
    readers = tmp_path / "readers"
    find_links = intake.parsers.message_links.find_links

    def recorded(*args):  # patched before the worker starts: its judging child runs this too
        with open(readers, "a") as out:
            out.write(f"{os.getpid()}\n")
        return find_links(*args)

    monkeypatch.setattr(intake.parsers.message_links, "find_links", recorded)  # the links' read
    monkeypatch.setattr(intake.core, "find_links", recorded)  # the judgement's
    assert poll_and_process(service) == (2, 2)
    pids = readers.read_text().split()
    assert str(os.getpid()) not in pids  # read in the child only
    assert len(pids) == 3  # the normal message's links and judgement; the hostile one's once, not judged again
    with service.Session() as session:
        hostile, normal = session.scalars(select(Message).order_by(Message.id)).all()
    assert hostile.state == State.DONE and hostile.attempts == 1  # judged, not retried
    assert [f["code"] for f in hostile.report["findings"]] == ["package.too_complex"]
    assert normal.state == State.DONE and "package.too_complex" not in [f["code"] for f in normal.report["findings"]]


def test_intake_check_reads_a_hostile_body_under_the_budget_too(tmp_path, monkeypatch):
    from intake.check_links import fetch_for_check
    from intake.kernel.judges import JudgingChild
    from intake.settings import Settings

    path = tmp_path / "flood.eml"
    path.write_bytes(_hostile(400_000))
    policy = load_policy("roadshow", {"budget": {"memory_mb": 256, "cpu_seconds": 1}})
    readers = tmp_path / "readers"
    find_links = intake.parsers.message_links.find_links

    def recorded(*args):
        with open(readers, "a") as out:
            out.write(f"{os.getpid()}\n")
        return find_links(*args)

    monkeypatch.setattr(intake.parsers.message_links, "find_links", recorded)
    judges = JudgingChild()  # started after the patch, as the command starts it
    try:
        fetched = fetch_for_check(path, Settings(data_dir=tmp_path / "data"), policy, None, tmp_path / "fetched",
                                  judges)
        report = budgeted.check_message_within(path, policy, None, tmp_path / "judged", judges, fetched)
    finally:
        judges.close()
    assert fetched is None and [f.code for f in report.findings] == ["package.too_complex"]
    assert str(os.getpid()) not in readers.read_text().split()  # never in the command's own process
