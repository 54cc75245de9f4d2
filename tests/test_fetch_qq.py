"""QQ Mail large attachments against the loopback fakes: the newer ftn landing page (var
status / var url) and the older ftnExs_download page (the download button), expired and
deleted files, a download URL that expires mid-file, and pages we cannot read."""

from __future__ import annotations

import hashlib

import pytest

from intake.fetchers import make_fetchers
from intake.fetchers.base import LinkGone, NeedsStaff
from intake.fetchers.qq import page_shape, read_page
from intake.kernel.errors import TransientError
from intake.parsers.links import Link, find_links
from tests.fakes import GeneratedContent, fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, codes, settings_for

MIB = 1024 * 1024


def qq(fake, tmp_path):
    return make_fetchers(settings_for(fake, tmp_path), pause=lambda seconds: None)["qq"]


def mail_link(fake, attachment) -> Link:
    (found,) = find_links([], [fake.attachment_html(attachment)])
    assert found.provider == "qq"
    return found


def downloads(fake):
    return fake.requests_to("download.ftn.qq.com", "/ftn_handler/")


@pytest.mark.parametrize("provider,page_host", [("qq", "wx.mail.qq.com"), ("qq_old", "mail.qq.com")])
def test_a_qq_large_attachment_is_downloaded_under_its_name(fake_netdisk, tmp_path, provider, page_host):
    video = fake_netdisk.add_attachment(provider, "作品 视频.mp4", GeneratedContent(200_000, seed=7))
    fetched = qq(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)
    target = tmp_path / "m" / "作品 视频.mp4"
    assert fetched.files == [target] and fetched.findings == []
    assert hashlib.md5(target.read_bytes()).hexdigest() == video.content.md5
    assert [(f.path, f.size) for f in fetched.listing] == [("作品 视频.mp4", 200_000)]
    assert len(fake_netdisk.requests_to(page_host)) == 1
    # the URL the page gave (with \x26 for '&' on the newer page) names the real ftn host
    assert downloads(fake_netdisk) and all(h.query.get("k") == video.code for h in downloads(fake_netdisk))


@pytest.mark.parametrize("provider", ["qq", "qq_old"])
@pytest.mark.parametrize("state", ["expired", "deleted"])
def test_an_expired_or_deleted_qq_attachment_is_told_to_the_sender(fake_netdisk, tmp_path, provider, state):
    old = fake_netdisk.add_attachment(provider, "old.mp4", b"o", state=state)
    link = mail_link(fake_netdisk, old)
    fetched = qq(fake_netdisk, tmp_path).fetch(link, tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"] and fetched.files == [] and downloads(fake_netdisk) == []
    message = fetched.findings[0].message
    assert "已过期或已被删除" in message and link.url in message and "截止时间前" in message


def test_a_download_url_that_expires_mid_file_is_resolved_again(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("qq", "big.mp4", GeneratedContent(2 * MIB + 5, seed=9))
    fake_netdisk.expire_links(after_bytes=MIB)
    fetched = qq(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)
    assert fetched.findings == []
    assert hashlib.md5((tmp_path / "m" / "big.mp4").read_bytes()).hexdigest() == video.content.md5
    assert len(fake_netdisk.requests_to("wx.mail.qq.com", "/ftn/download")) >= 3  # the page read again
    starts = [int(h.headers["Range"].split("=")[1].split("-")[0]) for h in downloads(fake_netdisk)[1:]]
    assert starts[0] == 0 and starts == sorted(starts) and len(set(starts)) >= 3


def test_an_expired_link_found_while_resolving_again_is_the_senders(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("qq", "v.mp4", GeneratedContent(MIB, seed=3))
    fake_netdisk.expire_links(after_requests=1)  # the probe's byte uses the first URL up

    link, fetcher = mail_link(fake_netdisk, video), qq(fake_netdisk, tmp_path)
    original = fetcher.resolve

    def resolve_then_expire(url):  # the file expires between the first and the second look
        resolved = original(url)
        video.state = "expired"
        return resolved

    fetcher.resolve = resolve_then_expire
    fetched = fetcher.fetch(link, tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"] and fetched.files == []
    assert [f.path for f in fetched.listing] == ["v.mp4"]


def test_a_page_we_cannot_read_is_ours(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("qq", "v.mp4", b"v")
    fake_netdisk.fault("wx.mail.qq.com", "/ftn/download", payload={"head": {"ret": -5}})
    with pytest.raises(TransientError, match="names no download URL"):
        qq(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)
    fake_netdisk.fail_http("wx.mail.qq.com", 503)
    with pytest.raises(TransientError):
        qq(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)


def test_page_reading():
    page = '<script>var status = 1;\nvar url = "https://x.ftn.qq.com/ftn_handler/T/?fname=a.mp4\\x26k=1";</script>'
    assert read_page(page, "L") == ("https://x.ftn.qq.com/ftn_handler/T/?fname=a.mp4&k=1", None)
    button = '<a href="https://x.ftn.qq.com/f?a=1&amp;b=2" class="ft_d_btnDownload btn_blue">下载</a>'
    assert read_page(button, "L")[0] == "https://x.ftn.qq.com/f?a=1&b=2"
    with pytest.raises(LinkGone):
        read_page("<script>var status = 2; var url = \"https://x\";</script>", "L")
    with pytest.raises(LinkGone):
        read_page('<div class="ft_d_expired">很抱歉，该文件已过期或已被删除。</div>', "L")


@pytest.mark.parametrize("url,ok", [
    ("https://iwx.mail.qq.com/ftn/download?func=3&key=a&code=b&k=c", True),
    ("https://exmail.qq.com/cgi-bin/ftnExs_download?k=a&code=b", True),
    ("https://mail.qq.com/cgi-bin/frame_html", False),
])
def test_page_shapes(url, ok):
    if ok:
        page_shape(url)
    else:
        with pytest.raises(NeedsStaff):
            page_shape(url)
