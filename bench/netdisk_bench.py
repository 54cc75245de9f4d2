"""Benchmark: downloading linked packages from the loopback file host.

- throughput: intake's downloader (50 MiB ranges, 1 MiB writes, md5 while writing, size
  check) against curl fetching the same file from the same fake file host, which runs in
  a process of its own; the two alternate, best and median of each reported.
- refetched after a cut: bytes the file host sent twice when the connection drops
  mid-file, and when the link expires mid-file (resolved again, resumed).
- peak RSS: a fresh process that fetches a 2 GiB share through the cookie route
  (verify, list, transfer, locatedownload, download) from the fake in another process;
  VmHWM of that process.
- the daemon's peak RSS: `intake poll --once` over a real Dovecot fetching, unpacking and
  judging a 2 GiB linked package (bench/netdisk_daemon_bench.py), the poll and its judging
  child apart.

    .venv/bin/python bench/netdisk_bench.py [--size-mb 1024] [--runs 3] [--rss-gb 2]
        [--only throughput,refetched,rss,daemon]
"""

from __future__ import annotations

import argparse
import hashlib
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
from intake.fetchers import download  # noqa: E402
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


class _UncheckedMd5:
    """The "no hash" side: intake's loop with the md5 left out (the digest the host
    announced is handed back), to show what the hash costs. Never used outside this bench."""

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def update(self, block: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def hexdigest(self) -> str:
        return self.digest


def intake_unhashed(info: dict, size: int, dest: Path) -> float:
    real = download.BackgroundMd5
    download.BackgroundMd5 = lambda: _UncheckedMd5(info["md5"])  # type: ignore[assignment,misc,return-value]
    try:
        return intake_download(info, size, dest)
    finally:
        download.BackgroundMd5 = real  # type: ignore[misc]


def md5_alone(size: int) -> float:
    """CPU seconds hashlib's md5 (OpenSSL) takes over ``size`` bytes in memory, 1 MiB at a
    time: the ceiling of any download that checks the md5 (one stream's md5 cannot be split
    across cores). CPU time, not wall time: on a loaded machine the scheduler gives the one
    thread a share of a core, and the figure would say more about the load than the hash."""
    block, digest = os.urandom(MIB), hashlib.md5()
    began = time.thread_time()
    for _ in range(size // MIB):
        digest.update(block)
    return time.thread_time() - began


def throughput(size_mb: int, runs: int, work: Path) -> None:
    source = work / "source.bin"
    with source.open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(MIB))
    process, info = start_server(str(source))
    size = size_mb * MIB
    sides: dict[str, list[float]] = {"curl": [], "curl | tee | md5sum": [], "intake": [],
                                     "intake without the md5": [], "md5 alone (per CPU second)": []}
    try:
        curl_download(info, work)  # warm the page cache and the server
        for _ in range(runs):  # the sides alternate: the machine's load falls on each alike
            sides["curl"].append(curl_download(info, work))
            sides["curl | tee | md5sum"].append(curl_md5_download(info, work))
            sides["intake"].append(intake_download(info, size, work))
            sides["intake without the md5"].append(intake_unhashed(info, size, work))
            sides["md5 alone (per CPU second)"].append(md5_alone(size))
    finally:
        stop_server(process)
        source.unlink()
    best = {name: size / MIB / min(times) for name, times in sides.items()}
    median = {name: size / MIB / statistics.median(times) for name, times in sides.items()}
    print(f"throughput, {size_mb} MiB, {runs} alternating runs each, MiB/s best (median):")
    for name in sides:
        print(f"  {name:<34} {best[name]:6.0f} ({median[name]:.0f})")
    for name in ("intake", "intake without the md5", "md5 alone (per CPU second)"):
        print(f"  {name} / curl: {best[name] / best['curl']:.2f}x ({median[name] / median['curl']:.2f}x)")
    print(f"  intake / curl | tee | md5sum: {best['intake'] / best['curl | tee | md5sum']:.2f}x "
          f"({median['intake'] / median['curl | tee | md5sum']:.2f}x)", flush=True)


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
    parser.add_argument("--only", default="throughput,refetched,rss,daemon",
                        help="comma-separated parts: throughput, refetched, rss, daemon")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="netdisk-bench-") as folder:
        work = Path(folder)
        if "throughput" in parts:
            throughput(args.size_mb, args.runs, work)
        if "refetched" in parts:
            refetched(min(args.size_mb, 512), work)
        if "rss" in parts:
            peak_rss(args.rss_gb, work)
    if "daemon" in parts:
        import netdisk_daemon_bench  # bench/, beside this file; not before: the RSS child imports this module
        print(netdisk_daemon_bench.measure(args.rss_gb), flush=True)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
