"""Benchmark: peak RSS of the real daemon while it fetches, unpacks and judges a large
Baidu-linked package (issue #12 §7: at most 150 MiB, nothing of a download held in memory).

- The package: a zip (stored, as large videos are sent) holding a valid one-project
  package: the stamped form and its scan, the document and question bank as the daemon's
  tests build them, and a real H.264 video made by ffmpeg, padded with a top-level MP4
  `free` box (which players and MediaInfo skip) to make the zip the size asked (2 GiB).
- The fake netdisk (pan.baidu.com, the file hosts) runs in a process of its own and serves
  the zip from disk as a share with an extraction code; the account is the cookie route's.
- A real Dovecot (behind the 163-like proxy) holds one message with the share's link and
  code, APPENDed with an INTERNALDATE before the deadline.
- `intake poll --once` runs as a subprocess (INTAKE_HOST_MAP to the fakes): it fetches the
  share, forks the judging child, which unpacks (7-Zip) and judges to a verdict. VmHWM of the
  poll and of every process below it is read from /proc every few milliseconds
  (``imap_memory_bench.watched``).
- A 64 MiB package is measured first the same way: a peak that does not grow with the
  package's size is the figure that matters (the poll's own floor is its imports).

    .venv/bin/python bench/netdisk_daemon_bench.py [--gb 2] [--route cookie|openapi]

bench/netdisk_bench.py runs this as its last part. Needs about 3x the package's size of
free disk (the zip, the download, the unpacked files); all of it is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from intake.samples import make_form, make_project, make_scan  # noqa: E402
from tests.fetching_support import COURSE, ON_TIME, mail  # noqa: E402
from tests.imap_server import PASSWORD, USER, Dovecot, Proxy163  # noqa: E402

from imap_memory_bench import watched  # noqa: E402  (bench/, beside this file)

MIB = 1 << 20
TARGET_MIB = 150
PACKAGE_NAME = "湖北省总工会报送材料.zip"
CODE = "ab12"
REFERENCE_MIB = 64  # the small package measured first


@dataclass
class DaemonFigures:
    package_mib: float
    poll_mib: float = 0.0
    children: dict[str, float] = field(default_factory=dict)  # role -> peak MiB
    seconds: float = 0.0
    verdict: str = "?"
    fetched: str = "?"


def pad_mp4(path: Path, extra: int) -> None:
    """Append a top-level `free` box of ``extra`` random bytes, written 8 MiB at a time."""
    size = extra + 8
    with open(path, "ab") as out:
        out.write(size.to_bytes(4, "big") + b"free")
        left = extra
        while left:
            piece = min(left, 8 * MIB)
            out.write(os.urandom(piece))
            left -= piece


def build_zip(work: Path, total_bytes: int) -> Path:
    """A valid one-project package as a stored zip of about ``total_bytes``."""
    root = work / "湖北省总工会"
    make_form(root / "附件5-报送表.docx", courses=[COURSE])
    make_scan(root / "附件5-报送表（盖章）.pdf")
    project = make_project(root / f"01-{COURSE}", COURSE)
    video = project / f"{COURSE}.mp4"
    others = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
    pad_mp4(video, max(0, total_bytes - others - 8 - 4096))  # 4096: the zip's own headers
    target = work / PACKAGE_NAME
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as bundle:
        for file in sorted(root.rglob("*")):
            if file.is_file():
                bundle.write(file, file.relative_to(root.parent).as_posix())
    shutil.rmtree(root)
    return target


def serve(package: str, route: str) -> None:
    """The fake netdisk's process: a share of the package; prints what the daemon needs,
    then serves until its stdin closes."""
    from tests.fakes import FakeNetdisk, FileContent

    with FakeNetdisk() as fake:
        share = fake.add_share({PACKAGE_NAME: FileContent(Path(package))}, CODE)
        account = fake.add_account()
        env = {"INTAKE_HOST_MAP": fake.host_map, "INTAKE_NETDISK_ROUTE": route}
        if route == "cookie":
            env["INTAKE_BAIDU_COOKIE"] = account.cookie
        else:
            app = fake.add_app()
            access, refresh = fake.issue_tokens(app, account)
            env.update(INTAKE_BAIDU_APP_KEY=app.app_key, INTAKE_BAIDU_SECRET_KEY=app.secret_key,
                       INTAKE_BAIDU_APP_ID=app.app_id)
            env["tokens"] = json.dumps([access, refresh])
        print(json.dumps({"share": share.url, "env": env}), flush=True)
        sys.stdin.read()


def _save_tokens(data_dir: Path, tokens: str) -> None:
    from intake.fetchers.tokens import TokenStore, Tokens

    access, refresh = json.loads(tokens)
    TokenStore.in_data_dir(data_dir).save(Tokens(access, refresh, time.time() + 30 * 86400, "basic,netdisk"))


def run_daemon(package: Path, work: Path, route: str = "cookie") -> DaemonFigures:
    figures = DaemonFigures(package.stat().st_size / MIB)
    fake = subprocess.Popen([sys.executable, __file__, "--serve", str(package), route], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    server = Dovecot()
    proxy = None
    try:
        assert fake.stdout is not None
        info = json.loads(fake.stdout.readline())
        server.start()
        proxy = Proxy163(server.port)
        client = server.client()
        text = f"链接: {info['share']} 提取码: {CODE} 复制这段内容后打开百度网盘手机App"
        client.append("INBOX", mail(1, text), msg_time=ON_TIME)
        client.logout()
        env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
        daemon_env = dict(info["env"])
        if "tokens" in daemon_env:
            _save_tokens(work / "data", daemon_env.pop("tokens"))
        env.update(daemon_env, PYTHONPATH=str(ROOT), INTAKE_DATA_DIR=str(work / "data"),
                   INTAKE_DATABASE_URL=f"sqlite:///{work / 'intake.sqlite3'}", INTAKE_DISK_RESERVE_GB="0",
                   INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(proxy.port), INTAKE_IMAP_SSL="false",
                   INTAKE_IMAP_USER=USER, INTAKE_IMAP_PASSWORD=PASSWORD)
        code, figures.poll_mib, figures.children, figures.seconds = watched(
            [sys.executable, "-m", "intake.cli", "poll", "--once"], env)
    finally:
        if proxy is not None:
            proxy.close()
        server.remove()
        if fake.stdin is not None:
            fake.stdin.close()
        try:
            fake.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fake.kill()
    if code == 0:
        _outcome(work, figures)
    else:
        figures.verdict = f"exit {code}"
    shutil.rmtree(work / "data", ignore_errors=True)
    return figures


def _outcome(work: Path, figures: DaemonFigures) -> None:
    with sqlite3.connect(work / "intake.sqlite3") as db:
        rows = db.execute("SELECT verdict, state, report FROM messages").fetchall()
    if len(rows) != 1:
        figures.verdict = f"{len(rows)} messages recorded"
        return
    verdict, state, report = rows[0]
    figures.verdict = f"{verdict} ({state})"
    links = (json.loads(report) if report else {}).get("fetch", [])
    figures.fetched = ", ".join(str(link.get("outcome")) for link in links) or "nothing"


def line(figures: DaemonFigures, route: str) -> str:
    others = ", ".join(f"{role} {mib:.0f}" for role, mib in sorted(figures.children.items())
                       if role != "judging child")
    return (f"peak RSS, `intake poll --once` fetching ({route} route), unpacking and judging a "
            f"{figures.package_mib:.0f} MiB linked package (target <= {TARGET_MIB} MiB): "
            f"poll {figures.poll_mib:.0f} MiB, judging child {figures.children.get('judging child', 0):.0f} MiB"
            f"{', ' + others if others else ''}; {figures.seconds:.1f} s; link {figures.fetched}; "
            f"verdict {figures.verdict}")


def measure(gigabytes: float, route: str = "cookie", reference_mib: int = REFERENCE_MIB) -> str:
    """The large package, and first a small one for reference: the same peak for both
    shows that nothing of a download (or of its unpacking) grows with its size."""
    lines = []
    for size in ([reference_mib * MIB] if reference_mib else []) + [int(gigabytes * 1024 * MIB)]:
        with tempfile.TemporaryDirectory(prefix="netdisk-daemon-bench-") as folder:
            work = Path(folder)
            package = build_zip(work, size)
            lines.append(line(run_daemon(package, work / "daemon", route), route))
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        return serve(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=2.0, help="size of the linked package in GiB")
    parser.add_argument("--route", choices=["cookie", "openapi"], default="cookie")
    parser.add_argument("--reference-mib", type=int, default=REFERENCE_MIB,
                        help="a small package measured first for comparison (0: none)")
    args = parser.parse_args()
    print(measure(args.gb, args.route, args.reference_mib))


if __name__ == "__main__":
    main()
