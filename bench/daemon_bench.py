"""Benchmark: the daemon, from a real IMAP server (Dovecot behind the 163-like proxy) to
judged, against the floor; and peak memory over IMAP for one large message.

- intake: `poll` + `Worker.drain` on N one-project messages (SQLite, replies to the outbox).
- floor: the same FETCH (BODY.PEEK[] in batches) plus the same unpacking and parsing
  (email parse, unzip, MediaInfo, python-docx, openpyxl) in one plain loop.
- peak RSS of `intake poll --once` (a fresh process) over IMAP for one message of 8 MiB,
  one with a 45 MB attachment and one of 400 MiB, and of the processes below it
  (bench/imap_memory_bench.py).

    .venv/bin/python bench/daemon_bench.py [--messages 500] [--memory-only]
"""

from __future__ import annotations

import argparse
import email
import io
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake.samples import make_form, make_project, make_scan, zip_folder  # noqa: E402
from tests.conftest import daemon_settings, simple_mail  # noqa: E402
from tests.imap_server import PASSWORD, USER, Dovecot, Proxy163  # noqa: E402

import imap_memory_bench  # noqa: E402  (bench/, beside this file)

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--memory-only", action="store_true", help="only the peak RSS over IMAP")
    args = parser.parse_args()
    if args.memory_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(imap_memory_bench.table(imap_memory_bench.measure_all(Path(tmp), maildir=False)))
        return
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
        memory = imap_memory_bench.measure_all(work / "memory", maildir=False)
    print(f"{args.messages} one-project messages from Dovecot (163-like proxy) to judged")
    print(f"floor (FETCH + unzip + MediaInfo/python-docx/openpyxl, one loop): {args.messages / floor_s:6.1f} msg/s")
    print(f"intake (poll + judge + record + reply, SQLite):                  {args.messages / intake_s:6.1f} msg/s")
    print(f"ratio: {intake_s / floor_s:.2f}x the floor's time (target <= 1.3x)")
    print(imap_memory_bench.table(memory))


if __name__ == "__main__":
    main()
