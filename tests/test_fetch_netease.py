"""163/126 large attachments and 网易邮箱大师 cloud attachments against the loopback fakes:
each endpoint's success, expired and deleted answers, fallbacks between endpoints, a
download URL that expires mid-file, and the file name from Content-Disposition."""

from __future__ import annotations

import hashlib

import pytest

from intake.fetchers import make_fetchers
from intake.fetchers.base import DownloadLimits, DownloadTooLarge, NeedsStaff
from intake.fetchers.large_attachments import disposition_name, file_name
from intake.fetchers.netease import link_key
from intake.kernel.errors import TransientError
from intake.parsers.links import Link, find_links
from tests.fakes import GeneratedContent, fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, codes, settings_for

MIB = 1024 * 1024


def netease(fake, tmp_path):
    return make_fetchers(settings_for(fake, tmp_path), pause=lambda seconds: None)["netease"]


def mail_link(fake, attachment) -> Link:
    """The link as the parser reads it from the mail 163 sends."""
    (found,) = find_links([], [fake.attachment_html(attachment)])
    assert found.provider == "netease"
    return found


def endpoints(fake):
    """Which resolver endpoints were asked, in order."""
    paths = {"/fs/service": "fs", "/filehub/bg/dl/prepare": "filehub", "/filehub-master/file/dl/prepare2": "dashi"}
    return [paths[h.path] for h in fake.hits if h.path in paths]


def test_a_163_large_attachment_is_downloaded_under_its_name(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("netease", "路演视频 第1版.mp4", GeneratedContent(300_000, seed=1))
    fetched = netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)
    target = tmp_path / "m" / "路演视频 第1版.mp4"
    assert fetched.files == [target] and fetched.findings == []
    assert hashlib.md5(target.read_bytes()).hexdigest() == video.content.md5
    assert [(f.path, f.size) for f in fetched.listing] == [("路演视频 第1版.mp4", 300_000)]
    asked = fake_netdisk.requests_to("fs.mail.163.com", "/fs/service")
    assert [(h.query["f"], h.query["op"]) for h in asked] == [(video.key, "fs_dl_f_a")]
    # the downloadUrl names the real host: it was reached through INTAKE_HOST_MAP
    assert fake_netdisk.requests_to("fs.mail.163.com", "/fs/display/") and fake_netdisk.server_errors == []


def test_an_expired_163_attachment_is_told_to_the_sender_at_once(fake_netdisk, tmp_path):
    old = fake_netdisk.add_attachment("netease", "old.mp4", b"o" * 10, state="expired")
    link = mail_link(fake_netdisk, old)
    fetched = netease(fake_netdisk, tmp_path).fetch(link, tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"] and fetched.files == [] and fetched.listing == []
    message = fetched.findings[0].message
    assert "已过期" in message and link.url in message and "百度网盘" in message and "附件" in message
    assert endpoints(fake_netdisk) == ["fs"]  # expired settles it: the newer endpoint is not asked


def test_a_deleted_163_attachment_is_gone_when_both_endpoints_say_so(fake_netdisk, tmp_path):
    deleted = fake_netdisk.add_attachment("netease", "gone.mp4", b"g", state="deleted")
    fetched = netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, deleted), tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"] and "已被删除" in fetched.findings[0].message
    assert endpoints(fake_netdisk) == ["fs", "filehub"]
    prepare = fake_netdisk.requests_to("mail.163.com", "/filehub/bg/dl/prepare")[0]
    assert prepare.method == "POST" and "json" in prepare.headers.get("Content-Type", "")


def test_the_newer_filehub_endpoint_answers_when_the_old_one_does_not_know_the_key(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("netease", "作品.zip", b"z" * 4000)
    fake_netdisk.fault("fs.mail.163.com", "/fs/service", payload={"code": -3, "msg": "file not exist"})
    fetched = netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)
    assert (tmp_path / "m" / "作品.zip").read_bytes() == b"z" * 4000 and fetched.findings == []
    assert endpoints(fake_netdisk) == ["fs", "filehub"]


def test_one_endpoint_down_the_other_answers_both_down_is_ours(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("netease", "v.mp4", b"v" * 100)
    fetcher = netease(fake_netdisk, tmp_path)
    fake_netdisk.fail_http("fs.mail.163.com", 503)
    assert fetcher.fetch(mail_link(fake_netdisk, video), tmp_path / "a", NO_RESERVE).findings == []
    assert (tmp_path / "a" / "v.mp4").read_bytes() == b"v" * 100
    fake_netdisk.fail_http("fs.mail.163.com", 503)
    fake_netdisk.fail_http("mail.163.com", 502)
    with pytest.raises(TransientError) as caught:
        fetcher.fetch(mail_link(fake_netdisk, video), tmp_path / "b", NO_RESERVE)
    assert caught.value.retry_after and not (tmp_path / "b" / "v.mp4").exists()


def test_an_answer_we_do_not_know_is_ours_not_the_senders(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("netease", "v.mp4", b"v")
    fake_netdisk.fault("fs.mail.163.com", "/fs/service", payload={"code": -1, "msg": "unknown op"})
    fake_netdisk.fault("mail.163.com", "/filehub/", payload={"code": 500, "desc": "SYSTEM_ERROR"})
    with pytest.raises(TransientError, match="unexpected answer"):
        netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)


@pytest.mark.parametrize("state,reason", [("ok", None), ("expired", "已过期"), ("deleted", "已被删除")])
def test_mail_master_cloud_attachments(fake_netdisk, tmp_path, state, reason):
    cloud = fake_netdisk.add_attachment("dashi", "大师附件.pptx", b"p" * 2048, state=state)
    fetched = netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, cloud), tmp_path / "m", NO_RESERVE)
    prepare = fake_netdisk.requests_to("dashi.163.com", "/filehub-master/file/dl/prepare2")
    assert len(prepare) == 1 and prepare[0].method == "POST"
    if reason is None:
        assert (tmp_path / "m" / "大师附件.pptx").read_bytes() == b"p" * 2048 and fetched.findings == []
    else:
        assert codes(fetched) == ["link.unavailable"] and reason in fetched.findings[0].message


def test_a_download_url_that_expires_mid_file_is_resolved_again_and_resumed(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("netease", "big.mp4", GeneratedContent(3 * MIB + 77, seed=5))
    fake_netdisk.expire_links(after_bytes=MIB)  # each downloadUrl dies after 1 MiB (cut there, then 403)
    fetched = netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m", NO_RESERVE)
    target = tmp_path / "m" / "big.mp4"
    assert fetched.findings == [] and hashlib.md5(target.read_bytes()).hexdigest() == video.content.md5
    assert endpoints(fake_netdisk).count("fs") >= 4  # resolved again each time a URL died
    ranges = [h.headers["Range"] for h in fake_netdisk.requests_to("fs.mail.163.com", "/fs/display/")]
    assert ranges[0] == "bytes=0-0"  # the first byte, to learn the name and size
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges[1:]]
    # every later request goes on from the bytes on disk (the dead URL, asked once more at the
    # same offset, answers 403 and nothing else): nothing is fetched twice
    assert starts[0] == 0 and len(set(starts)) >= 4 and starts == sorted(starts)


def test_the_cap_is_checked_before_a_byte_is_downloaded(fake_netdisk, tmp_path):
    video = fake_netdisk.add_attachment("netease", "huge.mp4", GeneratedContent(2 * MIB, seed=2))
    with pytest.raises(DownloadTooLarge) as caught:
        netease(fake_netdisk, tmp_path).fetch(mail_link(fake_netdisk, video), tmp_path / "m",
                                              DownloadLimits(max_total_bytes=MIB, reserve_bytes=0))
    assert [(f.path, f.size) for f in caught.value.listing] == [("huge.mp4", 2 * MIB)]
    assert [h.headers["Range"] for h in fake_netdisk.requests_to("fs.mail.163.com", "/fs/display/")] == ["bytes=0-0"]


def test_a_link_without_its_key_is_for_staff(fake_netdisk, tmp_path):
    link = Link("netease", "https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT")
    with pytest.raises(NeedsStaff, match="file/key"):
        netease(fake_netdisk, tmp_path).fetch(link, tmp_path / "m", NO_RESERVE)
    assert fake_netdisk.hits == []


@pytest.mark.parametrize("url,key,endpoint_hosts", [
    ("https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT&file=Sy2W9&title=a",
     "Sy2W9", ["fs.mail.163.com", "mail.163.com"]),
    ("http://mail.126.com/large-attachment-download/index.html?file=abc", "abc", ["fs.mail.163.com", "mail.126.com"]),
    ("https://dashi.163.com/html/cloud-attachment-download?key=K1", "K1", ["dashi.163.com"]),
])
def test_link_shapes(url, key, endpoint_hosts):
    shape, found, host = link_key(url)
    assert found == key
    assert [e.url.format(host=host).split("/")[2] for e in shape.endpoints] == endpoint_hosts


@pytest.mark.parametrize("header,name", [
    ('attachment;filename="路演视频.mp4"'.encode("utf-8").decode("latin-1"), "路演视频.mp4"),  # raw UTF-8 bytes
    ('attachment; filename="作品.zip"'.encode("gb18030").decode("latin-1"), "作品.zip"),  # raw GBK bytes
    ("attachment; filename*=UTF-8''%E8%B7%AF%E6%BC%94.mp4", "路演.mp4"),
    ('attachment; filename="%E8%B7%AF%E6%BC%94.mp4"', "路演.mp4"),
    ('attachment; filename="=?UTF-8?B?6Lev5ryULm1wNA==?="', "路演.mp4"),
    ("attachment; filename=plain.mov", "plain.mov"),
    ("attachment", None),
])
def test_names_from_content_disposition(header, name):
    assert disposition_name(header) == name


def test_file_names_are_one_safe_component_of_bounded_length():
    assert file_name("../作品/视频.mp4") == ".._作品_视频.mp4"
    long = file_name("路" * 150 + ".mp4")
    assert long.endswith(".mp4") and len(long.encode("utf-8")) <= 200 and "/" not in long
