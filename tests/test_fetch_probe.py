"""The probe route (no account) against the loopback Baidu: a wrong code or a dead link is
a finding at once; a valid link is NoAccount carrying the listing for staff."""

from __future__ import annotations

import pytest

from intake.fetchers.base import NoAccount
from intake.fetchers.baidu_share import page_data, share_ref
from intake.fetchers.http import NETDISK_UA
from intake.kernel.errors import TransientError
from intake.parsers.links import Link, links_in_text
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, codes, fetcher, link

FILES = {"作品一/视频.mp4": 5000, "作品一/简介.docx": b"doc", "报名表.xlsx": b"xlsx"}


def verifies(fake):
    return [h.form.get("pwd") for h in fake.requests_to("pan.baidu.com", "/share/verify")]


@pytest.mark.parametrize("page_form,list_form", [("mset", "array"), ("try", "object")])
def test_a_valid_link_is_no_account_with_the_listing(fake_netdisk, tmp_path, page_form, list_form):
    share = fake_netdisk.add_share(FILES, "ab12", page_form=page_form, file_list_form=list_form)
    with pytest.raises(NoAccount, match="INTAKE_NETDISK_ROUTE") as caught:
        fetcher(fake_netdisk, tmp_path).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    listed = {(f.path, f.size) for f in caught.value.listing}
    assert listed == {("作品一/视频.mp4", 5000), ("作品一/简介.docx", 3), ("报名表.xlsx", 4)}
    hits = fake_netdisk.requests_to("pan.baidu.com")
    assert all(h.headers.get("User-Agent") == NETDISK_UA for h in hits)
    assert verifies(fake_netdisk) == ["ab12"] and not (tmp_path / "m").exists()


def test_a_share_without_a_code_is_probed_without_verify(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share({"a.mp4": 10})
    with pytest.raises(NoAccount):
        fetcher(fake_netdisk, tmp_path).fetch(link(share), tmp_path / "m", NO_RESERVE)
    assert verifies(fake_netdisk) == []


def test_the_text_code_is_tried_when_the_pwd_code_is_wrong(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    with pytest.raises(NoAccount):
        fetcher(fake_netdisk, tmp_path).fetch(link(share, "ab12", pwd="zz99"), tmp_path / "m", NO_RESERVE)
    assert verifies(fake_netdisk) == ["zz99", "ab12"]


def test_the_pwd_code_comes_first_and_is_enough(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    with pytest.raises(NoAccount):
        fetcher(fake_netdisk, tmp_path).fetch(link(share, "zz99", pwd="ab12"), tmp_path / "m", NO_RESERVE)
    assert verifies(fake_netdisk) == ["ab12"]


def test_a_wrong_code_is_told_after_both_candidates(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    fetched = fetcher(fake_netdisk, tmp_path).fetch(link(share, "cd34", pwd="ef56"), tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.code_wrong"] and fetched.files == []
    assert "ef56、cd34" in fetched.findings[0].message and share.url in fetched.findings[0].message
    assert verifies(fake_netdisk) == ["ef56", "cd34"]


def test_a_missing_code_is_told(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    fetched = fetcher(fake_netdisk, tmp_path).fetch(link(share), tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.code_wrong"] and "提取码" in fetched.findings[0].message


@pytest.mark.parametrize("state", ["cancelled", "expired", "blocked", "missing"])
def test_a_dead_link_is_link_unavailable(fake_netdisk, tmp_path, state):
    share = fake_netdisk.add_share(FILES, "ab12")
    if state == "missing":
        fake_netdisk.shares.pop(share.surl)
    else:
        share.state = state
    fetched = fetcher(fake_netdisk, tmp_path).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"] and "失效" in fetched.findings[0].message


def test_folders_are_listed_a_hundred_a_page(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share({f"素材/{n:03}.jpg": b"j" for n in range(230)}, "ab12")
    with pytest.raises(NoAccount) as caught:
        fetcher(fake_netdisk, tmp_path).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert len(caught.value.listing) == 230
    pages = [h.query.get("page") for h in fake_netdisk.requests_to("pan.baidu.com", "/share/list")]
    assert pages == ["1", "2", "3"]


def test_a_captcha_is_ours_and_waits_hours(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    share.captcha = True
    with pytest.raises(TransientError) as caught:
        fetcher(fake_netdisk, tmp_path).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert caught.value.retry_after >= 3600


def test_links_as_the_parser_reports_them():
    text = ("通过网盘分享的文件：作品\n链接: https://pan.baidu.com/s/1AbCdEfGhIjKlMnOpQrStUv?pwd=ab12 提取码: ab12\n"
            "--来自百度网盘超级会员v6的分享")
    found = links_in_text(text)[0]
    ref = share_ref(found)
    assert (ref.surl, ref.codes, ref.url) == ("AbCdEfGhIjKlMnOpQrStUv", ["ab12"],
                                               "https://pan.baidu.com/s/1AbCdEfGhIjKlMnOpQrStUv")
    ref = share_ref(Link("baidu", "https://pan.baidu.com/share/init?surl=AbCd&pwd=ef56", "cd34"))
    assert (ref.surl, ref.codes, ref.init_url) == ("AbCd", ["ef56", "cd34"],
                                                    "https://pan.baidu.com/share/init?surl=AbCd")
    assert page_data('<script>yunData.setData({"shareid": 1, "x": "});"});</script>')["x"] == "});"
