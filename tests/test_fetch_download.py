"""intake.fetchers.download against the loopback file host: ranges, resume after a cut,
expired links, size and md5 checks, the blocked-content stand-in, limits, the lock."""

from __future__ import annotations

import hashlib
import threading

import pytest

from intake.fetchers.base import DownloadLimits, DownloadTooLarge, LinkGone, RemoteFile
from intake.fetchers.download import CHUNK, RANGE, Download, Downloader, Source, part_path
from intake.fetchers.http import NETDISK_UA, HostMap, Http
from intake.fetchers.locks import AccountLock
from intake.kernel.errors import ConfigError, TransientError
from tests.fakes import STANDIN_SIZE, fake_netdisk  # noqa: F401  (the fixture)
from tests.fakes.content import STANDIN
from tests.fakes.filehost import download_url

MIB = 1024 * 1024


def http_for(fake) -> Http:
    return Http(HostMap(dict(pair.split("=", 1) for pair in fake.host_map.split(","))))


class Files:
    """Files of a fake account and resolvers that hand out fresh links, counting calls."""

    def __init__(self, fake, files):
        self.fake = fake
        self.account = fake.add_account(files=files)
        self.resolved = 0

    def download(self, path, size=None, content=None):
        node = self.account.find(path)

        def resolve():
            self.resolved += 1
            link = self.fake.new_link(content or node.content, node.name, "pcs", self.account)
            return Source(download_url(link, node, self.account.uk), {"User-Agent": NETDISK_UA},
                          {"BDUSS": self.account.bduss})
        return Download(RemoteFile(path.lstrip("/"), node.size if size is None else size), resolve)

    def md5(self, path):
        return self.account.find(path).content.md5


def ranges(fake):
    return [h.headers.get("Range") for h in fake.requests_to("d.pcs.baidu.com", "/file/")]


def test_a_file_in_ranges_of_at_most_the_range_size(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"作品/视频.mp4": 3 * MIB + 5})
    fake_netdisk.max_range = MIB  # a longer range is refused (31326 hitcode), as Baidu's hosts do
    events = []
    got, problems = Downloader(http_for(fake_netdisk), range_size=MIB).fetch_all(
        [files.download("/作品/视频.mp4")], tmp_path, DownloadLimits(reserve_bytes=0), events.append)
    target = tmp_path / "作品" / "视频.mp4"
    assert got == [target] and problems == [] and not part_path(tmp_path, "作品/视频.mp4").exists()
    assert hashlib.md5(target.read_bytes()).hexdigest() == files.md5("/作品/视频.mp4")
    assert ranges(fake_netdisk) == [f"bytes={n * MIB}-{min((n + 1) * MIB, 3 * MIB + 5) - 1}" for n in range(4)]
    steps = [b.done - a.done for a, b in zip(events, events[1:])]
    assert all(0 <= step <= CHUNK for step in steps) and events[-1].finished and events[-1].done == 3 * MIB + 5
    assert [e.finished for e in events].count(True) == 1 and RANGE == 50 * MIB


def test_a_cut_resumes_from_the_bytes_on_disk(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"v.mp4": 4 * MIB})
    fake_netdisk.cut(1_500_000)  # the first response drops after 1.5 MB
    pauses = []
    Downloader(http_for(fake_netdisk), pause=pauses.append).fetch_all(
        [files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
    assert hashlib.md5((tmp_path / "v.mp4").read_bytes()).hexdigest() == files.md5("/v.mp4")
    assert ranges(fake_netdisk) == [f"bytes=0-{4 * MIB - 1}", f"bytes=1500000-{4 * MIB - 1}"]
    assert fake_netdisk.bytes_served == 4 * MIB and len(pauses) == 1


def test_a_part_file_left_by_an_earlier_attempt_is_resumed_and_rehashed(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"v.mp4": 3 * MIB})
    fake_netdisk.cut(2 * MIB + 7)
    fake_netdisk.cut(0, times=10)  # then every try is cut at once: the attempt gives up
    downloader = Downloader(http_for(fake_netdisk), pause=lambda s: None)
    with pytest.raises(TransientError, match="resuming at the next attempt"):
        downloader.fetch_all([files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
    assert part_path(tmp_path, "v.mp4").stat().st_size == 2 * MIB + 7
    fake_netdisk.clear_faults()
    downloader.fetch_all([files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
    assert hashlib.md5((tmp_path / "v.mp4").read_bytes()).hexdigest() == files.md5("/v.mp4")
    assert ranges(fake_netdisk)[-1] == f"bytes={2 * MIB + 7}-{3 * MIB - 1}"


def test_wrong_bytes_on_disk_fail_the_md5_and_are_fetched_again(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"v.mp4": 2 * MIB})
    fake_netdisk.cut(MIB)
    fake_netdisk.cut(0, times=10)  # an attempt leaves 1 MiB in the part file (with its validator)
    downloader = Downloader(http_for(fake_netdisk), pause=lambda s: None)
    with pytest.raises(TransientError, match="resuming at the next attempt"):
        downloader.fetch_all([files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
    fake_netdisk.clear_faults()
    part_path(tmp_path, "v.mp4").write_bytes(b"\0" * MIB)  # then the disk holds what the host never served
    with pytest.raises(TransientError, match="md5"):
        downloader.fetch_all([files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
    assert not part_path(tmp_path, "v.mp4").exists() and not (tmp_path / "v.mp4").exists()
    downloader.fetch_all([files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
    assert hashlib.md5((tmp_path / "v.mp4").read_bytes()).hexdigest() == files.md5("/v.mp4")


@pytest.mark.parametrize("answer", ["31360", "403"])
def test_a_link_that_expires_mid_download_is_resolved_again(fake_netdisk, tmp_path, answer):
    files = Files(fake_netdisk, {"v.mp4": 5 * MIB})
    fake_netdisk.expire_links(after_bytes=2 * MIB, answer=answer)  # each link dies after 2 MiB
    item = files.download("/v.mp4")
    Downloader(http_for(fake_netdisk), range_size=MIB, pause=lambda s: None).fetch_all(
        [item], tmp_path, DownloadLimits(reserve_bytes=0))
    assert hashlib.md5((tmp_path / "v.mp4").read_bytes()).hexdigest() == files.md5("/v.mp4")
    assert files.resolved == 3  # the first link, then one after each expiry
    assert fake_netdisk.bytes_served == 5 * MIB  # nothing fetched twice


def test_the_stand_in_is_link_unavailable_and_the_other_files_still_come(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"blocked.mp4": 10, "ok.docx": b"fine"})
    items = [files.download("/blocked.mp4", size=STANDIN_SIZE, content=STANDIN), files.download("/ok.docx")]
    got, problems = Downloader(http_for(fake_netdisk)).fetch_all(items, tmp_path, DownloadLimits(reserve_bytes=0))
    assert got == [tmp_path / "ok.docx"] and [type(p) for p in problems] == [LinkGone]
    assert "blocked.mp4" in str(problems[0]) and "温馨提示" in str(problems[0])
    assert not (tmp_path / "blocked.mp4").exists() and not part_path(tmp_path, "blocked.mp4").exists()


def test_the_size_is_checked_against_the_listing(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"v.mp4": 1000})
    with pytest.raises(TransientError, match="lists 999 bytes"):
        Downloader(http_for(fake_netdisk)).fetch_all([files.download("/v.mp4", size=999)], tmp_path,
                                                     DownloadLimits(reserve_bytes=0))


def test_the_message_cap_and_the_disk_reserve(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"a.mp4": 3000, "b.mp4": 3000})
    items = [files.download("/a.mp4"), files.download("/b.mp4")]
    downloader = Downloader(http_for(fake_netdisk))
    with pytest.raises(DownloadTooLarge, match="INTAKE_DOWNLOAD_MAX_GB") as caught:
        downloader.fetch_all(items, tmp_path, DownloadLimits(max_total_bytes=5999, reserve_bytes=0))
    assert [f.path for f in caught.value.listing] == ["a.mp4", "b.mp4"]
    with pytest.raises(TransientError, match="INTAKE_DISK_RESERVE_GB") as low:
        downloader.fetch_all(items, tmp_path, DownloadLimits(reserve_bytes=2 ** 62))
    assert low.value.retry_after and low.value.retry_after >= 600
    assert fake_netdisk.requests_to("d.pcs.baidu.com") == []  # nothing started


@pytest.mark.parametrize("errno,kind,retry", [(31326, TransientError, 1800), (31626, TransientError, 1800),
                                              (31362, ConfigError, None)])
def test_file_host_refusals(fake_netdisk, tmp_path, errno, kind, retry):
    files = Files(fake_netdisk, {"v.mp4": 1000})
    fake_netdisk.fault("d.pcs.baidu.com", payload={"error_code": errno, "error_msg": "refused"})
    with pytest.raises(kind) as caught:
        Downloader(http_for(fake_netdisk)).fetch_all([files.download("/v.mp4")], tmp_path,
                                                     DownloadLimits(reserve_bytes=0))
    assert getattr(caught.value, "retry_after", None) == retry


@pytest.mark.parametrize("status", [429, 500, 503])
def test_file_host_overload_is_transient(fake_netdisk, tmp_path, status):
    files = Files(fake_netdisk, {"v.mp4": 1000})
    fake_netdisk.fail_http("d.pcs.baidu.com", status)
    with pytest.raises(TransientError) as caught:
        Downloader(http_for(fake_netdisk)).fetch_all([files.download("/v.mp4")], tmp_path,
                                                     DownloadLimits(reserve_bytes=0))
    assert caught.value.retry_after and caught.value.retry_after >= 60


def test_one_download_at_a_time_per_account(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"a.mp4": 3 * MIB, "b.mp4": 3 * MIB})
    active, most, guard = set(), [0], threading.Lock()

    def progress(event):
        with guard:
            if event.finished:
                active.discard(event.path)
            else:
                active.add(event.path)
            most[0] = max(most[0], len(active))

    def run(name):
        Downloader(http_for(fake_netdisk), AccountLock("acct-test", tmp_path / "locks"), range_size=MIB).fetch_all(
            [files.download(f"/{name}")], tmp_path / name[0], DownloadLimits(reserve_bytes=0), progress)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a.mp4", "b.mp4")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert (tmp_path / "a" / "a.mp4").stat().st_size == (tmp_path / "b" / "b.mp4").stat().st_size == 3 * MIB
    assert most[0] == 1


def test_an_empty_answer_counts_as_a_cut_and_ends(fake_netdisk, tmp_path):
    files = Files(fake_netdisk, {"v.mp4": 1000})
    fake_netdisk.cut(0, times=-1)  # every answer ends before its first byte
    with pytest.raises(TransientError, match="cut 5 times at byte 0"):
        Downloader(http_for(fake_netdisk), pause=lambda s: None).fetch_all(
            [files.download("/v.mp4")], tmp_path, DownloadLimits(reserve_bytes=0))
