"""The cookie route against the loopback Baidu: verify, list, a folder per message,
transfer (Referer, async, split over the limit), taskquery, signed locatedownload,
download, and the copy deleted; a retry reuses its earlier transfer."""

from __future__ import annotations

import hashlib
import json

import pytest

from intake.fetchers.baidu_cookie import SIGN_KEY, locate_sign
from intake.fetchers.base import NeedsStaff
from intake.kernel.errors import ConfigError, TransientError
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, codes, fetcher, link

FILES = {"作品一/视频.mp4": 3_000_000, "作品一/简介.docx": b"doc", "报名表.xlsx": b"xlsx"}


def cookie_fetcher(fake, tmp_path, account, **environ):
    return fetcher(fake, tmp_path, "cookie", INTAKE_BAIDU_COOKIE=account.cookie, **environ)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_share_is_transferred_downloaded_and_the_copy_deleted(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    account = fake_netdisk.add_account()
    fake_netdisk.locate_decoys = True
    fetched = cookie_fetcher(fake_netdisk, tmp_path, account).fetch(link(share, "ab12"), tmp_path / "m",
                                                                    NO_RESERVE, key="R-1")
    assert fetched.findings == []
    assert sorted(p.relative_to(tmp_path / "m").as_posix() for p in fetched.files) == [
        "作品一/简介.docx", "作品一/视频.mp4", "报名表.xlsx"]
    source = next(node for path, node in share.walk() if path.endswith("/视频.mp4"))
    assert md5(tmp_path / "m" / "作品一" / "视频.mp4") == source.content.md5
    transfer = fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")[0]
    assert transfer.headers["Referer"] == share.url and transfer.query["async"] == "1"
    assert "BDCLND=" in transfer.headers["Cookie"]
    assert len(fake_netdisk.requests_to("pan.baidu.com", "/share/taskquery")) >= 2  # running, then success
    inbox = account.find("/intake-inbox")
    assert inbox is not None and inbox.children == []  # the message's folder is gone again


def test_locatedownload_is_signed_as_the_notes_say(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share({"a.mp4": b"video"}, "ab12")
    account = fake_netdisk.add_account()
    cookie_fetcher(fake_netdisk, tmp_path, account).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    query = fake_netdisk.requests_to("pcs.baidu.com", "/rest/2.0/pcs/file")[0].query
    devuid = hashlib.md5(account.bduss.encode()).hexdigest().upper() + "|0"
    seed = hashlib.sha1(account.bduss.encode()).hexdigest() + str(account.uk) + SIGN_KEY + query["time"] + devuid
    assert query["devuid"] == devuid and query["rand"] == hashlib.sha1(seed.encode()).hexdigest()
    assert locate_sign(account.bduss, str(account.uk), int(query["time"]))["rand"] == query["rand"]
    assert query["path"].startswith("/intake-inbox/") and query["path"].endswith("/a.mp4")


def test_a_retry_reuses_the_earlier_transfer(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    account = fake_netdisk.add_account()
    fake_netdisk.fail_http("d.pcs.baidu.com", 503, times=-1)  # downloads fail: the attempt stops
    route = cookie_fetcher(fake_netdisk, tmp_path, account)
    with pytest.raises(TransientError):
        route.fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, key="R-2")
    folders = account.find("/intake-inbox").children
    assert len(folders) == 1 and {c.name for c in folders[0].children} == {"作品一", "报名表.xlsx"}
    fake_netdisk.clear_faults()
    fetched = route.fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, key="R-2")
    assert len(fetched.files) == 3 and fetched.findings == []
    second = fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")[-1]
    assert second.status == 200 and len(fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")) == 2
    assert account.find("/intake-inbox").children == []  # one copy made, and deleted


def test_a_transfer_over_the_limit_is_split_by_sub_folder(fake_netdisk, tmp_path):
    files = {**{f"甲/{n}.jpg": b"a" for n in range(2)}, **{f"乙/{n}.jpg": b"b" for n in range(2)},
             **{f"丙/{n}.jpg": b"c" for n in range(5)}, "表.xlsx": b"x"}
    share = fake_netdisk.add_share(files, "ab12")
    account = fake_netdisk.add_account(transfer_limit=3)
    fetched = cookie_fetcher(fake_netdisk, tmp_path, account).fetch(link(share, "ab12"), tmp_path / "m",
                                                                    NO_RESERVE, key="R-3")
    assert len(fetched.files) == 10 and fetched.findings == []
    assert sorted(p.relative_to(tmp_path / "m").as_posix() for p in fetched.files)[:3] == ["丙/0.jpg", "丙/1.jpg",
                                                                                           "丙/2.jpg"]
    sizes = [len(json.loads(h.form["fsidlist"])) for h in fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")]
    assert sizes[0] == 4 and max(sizes[1:]) <= 3  # the whole share first, refused with errno 12


def test_a_blocked_file_is_link_unavailable_and_the_rest_is_fetched(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    fake_netdisk.serve_standin(share, next(path for path, _ in share.walk() if path.endswith("/报名表.xlsx")))
    account = fake_netdisk.add_account()
    fetched = cookie_fetcher(fake_netdisk, tmp_path, account).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"] and "报名表.xlsx" in fetched.findings[0].message
    assert len(fetched.files) == 2


def test_cookie_settings(fake_netdisk, tmp_path):
    with pytest.raises(ConfigError, match="INTAKE_BAIDU_COOKIE: STOKEN missing"):
        fetcher(fake_netdisk, tmp_path, "cookie", INTAKE_BAIDU_COOKIE="BDUSS=abc")
    with pytest.raises(ConfigError, match="INTAKE_BAIDU_COOKIE"):
        fetcher(fake_netdisk, tmp_path, "cookie")
    share = fake_netdisk.add_share(FILES, "ab12")
    route = fetcher(fake_netdisk, tmp_path, "cookie", INTAKE_BAIDU_COOKIE="BDUSS=dead; STOKEN=dead")
    with pytest.raises(TransientError, match="INTAKE_BAIDU_COOKIE") as caught:
        route.fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert caught.value.retry_after >= 3600


def test_a_share_over_the_cap_is_for_staff_before_any_transfer(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share({"a.mp4": 3000}, "ab12")
    account = fake_netdisk.add_account()
    from intake.fetchers.base import DownloadLimits  # the cap of this test only
    with pytest.raises(NeedsStaff, match="INTAKE_DOWNLOAD_MAX_GB") as caught:
        cookie_fetcher(fake_netdisk, tmp_path, account).fetch(
            link(share, "ab12"), tmp_path / "m", DownloadLimits(max_total_bytes=2999, reserve_bytes=0))
    assert caught.value.listing[0].size == 3000
    assert fake_netdisk.requests_to("pan.baidu.com", "/share/transfer") == []
