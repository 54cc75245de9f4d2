"""Regression tests of intake/fetchers against hostile shares and hostile server answers
(they began as a review's failing reproductions): names longer than 255 bytes of UTF-8,
answers longer than they say, the per-message cap when sizes are unknown, names that
collide on disk, JSON sniffing of file data, listing bounds and paging, access tokens in
tracebacks, our own missing copy, a double token refresh, dead-page marks in file names,
range answers with an unknown total, and cut JSON answers. Each docstring tells the
failure it guards against."""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from intake.fetchers import baidu_web, download
from intake.fetchers.base import DownloadLimits, NeedsStaff, NetworkError, RemoteFile, sanitise
from intake.fetchers.baidu_share import ShareRef
from intake.fetchers.baidu_web import ShareWeb
from intake.fetchers.download import Download, Downloader, Source
from intake.fetchers.http import HostMap, Http
from intake.fetchers.parts import part_path, write_validator
from intake.fetchers.qq import QQFetcher
from intake.fetchers.tokens import Tokens
from intake.kernel.errors import TransientError
from intake.parsers.links import Link
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, OpenApiSetup, codes, fetcher, link

MIB = 1024 * 1024
Handler = Callable[[BaseHTTPRequestHandler], None]


# --- a hostile server on loopback ---------------------------------------------------------

class Hostile:
    """One loopback HTTP/1.0 server whose answers a test writes (a body without a
    Content-Length ends when the connection closes)."""

    def __init__(self, handle: Handler) -> None:
        self.hits: list[tuple[str, dict[str, str]]] = []
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802
                owner.hits.append((self.path, dict(self.headers)))
                try:
                    handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def http(self, *hosts: str) -> Http:
        return Http(HostMap({host: self.base for host in hosts}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Handler], Hostile]]:
    made: list[Hostile] = []

    def start(handle: Handler) -> Hostile:
        made.append(Hostile(handle))
        return made[-1]
    yield start
    for server in made:
        server.close()


def answer(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes | Iterator[bytes]):
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.end_headers()
    for block in ([body] if isinstance(body, bytes) else body):
        request.wfile.write(block)


def ranged(files: dict[str, bytes], content_type: str = "application/octet-stream") -> Handler:
    """An honest file host for /<name>: 206 with Content-Range, or 200 without Range."""
    def handle(request: BaseHTTPRequestHandler) -> None:
        data = files[request.path.lstrip("/").split("?")[0]]
        found = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", ""))
        if not found:
            answer(request, 200, {"Content-Length": str(len(data)), "Content-Type": content_type}, data)
            return
        first = int(found.group(1))
        last = min(int(found.group(2) or len(data) - 1), len(data) - 1)
        answer(request, 206, {"Content-Range": f"bytes {first}-{last}/{len(data)}",
                              "Content-Length": str(last - first + 1), "Content-Type": content_type},
               data[first:last + 1])
    return handle


def item(server: Hostile, name: str, size: int, path: str | None = None) -> Download:
    return Download(RemoteFile(path or name, size), lambda: Source(f"https://d.pcs.baidu.com/{name}"))


# --- 1. names: bytes, not characters --------------------------------------------------------

def test_a_share_name_of_100_chinese_characters_fits_the_255_byte_limit():
    name = sanitise("作品/" + "中" * 100 + ".mp4")
    assert all(len(part.encode("utf-8")) + len(".part") <= 255 for part in name.split("/"))


def test_a_long_chinese_file_name_in_a_share_is_downloaded(fake_netdisk, tmp_path):
    """Cookie route: the listing's name is cut to 200 characters = 600 bytes of UTF-8;
    open() fails with ENAMETOOLONG, an OSError neither a finding nor a TransientError."""
    long_name = "路演视频" * 25 + ".mp4"  # 100 characters, 304 bytes: a valid Baidu name
    share = fake_netdisk.add_share({long_name: b"video"}, "ab12")
    account = fake_netdisk.add_account()
    route = fetcher(fake_netdisk, tmp_path, "cookie", INTAKE_BAIDU_COOKIE=account.cookie)
    fetched = route.fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, key="R-long")
    assert len(fetched.files) == 1 and fetched.files[0].read_bytes() == b"video"


# --- 2. the body of an answer is not bounded by the file's size -----------------------------

def test_a_body_longer_than_the_file_is_not_written_past_its_size(hostile, tmp_path):
    """206 'bytes 0-9/10' and then 4 MiB until the connection closes: all of it goes to the
    .part file before the size check notices (a host that never stops fills the disk)."""
    def handle(request):
        answer(request, 206, {"Content-Range": "bytes 0-9/10"}, (b"x" * MIB for _ in range(4)))
    server = hostile(handle)
    seen: list[int] = []
    with pytest.raises(TransientError):
        Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None).fetch_all(
            [item(server, "f.bin", 10)], tmp_path, DownloadLimits(reserve_bytes=0), lambda e: seen.append(e.done))
    assert max(seen) <= 10


def test_the_download_cap_holds_when_the_size_was_not_known_beforehand(hostile, tmp_path):
    """QQ: the link answers with the file (200, no length). describe() learns no size, the
    listing says 0, preflight passes, and 3 MiB are fetched under a 1 MiB cap (and no
    disk-reserve check applies either)."""
    def handle(request):
        answer(request, 200, {"Content-Type": "application/octet-stream",
                              "Content-Disposition": 'attachment; filename="a.bin"'},
               (b"y" * MIB for _ in range(3)))
    server = hostile(handle)
    route = QQFetcher(server.http("wx.mail.qq.com"), pause=lambda s: None)
    url = "https://wx.mail.qq.com/ftn/download?func=3&key=k&code=c&k=k"
    with pytest.raises(NeedsStaff):
        route.fetch(Link("qq", url), tmp_path / "m", DownloadLimits(max_total_bytes=MIB, reserve_bytes=0))


def test_the_cap_is_for_the_message_not_for_each_link(hostile, tmp_path):
    """Two links of one message, 0.75 MiB each, cap 1 MiB: both are fetched (preflight
    counts one link's listing only; DownloadLimits carries nothing already used)."""
    data = b"z" * (3 * MIB // 4)

    def handle(request):
        answer(request, 200, {"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                              "Content-Disposition": f'attachment; filename="{request.path[-1]}.bin"'}, data)
    server = hostile(handle)
    route = QQFetcher(server.http("wx.mail.qq.com"), pause=lambda s: None)
    limits = DownloadLimits(max_total_bytes=MIB, reserve_bytes=0)
    route.fetch(Link("qq", "https://wx.mail.qq.com/ftn/download?k=1"), tmp_path / "m", limits)
    with pytest.raises(NeedsStaff):
        route.fetch(Link("qq", "https://wx.mail.qq.com/ftn/download?k=2"), tmp_path / "m", limits)


# --- 3. names that collide on disk ----------------------------------------------------------

def test_a_file_named_like_another_files_part_file_does_not_corrupt_it(hostile, tmp_path):
    """'v.mp4.part' (fetched first) is taken for the unfinished download of 'v.mp4': its
    bytes are resumed from, and it vanishes from disk though it is listed as fetched."""
    files = {"a": b"A" * 10, "b": b"B" * 20}
    server = hostile(ranged(files))
    got, _ = Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None).fetch_all(
        [item(server, "a", 10, "v.mp4.part"), item(server, "b", 20, "v.mp4")], tmp_path, NO_RESERVE)
    assert (tmp_path / "v.mp4").read_bytes() == files["b"]
    assert all(path.exists() for path in got)


def test_two_names_that_sanitise_alike_are_both_kept(hostile, tmp_path):
    """'a:b.mp4' and 'a_b.mp4' (Baidu allows both) become one path; the second is taken
    for 'fetched by an earlier attempt' and silently dropped."""
    files = {"one": b"1" * 10, "two": b"2" * 10}
    server = hostile(ranged(files))
    remotes = [item(server, "one", 10, sanitise("a:b.mp4")), item(server, "two", 10, sanitise("a_b.mp4"))]
    got, _ = Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None).fetch_all(remotes, tmp_path, NO_RESERVE)
    assert len(set(got)) == 2


# --- 4. the JSON sniffing of file data -------------------------------------------------------

def test_a_json_file_without_a_length_keeps_its_first_4_kib(hostile, tmp_path):
    """A JSON content type and no Content-Length: _small_body reads 4097 bytes to look for
    an errno, finds the body longer and drops what it read."""
    data = json.dumps({"rows": list(range(3000))}).encode()

    def handle(request):
        answer(request, 200, {"Content-Type": "application/json"}, data)
    server = hostile(handle)
    got, _ = Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None).fetch_all(
        [item(server, "d.json", 0)], tmp_path, NO_RESERVE)
    assert got[0].read_bytes() == data


def test_a_small_json_file_mentioning_errno_is_data(hostile, tmp_path):
    data = b'{"errno": 0, "note": "a settings file of the project"}'
    server = hostile(ranged({"c.json": data}, "application/json"))
    got, _ = Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None).fetch_all(
        [item(server, "c.json", len(data))], tmp_path, NO_RESERVE)
    assert got[0].read_bytes() == data


# --- 5. listings -----------------------------------------------------------------------------

def test_listing_a_folder_stops_at_max_entries(hostile, tmp_path):
    """share/list always answers a full page (a folder of 10^6 files, or a server that
    ignores page=): _list_dir pages on until a short page, MAX_ENTRIES is only looked at
    after the whole folder. Here the server gives up after 80 pages (8,000 rows)."""
    def handle(request):
        if request.path.startswith("/s/"):
            data = {"shareid": "1", "share_uk": "2", "loginstate": 0,
                    "file_list": [{"fs_id": 1, "server_filename": "d", "isdir": 1, "path": "/d", "size": 0}]}
            answer(request, 200, {"Content-Type": "text/html"}, f"<script>locals.mset({json.dumps(data)});</script>".encode())
            return
        page = int(re.search(r"page=(\d+)", request.path).group(1))
        rows = [] if page > 80 else [{"fs_id": page * 1000 + n, "server_filename": f"{n}.jpg", "isdir": 0,
                                      "path": f"/d/{n}.jpg", "size": 1} for n in range(100)]
        answer(request, 200, {"Content-Type": "application/json"}, json.dumps({"errno": 0, "list": rows}).encode())
    server = hostile(handle)
    web = ShareWeb(server.http("pan.baidu.com"), ShareRef("https://pan.baidu.com/s/1abcd", "abcd"))
    web.list_tree(web.open())
    pages = [path for path, _ in server.hits if path.startswith("/share/list")]
    assert len(pages) <= baidu_web.MAX_ENTRIES // baidu_web.PAGE_SIZE + 1


def test_a_listing_cut_at_max_entries_is_not_a_silent_partial_download(fake_netdisk, tmp_path, monkeypatch):
    """Over MAX_ENTRIES the tree walk stops; folders not yet listed count as empty, so
    their files are transferred (account space) but neither listed nor downloaded, and
    the message would be judged on part of its package, with no error."""
    monkeypatch.setattr(baidu_web, "MAX_ENTRIES", 3)
    share = fake_netdisk.add_share({"a/1.jpg": b"1", "a/2.jpg": b"2", "b/1.jpg": b"3", "b/2.jpg": b"4",
                                    "c.txt": b"5"}, "ab12")
    account = fake_netdisk.add_account()
    route = fetcher(fake_netdisk, tmp_path, "cookie", INTAKE_BAIDU_COOKIE=account.cookie)
    try:
        fetched = route.fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, key="R-many")
    except NeedsStaff:
        return  # what should happen: staff are told the share is too large to list
    assert len(fetched.files) == 5


# --- 6. secrets in tracebacks ----------------------------------------------------------------

def test_a_network_failure_does_not_carry_the_access_token(tmp_path):
    """NetworkError is raised 'from' requests' ConnectionError, whose text holds the path
    and query: the worker stores traceback.format_exc() (messages.traceback) and
    commands.py logs rounds with log.exception, so the token reaches the DB and logs."""
    http = Http(HostMap({"pan.baidu.com": "http://127.0.0.1:9"}))  # nothing listens on port 9
    with pytest.raises(NetworkError) as caught:
        http.json("GET", "https://pan.baidu.com/rest/2.0/xpan/multimedia",
                  params={"method": "filemetas", "access_token": "121.SECRET-ACCESS-TOKEN"})
    assert "SECRET-ACCESS-TOKEN" not in "".join(traceback.format_exception(caught.value))


# --- 7. error classification -----------------------------------------------------------------

def test_our_own_copy_gone_missing_is_not_told_to_the_sender(fake_netdisk, tmp_path):
    """After the transfer, our copy disappears (a parallel attempt's cleanup, staff): PCS
    says 31066 and the sender is told their link is dead (link.unavailable)."""
    share = fake_netdisk.add_share({"a.mp4": b"video"}, "ab12")
    account = fake_netdisk.add_account()
    route = fetcher(fake_netdisk, tmp_path, "cookie", INTAKE_BAIDU_COOKIE=account.cookie)

    def lose_copy(event):
        if not event.done and not event.finished:
            account.find("/intake-inbox").children.clear()
    try:
        fetched = route.fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, lose_copy, key="R-lost")
    except TransientError:
        return  # ours: retried
    assert "link.unavailable" not in codes(fetched)


# --- 8. tokens ---------------------------------------------------------------------------------

def test_two_processes_refresh_an_expiring_token_once(fake_netdisk, tmp_path):
    """Process B loaded the pair before process A refreshed it; B's _token() sees its
    cached pair near expiry and refreshes again (refresh() gets spent=None, so it does
    not notice the stored pair is fresh): a second refresh, which also kills A's token."""
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    tokens, _ = setup.login()
    setup.store.save(Tokens(tokens.access_token, tokens.refresh_token, time.time() + 60, tokens.scope))
    first, second = setup.route(), setup.route()
    second.tokens = setup.store.load()  # B read the store earlier
    first._token()  # A refreshes and stores the new pair
    before = len(fake_netdisk.requests_to("openapi.baidu.com", "/oauth/2.0/token"))
    second._token()
    assert len(fake_netdisk.requests_to("openapi.baidu.com", "/oauth/2.0/token")) == before


# --- 9. the dead-page marks are looked for in the sender's file names too ---------------------

def test_a_file_named_error_404_does_not_make_the_share_dead(fake_netdisk, tmp_path):
    """page_is_dead() searches the whole page, whose embedded file_list holds the
    sender's names: a live share with a file named 'error-404…' is told 'link dead'."""
    share = fake_netdisk.add_share({"error-404修复说明.docx": b"doc"}, "ab12")
    with pytest.raises(NeedsStaff):  # NoAccount: the link and code are fine
        fetcher(fake_netdisk, tmp_path).fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)


# --- 10. an unknown size is taken from the first range ------------------------------------------

def test_a_range_answer_with_an_unknown_total_is_not_the_whole_file(hostile, tmp_path):
    """Size not listed (163/QQ when describe() learnt none): the first 206 'bytes 0-9/*'
    ends the download: _write sets size = offset, and a third of the file is kept as if complete."""
    data = bytes(range(30))

    def handle(request):
        first, last = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers["Range"]).groups())
        last = min(last, len(data) - 1)
        answer(request, 206, {"Content-Range": f"bytes {first}-{last}/*", "Content-Length": str(last - first + 1)},
               data[first:last + 1])
    server = hostile(handle)
    got, _ = Downloader(server.http("d.pcs.baidu.com"), range_size=10, pause=lambda s: None).fetch_all(
        [item(server, "f.bin", 0)], tmp_path, NO_RESERVE)
    assert got[0].read_bytes() == data


def test_the_root_listing_is_paged_too(hostile, tmp_path):
    """A share page without file_list: _list_root asks share/list?root=1 once, without
    page=, and keeps the first 100 of 150 top-level files, silently."""
    def handle(request):
        if request.path.startswith("/s/"):
            data = {"shareid": "1", "share_uk": "2", "loginstate": 0}
            answer(request, 200, {"Content-Type": "text/html"}, f"<script>locals.mset({json.dumps(data)});</script>".encode())
            return
        page = int((re.search(r"page=(\d+)", request.path) or re.search("()", "")).group(1) or 1)
        rows = [{"fs_id": n, "server_filename": f"{n}.jpg", "isdir": 0, "path": f"/{n}.jpg", "size": 1}
                for n in range(150)][(page - 1) * 100: page * 100]
        answer(request, 200, {"Content-Type": "application/json"}, json.dumps({"errno": 0, "list": rows}).encode())
    server = hostile(handle)
    web = ShareWeb(server.http("pan.baidu.com"), ShareRef("https://pan.baidu.com/s/1abcd", "abcd"))
    assert len(web.list_tree(web.open()).files()) == 150


# --- 11. a Content-Length lie on an API answer is not classified --------------------------------

def test_a_json_answer_cut_short_is_a_network_error(hostile):
    """Content-Length 1000, 10 bytes, close: requests raises ChunkedEncodingError (a
    RequestException, not a ConnectionError), which Http._send lets through unclassified."""
    def handle(request):
        answer(request, 200, {"Content-Type": "application/json", "Content-Length": "1000"}, b'{"errno": ')
    server = hostile(handle)
    with pytest.raises(TransientError):
        server.http("pan.baidu.com").json("GET", "https://pan.baidu.com/api/user/getinfo")


# --- 12. cookies: the scheme, IP literals, https only for the login ----------------------------

def test_cookies_do_not_follow_a_redirect_to_an_unmapped_ip_address(hostile):
    elsewhere = hostile(lambda request: answer(request, 200, {"Content-Length": "2"}, b"ok"))
    server = hostile(lambda request: answer(request, 302, {"Location": f"{elsewhere.base}/x", "Content-Length": "0"},
                                            b""))
    server.http("pan.baidu.com").request("GET", "https://pan.baidu.com/s/1abc", cookies={"BDCLND": "c"})
    assert "Cookie" in server.hits[0][1] and "Cookie" not in elsewhere.hits[0][1]


def test_the_login_cookie_goes_over_https_only(hostile):
    server = hostile(lambda request: answer(request, 200, {"Content-Length": "2"}, b"ok"))
    server.http("pan.baidu.com").request("GET", "http://pan.baidu.com/x", cookies={"BDUSS": "login", "BDCLND": "c"})
    server.http("pan.baidu.com").request("GET", "https://pan.baidu.com/x", cookies={"BDUSS": "login"})
    assert [hit[1].get("Cookie") for hit in server.hits] == ["BDCLND=c", "BDUSS=login"]


# --- 13. a host that trickles ------------------------------------------------------------------

def test_a_file_past_its_deadline_is_given_up_for_now(hostile, tmp_path, monkeypatch):
    """The deadline is the file's whole time (here none): read timeouts alone never end a
    host that sends a byte now and then."""
    monkeypatch.setattr(download, "FILE_TIME", 0.0)
    server = hostile(ranged({"slow.bin": b"s" * 1000}))
    with pytest.raises(NetworkError, match="too slow"):
        Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None, min_rate=10 ** 12).fetch_all(
            [item(server, "slow.bin", 1000)], tmp_path, NO_RESERVE)


# --- 14. a part of a file that changed is not resumed from -------------------------------------

def test_a_part_whose_file_changed_at_the_source_starts_over(hostile, tmp_path):
    files = {"v.bin": b"N" * 20}
    server = hostile(ranged(files))
    old = Download(RemoteFile("v.bin", 20), lambda: Source("https://d.pcs.baidu.com/v.bin"), "fs-1")
    part = part_path(tmp_path, "v.bin")
    write_validator(part, {"path": "v.bin", "size": 20, "md5": None, "identity": "fs-0", "host": None})
    part.write_bytes(b"O" * 10)  # ten bytes of the file that fs-0 was
    got, _ = Downloader(server.http("d.pcs.baidu.com"), pause=lambda s: None).fetch_all([old], tmp_path, NO_RESERVE)
    assert got[0].read_bytes() == files["v.bin"] and not part.exists()
