"""Benchmark: downloading linked packages from the loopback file host.

- throughput: intake's downloader (50 MiB ranges, 1 MiB writes, md5 while writing, size
  check) against curl fetching the same file from the same fake file host, which runs in
  a process of its own; the two alternate, best and median of each reported.
- refetched after a cut: bytes the file host sent twice when the connection drops
  mid-file, and when the link expires mid-file (resolved again, resumed).
- peak RSS: a fresh process that fetches a 2 GiB share through the cookie route
  (verify, list, transfer, locatedownload, download) from the fake in another process;
  VmHWM of that process.

    .venv/bin/python bench/netdisk_bench.py [--size-mb 1024] [--runs 3] [--rss-gb 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake.fetchers import make_fetchers  # noqa: E402
from intake.fetchers.base import DownloadLimits, RemoteFile  # noqa: E402
from intake.fetchers.download import Download, Downloader, Source  # noqa: E402
from intake.fetchers.http import NETDISK_UA, HostMap, Http  # noqa: E402
from intake.parsers.links import Link  # noqa: E402
from intake.settings import load_settings  # noqa: E402
from tests.fakes import FakeNetdisk, FileContent, GeneratedContent  # noqa: E402
from tests.fakes.filehost import download_url  # noqa: E402

MIB = 1024 * 1024
UNLIMITED = DownloadLimits(max_total_bytes=1 << 50, reserve_bytes=0)


def serve(source: str, size: int) -> None:
    """The server process: a share and an account holding one file; prints what clients need."""
    content = FileContent(Path(source)) if source else GeneratedContent(size, seed=7)
    with FakeNetdisk() as fake:
        share = fake.add_share({"路演/视频.mp4": content}, "ab12")
        account = fake.add_account(files={"bench.bin": content})
        node = account.find("/bench.bin")
        link = fake.new_link(content, "bench.bin", "pcs", account)
        real = download_url(link, node, account.uk)
        print(json.dumps({"host_map": fake.host_map, "url": real, "loopback": fake.url(real), "bduss": account.bduss,
                          "cookie": account.cookie, "share": share.url, "md5": content.md5}), flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


def start_server(source: str = "", size: int = 0) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", source, str(size)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def stop_server(process: subprocess.Popen) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def host_map(text: str) -> HostMap:
    return HostMap(dict(pair.split("=", 1) for pair in text.split(",")))


def intake_download(info: dict, size: int, dest: Path) -> float:
    item = Download(RemoteFile("bench.bin", size),
                    lambda: Source(info["url"], {"User-Agent": NETDISK_UA}, {"BDUSS": info["bduss"]}))
    began = time.perf_counter()
    Downloader(Http(host_map(info["host_map"]))).fetch_all([item], dest, UNLIMITED)
    took = time.perf_counter() - began
    (dest / "bench.bin").unlink()
    return took


def curl_download(info: dict, dest: Path) -> float:
    target = dest / "curl.bin"
    began = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(target), "-H", f"User-Agent: {NETDISK_UA}",
                    "-H", f"Cookie: BDUSS={info['bduss']}", info["loopback"]], check=True)
    took = time.perf_counter() - began
    target.unlink()
    return took


def curl_md5_download(info: dict, dest: Path) -> float:
    """curl piped through tee into md5sum: the same work as intake's (fetch, write, hash)."""
    target = dest / "curl.bin"
    command = (f"curl -sS -H 'User-Agent: {NETDISK_UA}' -H 'Cookie: BDUSS={info['bduss']}' '{info['loopback']}'"
               f" | tee '{target}' | md5sum")
    began = time.perf_counter()
    digest = subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, capture_output=True, text=True)
    took = time.perf_counter() - began
    assert digest.stdout.split()[0] == info["md5"]
    target.unlink()
    return took


def throughput(size_mb: int, runs: int, work: Path) -> None:
    source = work / "source.bin"
    with source.open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(MIB))
    process, info = start_server(str(source))
    size = size_mb * MIB
    try:
        curl_download(info, work)  # warm the page cache and the server
        curls, hashed, ours = [], [], []
        for _ in range(runs):
            curls.append(curl_download(info, work))
            hashed.append(curl_md5_download(info, work))
            ours.append(intake_download(info, size, work))
    finally:
        stop_server(process)
        source.unlink()
    def rates(times: list[float]) -> tuple[float, float]:
        return size / MIB / min(times), size / MIB / statistics.median(times)

    (curl, curl_median), (piped, piped_median), (mine, mine_median) = rates(curls), rates(hashed), rates(ours)
    print(f"throughput, {size_mb} MiB, {runs} runs each, MiB/s best (median): curl {curl:.0f} ({curl_median:.0f}); "
          f"curl | tee | md5sum {piped:.0f} ({piped_median:.0f}); intake {mine:.0f} ({mine_median:.0f})")
    print(f"  intake / curl: {mine / curl:.2f}x ({mine_median / curl_median:.2f}x); intake / curl with md5sum: "
          f"{mine / piped:.2f}x ({mine_median / piped_median:.2f}x)")


def refetched(size_mb: int, work: Path) -> None:
    size = size_mb * MIB
    for name, switch in (("connection cut at 40%", lambda fake: fake.cut(int(size * 0.4))),
                         ("link expired at 40% and 80%", lambda fake: fake.expire_links(after_bytes=int(size * 0.4)))):
        with FakeNetdisk() as fake:
            account = fake.add_account(files={"bench.bin": GeneratedContent(size, seed=3)})
            node = account.find("/bench.bin")
            switch(fake)

            def resolve() -> Source:
                link = fake.new_link(node.content, "bench.bin", "pcs", account)
                return Source(download_url(link, node, account.uk), {"User-Agent": NETDISK_UA},
                              {"BDUSS": account.bduss})
            Downloader(Http(host_map(fake.host_map)), pause=lambda s: None).fetch_all(
                [Download(RemoteFile("bench.bin", size), resolve)], work, UNLIMITED)
            (work / "bench.bin").unlink()
            again = fake.bytes_served - size
            print(f"refetched, {size_mb} MiB, {name}: {again} bytes ({100 * again / size:.4f}%)")


def rss_child(info: dict, dest: str) -> None:
    """A fresh process: the cookie route fetches the whole share; prints VmHWM in KiB."""
    settings = load_settings(environ={"INTAKE_HOST_MAP": info["host_map"], "INTAKE_NETDISK_ROUTE": "cookie",
                                      "INTAKE_BAIDU_COOKIE": info["cookie"], "INTAKE_DATA_DIR": dest})
    fetched = make_fetchers(settings)["baidu"].fetch(Link("baidu", info["share"], "ab12"), Path(dest) / "m",
                                                     UNLIMITED, key="bench")
    assert len(fetched.files) == 1 and not fetched.findings, fetched
    status = Path("/proc/self/status").read_text()
    print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


def peak_rss(gigabytes: float, work: Path) -> None:
    process, info = start_server(size=int(gigabytes * 1024 * MIB))
    try:
        began = time.perf_counter()
        child = subprocess.run([sys.executable, __file__, "--rss-child", json.dumps(info), str(work)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        took = time.perf_counter() - began
    finally:
        stop_server(process)
    if child.returncode:
        raise SystemExit(child.stderr)
    print(f"peak RSS, cookie route fetching a {gigabytes:g} GiB share in a fresh process: "
          f"{int(child.stdout.split()[-1]) / 1024:.0f} MiB (took {took:.1f} s)")


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        return serve(sys.argv[2], int(sys.argv[3]))
    if sys.argv[1:2] == ["--rss-child"]:
        return rss_child(json.loads(sys.argv[2]), sys.argv[3])
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss-gb", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netdisk-bench-") as folder:
        work = Path(folder)
        throughput(args.size_mb, args.runs, work)
        refetched(min(args.size_mb, 512), work)
        peak_rss(args.rss_gb, work)


if __name__ == "__main__":
    main()
