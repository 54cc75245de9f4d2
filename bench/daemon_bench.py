"""Benchmark: the daemon, from a real IMAP server (Dovecot behind the 163-like proxy) to
judged, against the floor; and peak memory for one message with a 45 MB attachment.

- intake: `poll` + `Worker.drain` on N one-project messages (SQLite, replies to the outbox).
- floor: the same FETCH (BODY.PEEK[] in batches) plus the same unpacking and parsing
  (email parse, unzip, MediaInfo, python-docx, openpyxl) in one plain loop.
- peak RSS of `intake poll --once` (a fresh process) on a Maildir holding one message
  whose attachment is 45 MB.

    .venv/bin/python bench/daemon_bench.py [--messages 500]
"""

from __future__ import annotations

import argparse
import email
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake.sources import deliver_to_maildir  # noqa: E402
from intake.samples import make_form, make_project, make_scan, zip_folder  # noqa: E402
from tests.conftest import daemon_settings, simple_mail  # noqa: E402
from tests.imap_server import PASSWORD, USER, Dovecot, Proxy163  # noqa: E402

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)


def one_project_zip(work: Path) -> bytes:
    root = work / "pkg"
    make_form(root / "报送表.docx", courses=["课程甲"])
    make_scan(root / "报送表.pdf")
    make_project(root / "课程甲", "材料")
    return zip_folder(root, io.BytesIO(), zipfile.ZIP_STORED).getvalue()


def floor(proxy_port: int, work: Path) -> int:
    import docx
    import openpyxl
    from imapclient import IMAPClient
    from pymediainfo import MediaInfo

    client = IMAPClient("127.0.0.1", port=proxy_port, ssl=False, timeout=60)
    client.login(USER, PASSWORD)
    client.id_({"name": "floor"})
    client.select_folder("INBOX", readonly=True)
    uids = sorted(client.search(["UID", "1:*"]))
    count = 0
    for start in range(0, len(uids), 50):
        for uid, item in client.fetch(uids[start:start + 50], ["BODY.PEEK[]", "INTERNALDATE"]).items():
            message = email.message_from_bytes(item[b"BODY[]"])
            for part in message.walk():
                if part.get_filename():
                    with zipfile.ZipFile(io.BytesIO(part.get_payload(decode=True))) as bundle:
                        out = work / f"floor-{uid}"
                        bundle.extractall(out)
                    for path in out.rglob("*"):
                        if path.suffix == ".mp4":
                            MediaInfo.parse(str(path))
                        elif path.suffix == ".docx":
                            docx.Document(str(path))
                        elif path.suffix == ".xlsx":
                            openpyxl.load_workbook(str(path), data_only=True).close()
            count += 1
    client.logout()
    return count


def daemon(proxy_port: int, work: Path) -> int:
    from intake.daemon.ledger import poll
    from intake.daemon.worker import Worker
    from intake.sources import ImapSource
    from intake.service import open_service

    settings = daemon_settings(work, None, imap_host="127.0.0.1", imap_port=proxy_port, imap_ssl=False,
                               imap_user=USER, imap_password=PASSWORD)
    service = open_service(settings)
    poll(settings, service.Session, lambda: ImapSource(settings))
    return Worker(settings, service.Session, service.policy).drain()


def peak_rss_45mb(work: Path) -> float:
    folder = work / "big-maildir"
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("课程甲/材料.mp4", os.urandom(45 << 20))
    deliver_to_maildir(folder, simple_mail(1, attachments={"大附件.zip": payload.getvalue()}), ON_TIME)
    env = {**os.environ, "INTAKE_DATA_DIR": str(work / "big-data"), "INTAKE_MAILDIR": str(folder),
           "PYTHONPATH": str(ROOT)}
    # VmHWM of the daemon's own process: ru_maxrss would count this (large) benchmark
    # process too, since a forked child inherits its parent's high-water mark
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "poll", "--once"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak = max(peak, int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))))
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.02)
    assert process.returncode == 0
    return peak / 1024  # KiB -> MiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = one_project_zip(work)
        server = Dovecot()
        server.start()
        proxy = Proxy163(server.port)
        try:
            client = server.client()
            for n in range(args.messages):
                client.append("INBOX", simple_mail(n, attachments={"材料.zip": package}), msg_time=ON_TIME)
            client.logout()
            start = time.perf_counter()
            assert floor(proxy.port, work) == args.messages
            floor_s = time.perf_counter() - start
            start = time.perf_counter()
            assert daemon(proxy.port, work) == args.messages
            intake_s = time.perf_counter() - start
        finally:
            proxy.close()
            server.remove()
        rss = peak_rss_45mb(work)
    print(f"{args.messages} one-project messages from Dovecot (163-like proxy) to judged")
    print(f"floor (FETCH + unzip + MediaInfo/python-docx/openpyxl, one loop): {args.messages / floor_s:6.1f} msg/s")
    print(f"intake (poll + judge + record + reply, SQLite):                  {args.messages / intake_s:6.1f} msg/s")
    print(f"ratio: {intake_s / floor_s:.2f}x the floor's time (target <= 1.3x)")
    print(f"peak RSS, `intake poll --once` on one message with a 45 MB attachment: {rss:.0f} MiB (target <= 150)")


if __name__ == "__main__":
    main()
