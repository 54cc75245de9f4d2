"""The `fetching` state through `intake poll --once` (a subprocess, Maildir source) against
the loopback fakes, on SQLite and PostgreSQL: a Baidu-linked package fetched by the cookie
and the openapi routes and a 163 large attachment, each judged with its INTERNALDATE."""

from __future__ import annotations

import hashlib
import time
import zipfile
from datetime import datetime, timezone

import pytest

from intake.fetchers.tokens import TokenStore, Tokens
from intake.kernel.policy import load_policy
from intake.samples import zip_folder
from intake.states import State
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetching_support import COURSE, Daemon, build_package, codes, mail, share_files


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """One package for the module: its video is made by ffmpeg."""
    return build_package(tmp_path_factory.mktemp("package"))


def assert_accepted_with_reply(daemon: Daemon) -> None:
    (message,) = daemon.messages()
    assert message.state == State.DONE and message.verdict == "accepted", (message.last_error, message.report)
    assert [p["name"] for p in message.report["projects"]] == [COURSE]
    # fetched long after the deadline, judged by its INTERNALDATE: not late
    assert datetime.now(timezone.utc) > load_policy("roadshow").deadline and "deadline.late" not in codes(message)
    assert message.fetch_attempts == 1 and message.attempts == 1
    (reply,) = daemon.replies()
    assert message.receipt in reply.name


def test_a_baidu_link_through_the_cookie_route(fake_netdisk, tmp_path, database_url, package):
    share = fake_netdisk.add_share(share_files(package), "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    daemon.deliver(mail(1, f"链接: {share.url} 提取码: ab12 复制这段内容后打开百度网盘手机App"))
    assert "本次处理 1 封" in daemon.poll().stdout
    assert_accepted_with_reply(daemon)
    (message,) = daemon.messages()
    (link,) = message.report["fetch"]
    assert link["outcome"] == "fetched" and link["url"] == share.url
    video = daemon.tmp_path / "data" / "work" / message.receipt / "fetched" / "0" / "湖北省总工会" / f"01-{COURSE}" / f"{COURSE}.mp4"
    assert hashlib.md5(video.read_bytes()).hexdigest() == hashlib.md5((package / f"01-{COURSE}" / f"{COURSE}.mp4").read_bytes()).hexdigest()
    assert fake_netdisk.requests_to("pan.baidu.com", "/share/transfer") and fake_netdisk.server_errors == []
    assert account.find("/intake-inbox").children == []  # the transferred copy is deleted again
    assert daemon.poll().stdout.strip() == "新邮件 0 封，本次处理 0 封。"  # nothing fetched twice


def test_a_baidu_link_through_the_openapi_route(fake_netdisk, tmp_path, database_url, package):
    share = fake_netdisk.add_share(share_files(package), "cd34")
    app, account = fake_netdisk.add_app(), fake_netdisk.add_account()
    access, refresh = fake_netdisk.issue_tokens(app, account)
    TokenStore.in_data_dir(tmp_path / "data").save(Tokens(access, refresh, time.time() + 30 * 86400, "basic,netdisk"))
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="openapi",
                    INTAKE_BAIDU_APP_KEY=app.app_key, INTAKE_BAIDU_SECRET_KEY=app.secret_key,
                    INTAKE_BAIDU_APP_ID=app.app_id)
    daemon.deliver(mail(1, f"百度网盘链接：{share.url}?pwd=cd34"))
    daemon.poll()
    assert_accepted_with_reply(daemon)
    downloads = fake_netdisk.requests_to("d.pcs.baidu.com")
    assert downloads and all(h.headers["User-Agent"] == "pan.baidu.com" for h in downloads)
    assert fake_netdisk.requests_to("pan.baidu.com", "/apaas/1.0/share/transfer")


def test_a_163_large_attachment(fake_netdisk, tmp_path, database_url, package):
    archive = zip_folder(package, tmp_path / "湖北省总工会报送材料.zip", zipfile.ZIP_STORED, keep_name=True)
    attachment = fake_netdisk.add_attachment("netease", "湖北省总工会报送材料.zip", archive)
    html = f"<div>请查收。</div>{fake_netdisk.attachment_html(attachment)}"
    daemon = Daemon(tmp_path, database_url, fake_netdisk)  # the probe route: 163 needs no account
    daemon.deliver(mail(1, "请查收。", html))
    daemon.poll()
    assert_accepted_with_reply(daemon)
    (message,) = daemon.messages()
    assert message.report["message"]["links"][0]["provider"] == "netease"
    assert fake_netdisk.requests_to("fs.mail.163.com", "/fs/service")
