"""What fetching comes to, through `intake poll --once` against the loopback fakes, on
SQLite and PostgreSQL: the probe route (a wrong code told at once, a valid link for
staff with its listing), our side's failures (the message waits in `fetching`, then is
fetched and judged, or goes to staff when the attempts run out), a late message (not
fetched), and a quoted link already received (not fetched again)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from intake.states import State
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetching_support import Daemon, build_package, codes, mail, share_files


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_package(tmp_path_factory.mktemp("package"))


def test_probe_tells_a_wrong_code_at_once(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    daemon = Daemon(tmp_path, database_url, fake_netdisk)
    daemon.deliver(mail(1, f"链接：{share.url} 提取码：zz99"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "rejected" and codes(message) == ["link.code_wrong"]
    assert message.fetch_attempts == 1 and message.next_attempt_at is None  # no retry: the sender's to mend
    assert len(daemon.replies()) == 1


def test_probe_gives_a_valid_link_to_staff_with_its_listing(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 3 * 1024 * 1024, "作品/说明.docx": b"doc"}, "ab12")
    daemon = Daemon(tmp_path, database_url, fake_netdisk)
    daemon.deliver(mail(1, f"{share.url}?pwd=ab12"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "needs_review" and codes(message) == ["link.fetch_failed"]
    text = message.report["findings"][0]["message"]
    assert "未配置百度网盘账号" in text and "您无需重新发送" in text and share.url in text
    shown = daemon.show(message.receipt)
    (link,) = shown["fetch"]
    assert link["outcome"] == "failed" and "NoAccount" in link["detail"]
    assert sorted((f["path"], f["size"]) for f in link["listing"]) == [("作品/视频.mp4", 3 * 1024 * 1024),
                                                                     ("作品/说明.docx", 3)]
    assert len(daemon.replies()) == 1  # the sender hears it is ours to settle


def test_a_rate_limit_waits_in_fetching_then_the_message_is_fetched_and_judged(fake_netdisk, tmp_path, database_url,
                                                                               package):
    share = fake_netdisk.add_share(share_files(package), "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.rate_limit(path="/share/transfer", times=-1)
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.FETCHING and message.report is None and message.claimed_by is None
    assert message.next_attempt_at > datetime.now(timezone.utc) + timedelta(minutes=5)  # the notes' minutes
    assert "31034" in message.last_error and "attempt 1 of 10" in message.last_error
    status = json.loads(daemon.intake("status", "--json").stdout)
    assert [(m["receipt"], m["last_error"]) for m in status["fetching"]] == [(message.receipt, message.last_error)]
    assert status["states"] == {"fetching": 1}
    assert daemon.show(message.receipt)["next_attempt_at"] == message.next_attempt_at.isoformat()
    preview = tmp_path / "digest.html"
    assert daemon.intake("digest", "--preview", str(preview)).returncode == 0
    page = preview.read_text("utf-8")  # the digest lists it for staff, with why
    assert "等待下载" in page and message.receipt in page and "31034" in page
    assert daemon.replies() == []
    assert daemon.poll().stdout.strip() == "新邮件 0 封，本次处理 0 封。"  # not due yet
    fake_netdisk.clear_faults()
    daemon.make_due()
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "accepted" and "deadline.late" not in codes(message)
    assert message.fetch_attempts == 2 and message.last_error is None and len(daemon.replies()) == 1


def test_when_the_attempts_run_out_staff_look(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_FETCH_ATTEMPTS="2")
    fake_netdisk.fail_http("pan.baidu.com", 503, times=-1)
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    assert [m.state for m in daemon.messages()] == [State.FETCHING]
    daemon.make_due()
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "needs_review" and codes(message) == ["link.fetch_failed"]
    assert "多次尝试自动下载均未成功" in message.report["findings"][0]["message"]
    assert message.report["fetch"][0]["detail"].startswith("TransientError") and message.fetch_attempts == 2
    assert len(daemon.replies()) == 1


def test_a_late_message_is_not_fetched(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    daemon = Daemon(tmp_path, database_url, fake_netdisk)
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"), datetime(2024, 8, 2, tzinfo=timezone.utc))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.verdict == "rejected" and codes(message) == ["deadline.late"]
    assert fake_netdisk.hits == [] and message.fetch_attempts == 0  # void whatever it links to


def test_a_quoted_link_already_received_is_not_fetched_again(fake_netdisk, tmp_path, database_url):
    first = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    second = fake_netdisk.add_share({"作品二/视频.mp4": 1000}, "cd34")
    daemon = Daemon(tmp_path, database_url, fake_netdisk)
    original = f"链接: {first.url} 提取码: ab12"
    daemon.deliver(mail(1, original))
    daemon.poll()
    asked = len(fake_netdisk.hits)
    assert asked > 0
    quoted = "\n".join(f"> {line}" for line in ["发件人: hbzgh@126.com", original])
    daemon.deliver(mail(2, f"请问材料是否收到？\n\n{quoted}"))  # a reply in the same conversation
    daemon.poll()
    assert len(fake_netdisk.hits) == asked  # no request at all
    _, reply = daemon.messages()
    assert reply.state == State.DONE and reply.verdict == "ignored" and codes(reply) == ["link.already_received"]
    assert reply.report["fetch"][0]["outcome"] == "quoted" and reply.report["fetch"][0]["earlier"] == "WX2024-000001"
    daemon.deliver(mail(3, f"补充链接: {second.url} 提取码: cd34\n\n{quoted}", sender="HBZGH@126.com"))
    daemon.poll()
    new = [h for h in fake_netdisk.hits[asked:] if h.path.startswith("/s/")]
    assert new and all(second.surl in h.path for h in new)  # only the new link is fetched
    *_, third = daemon.messages()
    assert [link["outcome"] for link in third.report["fetch"]] == ["failed", "quoted"]
    assert third.verdict == "needs_review" and len(daemon.replies()) == 2  # the conversation reply is not answered
