"""The fetching stage's remaining cases, through `intake poll --once` (a subprocess over a
Maildir, or over IMAP to Dovecot where the INTERNALDATE matters) against the loopback
fakes, on SQLite and PostgreSQL:
- a QQ large attachment judged to a verdict;
- a share beyond the policy's package limit (the sender's: archive.too_large, at once)
  and beyond only the operator's INTAKE_DOWNLOAD_MAX_GB (staff's: needs_review);
- the Baidu route's settings wrong or its login dead: the message waits in `fetching`,
  staff see why (`intake show`, `intake status`, the digest), the attempts run out, or
  the mended setting fetches it and it is judged by its INTERNALDATE;
- one link failing on our side beside a wrong code, a blocked file: told at once, in
  the message's one reply (over real SMTP);
- review reproductions: a kill mid-download, the cap across attempts, a quoted link of a
  message still fetching, a message the stage cannot read.
"""

from __future__ import annotations

import email
import email.policy
import json
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from intake.daemon.ledger import poll
from intake.daemon.worker import Worker
from intake.kernel.policy import load_policy
from intake.samples import zip_folder
from intake.service import open_service
from intake.sources import MaildirSource, deliver_to_maildir
from intake.states import State
from intake.store import Message
from tests.conftest import daemon_settings
from tests.fakes import GeneratedContent, fake_netdisk  # noqa: F401  (the fixture)
from tests.fetching_support import COURSE, ON_TIME, ROOT, SENDER, Daemon, build_package, codes, mail, share_files
from tests.imap_server import PASSWORD as IMAP_PASSWORD, USER as IMAP_USER
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)

MIB, GIB = 1024 ** 2, 1024 ** 3


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """One package for the module: its video is made by ffmpeg."""
    return build_package(tmp_path_factory.mktemp("package"))


class Huge(GeneratedContent):
    """A file only ever listed, never downloaded: its md5 is not computed over its bytes
    (21 GiB would take the fake longer than a client waits)."""

    @property
    def md5(self) -> str:
        return "0" * 32


def findings(message) -> dict[str, str]:
    return {f["code"]: f["message"] for f in message.report["findings"]}


def test_a_qq_large_attachment_is_fetched_and_judged(fake_netdisk, tmp_path, database_url, package):
    archive = zip_folder(package, tmp_path / "湖北省总工会报送材料.zip", zipfile.ZIP_STORED, keep_name=True)
    attachment = fake_netdisk.add_attachment("qq", "湖北省总工会报送材料.zip", archive)
    daemon = Daemon(tmp_path, database_url, fake_netdisk)  # the probe route: QQ needs no account
    daemon.deliver(mail(1, "请查收附件。", f"<div>请查收附件。</div>{fake_netdisk.attachment_html(attachment)}"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "accepted", (message.last_error, message.report)
    assert [p["name"] for p in message.report["projects"]] == [COURSE]
    assert [(link["provider"], link["outcome"]) for link in message.report["fetch"]] == [("qq", "fetched")]
    assert fake_netdisk.requests_to("wx.mail.qq.com") and fake_netdisk.server_errors == []
    assert message.fetch_attempts == 1 and len(daemon.replies()) == 1


def test_a_share_beyond_the_policys_package_limit_is_the_senders_to_mend(fake_netdisk, tmp_path, database_url):
    limit = load_policy("roadshow").archive.max_total_bytes
    share = fake_netdisk.add_share({"作品/视频.mp4": Huge(limit + GIB), "作品/说明.docx": b"doc"}, "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie, INTAKE_DOWNLOAD_MAX_GB="20")
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    (message,) = daemon.messages()
    # told at once: rejected with a finding naming the limit, nothing downloaded, no retry
    assert message.state == State.DONE and message.verdict == "rejected" and codes(message) == ["archive.too_large"], message.last_error
    text = findings(message)["archive.too_large"]
    assert share.url in text and "21.00 GB" in text and "20 GB" in text and "重新分享" in text
    assert message.fetch_attempts == 1 and message.next_attempt_at is None
    assert not fake_netdisk.requests_to("pan.baidu.com", "/share/transfer") and not fake_netdisk.requests_to("d.pcs.baidu.com")
    (link,) = message.report["fetch"]
    assert link["outcome"] == "sender" and ("作品/视频.mp4", limit + GIB) in [(f["path"], f["size"]) for f in link["listing"]]
    (reply,) = daemon.replies()
    body = email.message_from_bytes(reply.read_bytes(), policy=email.policy.default).get_body(("plain",)).get_content()
    assert share.url in body and "超过单次报送材料总大小的上限" in body and "未通过" in body


def test_a_share_beyond_only_the_operators_cap_goes_to_staff(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 3 * 1024 * 1024}, "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie, INTAKE_DOWNLOAD_MAX_GB="0.001")
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    (message,) = daemon.messages()
    # 3 MB is within what the policy allows: the cap is ours, the sender need not resend
    assert message.verdict == "needs_review" and codes(message) == ["link.fetch_failed"]
    assert "超过系统自动下载的大小上限" in findings(message)["link.fetch_failed"]
    assert "INTAKE_DOWNLOAD_MAX_GB" in daemon.show(message.receipt)["fetch"][0]["detail"]


def test_a_missing_cookie_waits_hourly_and_the_mended_setting_fetches_it_in_time(fake_netdisk, tmp_path,
                                                                                 database_url, package, mailbox_163):
    """Over IMAP (Dovecot behind the 163-like proxy): the INTERNALDATE is the time judged."""
    dovecot, proxy = mailbox_163
    share = fake_netdisk.add_share(share_files(package), "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",  # no INTAKE_BAIDU_COOKIE
                    INTAKE_MAILDIR="", INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(proxy.port),
                    INTAKE_IMAP_SSL="false", INTAKE_IMAP_USER=IMAP_USER, INTAKE_IMAP_PASSWORD=IMAP_PASSWORD)
    client = dovecot.client()
    client.append("INBOX", mail(1, f"链接: {share.url} 提取码: ab12"), msg_time=ON_TIME)  # the INTERNALDATE
    client.logout()
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.FETCHING and message.report is None and message.claimed_by is None
    now = datetime.now(timezone.utc)
    assert now + timedelta(minutes=55) < message.next_attempt_at < now + timedelta(minutes=65)  # hourly
    assert "INTAKE_BAIDU_COOKIE" in message.last_error and "attempt 1 of 10" in message.last_error
    assert "ConfigError" in message.traceback
    assert fake_netdisk.requests_to("pan.baidu.com", "/share/verify")  # the code was checked meanwhile
    shown = daemon.show(message.receipt)
    assert shown["state"] == "fetching" and "INTAKE_BAIDU_COOKIE" in shown["last_error"]
    preview = tmp_path / "digest.html"
    assert daemon.intake("digest", "--preview", str(preview)).returncode == 0
    page = preview.read_text("utf-8")
    assert "等待下载" in page and message.receipt in page and "INTAKE_BAIDU_COOKIE" in page
    assert daemon.replies() == []
    daemon.make_due()
    daemon.poll(INTAKE_BAIDU_COOKIE=account.cookie)  # the operator mended the setting
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "accepted", (message.last_error, message.report)
    # fetched long after the deadline, judged by its INTERNALDATE: not late
    assert datetime.now(timezone.utc) > load_policy("roadshow").deadline and "deadline.late" not in codes(message)
    assert message.fetch_attempts == 2 and message.last_error is None and len(daemon.replies()) == 1


def test_a_dead_login_goes_to_staff_when_the_attempts_run_out(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE="BDUSS=expired-session; STOKEN=expired-token", INTAKE_FETCH_ATTEMPTS="2")
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.FETCHING and "INTAKE_BAIDU_COOKIE" in message.last_error
    assert message.next_attempt_at > datetime.now(timezone.utc) + timedelta(minutes=5)
    status = json.loads(daemon.intake("status", "--json").stdout)
    assert [m["receipt"] for m in status["fetching"]] == [message.receipt]
    daemon.make_due()
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "needs_review" and codes(message) == ["link.fetch_failed"]
    assert "多次尝试自动下载均未成功" in findings(message)["link.fetch_failed"]
    assert "INTAKE_BAIDU_COOKIE" in message.report["fetch"][0]["detail"] and message.fetch_attempts == 2
    assert len(daemon.replies()) == 1


def test_a_wrong_code_is_told_at_once_while_another_link_fails_on_our_side(fake_netdisk, tmp_path, database_url,
                                                                           smtp_server):
    server = smtp_server("none")
    good = fake_netdisk.add_share({"作品一/视频.mp4": 1000}, "ab12")
    wrong = fake_netdisk.add_share({"作品二/视频.mp4": 1000}, "cd34")
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",  # no cookie: ours
                    **server.environment())
    daemon.deliver(mail(1, f"作品一 链接: {good.url} 提取码: ab12\n作品二 链接: {wrong.url} 提取码: zz99"))
    daemon.poll()
    (message,) = daemon.messages()
    # the sender must send again anyway: judged now, not left waiting behind our side's failure
    assert message.state == State.DONE and message.verdict == "rejected", (message.last_error, message.report)
    assert sorted(codes(message)) == ["link.code_wrong", "link.fetch_failed"]
    assert [link["outcome"] for link in message.report["fetch"]] == ["failed", "sender"]
    assert message.next_attempt_at is None and message.fetch_attempts == 1
    (sent,) = server.messages
    assert sent.recipients == [SENDER]
    body = sent.message.get_body(("plain",)).get_content()
    assert wrong.url in body and "提取码不正确" in body and "请核对后重新发送" in body  # the finding and how to fix it
    assert good.url in body and "一并附上此链接" in body and "未再等待下载" in body and "您无需重新发送" not in body
    assert "未通过" in sent.message["Subject"]
    daemon.make_due()
    assert daemon.poll().stdout.strip() == "new messages: 0; processed: 0"
    assert len(server.messages) == 1  # one reply for the message, never a second


def test_a_rate_limit_on_one_link_does_not_hide_a_wrong_code_on_the_next(fake_netdisk, tmp_path, database_url):
    first = fake_netdisk.add_share({"作品一/视频.mp4": 1000}, "ab12")
    second = fake_netdisk.add_share({"作品二/视频.mp4": 1000}, "cd34")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.rate_limit(path="/share/transfer", times=-1)
    daemon.deliver(mail(1, f"链接: {first.url} 提取码: ab12\n链接: {second.url} 提取码: zz99"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "rejected", (message.last_error, message.report)
    assert [link["outcome"] for link in message.report["fetch"]] == ["failed", "sender"]
    assert "31034" in message.report["fetch"][0]["detail"]
    assert len(fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")) == 1  # not asked again meanwhile
    assert len(daemon.replies()) == 1


def test_a_valid_second_link_waits_with_the_first_and_both_are_fetched_later(fake_netdisk, tmp_path, database_url):
    first = fake_netdisk.add_share({"作品一/视频.mp4": 1000}, "ab12")
    second = fake_netdisk.add_share({"作品二/视频.mp4": 1000}, "cd34")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.rate_limit(path="/share/transfer", times=1)
    daemon.deliver(mail(1, f"链接: {first.url} 提取码: ab12\n链接: {second.url} 提取码: cd34"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.FETCHING and daemon.replies() == []
    outcome = tmp_path / "data" / "work" / message.receipt / "fetched" / "outcome.json"
    assert not outcome.exists() or json.loads(outcome.read_text("utf-8")) == {}  # nothing settled yet
    daemon.make_due()
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and [link["outcome"] for link in message.report["fetch"]] == ["fetched"] * 2
    assert message.fetch_attempts == 2 and len(daemon.replies()) == 1


def test_a_reply_quoting_a_link_still_waiting_to_be_fetched_does_not_fetch_it_again(fake_netdisk, tmp_path,
                                                                                    database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.rate_limit(path="/share/transfer", times=-1)
    original = f"链接: {share.url} 提取码: ab12"
    daemon.deliver(mail(1, original))
    daemon.poll()
    assert [m.state for m in daemon.messages()] == [State.FETCHING]  # waits for Baidu
    asked = len(fake_netdisk.hits)
    quoted = "\n".join(f"> {line}" for line in ["发件人: hbzgh@126.com", original])
    daemon.deliver(mail(2, f"请问材料是否收到？\n\n{quoted}"))  # the unit asks meanwhile
    daemon.poll()
    assert len(fake_netdisk.hits) == asked  # the quoted link is the first message's, not fetched again
    first, second = daemon.messages()
    assert first.state == State.FETCHING
    assert second.state == State.DONE and second.verdict == "ignored" and codes(second) == ["link.already_received"]
    assert second.report["fetch"][0]["outcome"] == "quoted" and second.report["fetch"][0]["earlier"] == first.receipt
    assert daemon.replies() == []


def test_a_kill_mid_download_resumes_from_the_part_file_and_answers_once(fake_netdisk, tmp_path, database_url):
    size, cut = 24 * MIB, 8 * MIB
    share = fake_netdisk.add_share({"作品/视频.mp4": size}, "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.cut(cut)  # the first download is cut after 8 MiB ...
    held = fake_netdisk.slow("d.pcs.baidu.com", 20)  # ... and its resumption held: the kill lands there
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "poll", "--once"], env=daemon.env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while held.hits == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held.hits == 1, "the resumed download never reached the file host"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    parts = list((tmp_path / "data" / "work").rglob("*.part"))
    assert [part.stat().st_size for part in parts] == [cut]  # what came before the kill is kept
    (message,) = daemon.messages()
    assert message.state == State.FETCHING and message.report is None and message.fetch_attempts == 1
    before = len(fake_netdisk.requests_to("d.pcs.baidu.com"))
    daemon.poll()  # the dead worker's message is taken up at once
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.report["fetch"][0]["outcome"] == "fetched", message.last_error
    assert message.fetch_attempts == 2 and message.attempts == 1
    ranges = [h.headers.get("Range", "") for h in fake_netdisk.requests_to("d.pcs.baidu.com")[before:]]
    assert ranges and ranges[0].startswith(f"bytes={cut}-"), ranges  # resumed, not fetched again from 0
    assert list((tmp_path / "data" / "work").rglob("*.part")) == []
    video = tmp_path / "data" / "work" / message.receipt / "fetched" / "0" / "作品" / "视频.mp4"
    assert video.stat().st_size == size
    assert len(daemon.replies()) == 1
    assert daemon.poll().stdout.strip() == "new messages: 0; processed: 0"
    assert len(daemon.replies()) == 1


def test_settings_still_wrong_when_the_attempts_run_out_say_so_to_staff(fake_netdisk, tmp_path, database_url):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="openapi", INTAKE_FETCH_ATTEMPTS="1")
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.verdict == "needs_review" and codes(message) == ["link.fetch_failed"]
    assert "网盘下载设置" in findings(message)["link.fetch_failed"]  # not blamed on the network
    assert message.report["fetch"][0]["detail"].startswith("ConfigError")


def test_a_failure_before_any_link_is_fetched_counts_and_ends_in_quarantine(fake_netdisk, tmp_path, database_url):
    """A message the fetching stage cannot even read (its stored mail gone) is tried
    max_attempts times, as judging would, not every half minute for ever."""
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, mail(1, f"链接: {share.url} 提取码: ab12"), ON_TIME)
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder, max_attempts=2,
                                           host_map=fake_netdisk.host_map))
    poll(service.settings, service.Session, lambda: MaildirSource(folder))
    with service.Session() as session:
        (message,) = session.scalars(select(Message)).all()
    Path(message.raw_path).unlink()  # the stored mail is lost (a disk fault, a hand slip)
    worker = Worker(service.settings, service.Session, service.policy)
    for _ in range(3):
        worker.drain()
        with service.Session.begin() as session:
            session.execute(update(Message).values(next_attempt_at=None))  # due again at once
    with service.Session() as session:
        (message,) = session.scalars(select(Message)).all()
    assert message.state == State.QUARANTINED and message.attempts == 2, (message.state, message.attempts)
    assert "FileNotFoundError" in message.last_error


def test_the_download_cap_counts_what_an_earlier_attempt_fetched(fake_netdisk, tmp_path, database_url):
    attachment = fake_netdisk.add_attachment("netease", "材料一.mp4", 3 * MIB)
    share = fake_netdisk.add_share({"作品/视频.mp4": 3 * MIB}, "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie, INTAKE_DOWNLOAD_MAX_GB=str(5 * MIB / GIB))
    fake_netdisk.fail_http("pan.baidu.com", 503, times=1)  # Baidu is down for the first attempt
    html = f"<div>链接: {share.url} 提取码: ab12</div>{fake_netdisk.attachment_html(attachment)}"
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12", html))
    daemon.poll()  # the 163 file (3 MiB) comes; the Baidu one waits
    (message,) = daemon.messages()
    assert message.state == State.FETCHING, [(f["outcome"], f["reason"], f["detail"]) for f in (message.report or {}).get("fetch", [])]
    daemon.make_due()
    daemon.poll()  # 3 MiB more would pass the 5 MiB cap, though this attempt downloads nothing else
    (message,) = daemon.messages()
    outcomes = {link["provider"]: link for link in message.report["fetch"]}
    assert outcomes["netease"]["outcome"] == "fetched" and outcomes["baidu"]["outcome"] == "failed"
    assert "DownloadTooLarge" in outcomes["baidu"]["detail"] and message.verdict == "needs_review"


def test_a_blocked_file_is_told_at_once_while_a_163_link_waits(fake_netdisk, tmp_path, database_url):
    attachment = fake_netdisk.add_attachment("netease", "材料.zip", 1000)
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000, "作品/说明.docx": b"doc"}, "ab12")
    fake_netdisk.serve_standin(share, next(p for p, _ in share.walk() if p.endswith("视频.mp4")))  # Baidu serves its "温馨提示" stand-in
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.fail_http("fs.mail.163.com", 503, times=-1)
    html = f"<div>链接: {share.url} 提取码: ab12</div>{fake_netdisk.attachment_html(attachment)}"
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12", html))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "rejected", message.last_error
    assert {"link.fetch_failed", "link.unavailable"} <= set(codes(message))  # with the fetched file's own
    outcomes = {link["provider"]: link["outcome"] for link in message.report["fetch"]}
    assert outcomes == {"baidu": "fetched", "netease": "failed"} and len(daemon.replies()) == 1


def test_when_baidu_itself_is_down_the_other_links_are_not_probed_one_by_one(fake_netdisk, tmp_path, database_url):
    shares = [fake_netdisk.add_share({f"作品{n}/视频.mp4": 1000}, "ab12") for n in range(3)]
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    fake_netdisk.fail_http("pan.baidu.com", 503, times=-1)
    daemon.deliver(mail(1, "\n".join(f"链接: {share.url} 提取码: ab12" for share in shares)))
    daemon.poll()
    (message,) = daemon.messages()
    assert message.state == State.FETCHING and "503" in message.last_error
    asked = " ".join(f"{h.path}?{h.query}" for h in fake_netdisk.hits)
    assert shares[1].surl[1:] in asked and shares[2].surl[1:] not in asked  # one probe, then left alone


def test_a_link_asked_for_again_is_fetched_when_the_new_message_only_quotes_it(fake_netdisk, tmp_path, database_url):
    good = fake_netdisk.add_share({"作品一/视频.mp4": 1000}, "ab12")
    wrong = fake_netdisk.add_share({"作品二/视频.mp4": 1000}, "cd34")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie")  # no cookie yet
    original = [f"作品一 链接: {good.url} 提取码: ab12", f"作品二 链接: {wrong.url} 提取码: zz99"]
    daemon.deliver(mail(1, "\n".join(original)))
    daemon.poll()
    (first,) = daemon.messages()
    assert first.verdict == "rejected" and [f["outcome"] for f in first.report["fetch"]] == ["failed", "sender"]
    # the unit answers our reply: the corrected link in its own words, the first link only in the quote
    quoted = "\n".join(f"> {line}" for line in ["发件人: hbzgh@126.com", *original])
    daemon.deliver(mail(2, f"更正：作品二 链接: {wrong.url} 提取码: cd34\n\n{quoted}"))
    daemon.poll(INTAKE_BAIDU_COOKIE=account.cookie)
    _, second = daemon.messages()
    outcomes = {link["url"]: link["outcome"] for link in second.report["fetch"]}
    assert outcomes == {good.url: "fetched", wrong.url: "fetched"}, second.report["fetch"]
