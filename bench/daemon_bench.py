"""Benchmark: the daemon, from a real IMAP server (Dovecot behind the 163-like proxy) to
judged, against the floor; and peak memory over IMAP for one large message.

- intake: `poll` + `Worker.drain` on N one-project messages (SQLite, replies to the outbox),
  each run with a fresh data folder and database.
- floor: the same FETCH (BODY.PEEK[] in batches) plus the same unpacking and parsing
  (email parse, unzip, MediaInfo, python-docx, openpyxl) in one plain loop.
- the two alternate (--runs each, default 3): best and median of each, and their ratios.
- the idle poll: `poll` when nothing is new, timed (median of 20) and its IMAP commands
  as the 163-like proxy saw them.
- peak RSS of `intake poll --once` (a fresh process) over IMAP for one message of 8 MiB,
  one with a 45 MB attachment and one of 400 MiB, and of the processes below it
  (bench/imap_memory_bench.py).

    .venv/bin/python bench/daemon_bench.py [--messages 500] [--runs 3] [--memory-only] [--no-memory]
"""

from __future__ import annotations

import argparse
import email
import io
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
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


def daemon(proxy_port: int, work: Path) -> tuple[int, int]:
    """Messages judged, and how many judging children were forked for them."""
    from intake.daemon.ledger import poll
    from intake.daemon.worker import Worker
    from intake.service import open_service
    from intake.sources import ImapSource

    settings = _settings(proxy_port, work)
    service = open_service(settings)
    poll(settings, service.Session, lambda: ImapSource(settings))
    worker = Worker(settings, service.Session, service.policy)
    done = worker.drain()
    service.engine.dispose()
    return done, getattr(getattr(worker, "judges", None), "forks", done)


def idle_poll(proxy: Proxy163, work: Path, polls: int = 20) -> tuple[float, list[str]]:
    """Median seconds of a poll that finds nothing new (after a run fetched everything),
    and the IMAP commands of one such poll."""
    from intake.daemon.ledger import poll
    from intake.service import open_service
    from intake.sources import ImapSource

    settings = _settings(proxy.port, work)
    service = open_service(settings)
    times = []
    for _ in range(polls):
        start = time.perf_counter()
        assert poll(settings, service.Session, lambda: ImapSource(settings)) == 0
        times.append(time.perf_counter() - start)
    service.engine.dispose()
    return statistics.median(times), proxy.sessions[-1]["commands"]


def _settings(proxy_port: int, work: Path):  # -> Settings (tests' helper, untyped)
    return daemon_settings(work, None, imap_host="127.0.0.1", imap_port=proxy_port, imap_ssl=False,
                           imap_user=USER, imap_password=PASSWORD)


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of floor and intake")
    parser.add_argument("--memory-only", action="store_true", help="only the peak RSS over IMAP")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak RSS over IMAP")
    args = parser.parse_args()
    if args.memory_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(imap_memory_bench.table(imap_memory_bench.measure_all(Path(tmp), maildir=False)))
        return
    n = args.messages
    floors: list[float] = []
    intakes: list[float] = []
    forks: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = one_project_zip(work)
        server = Dovecot()
        server.start()
        proxy = Proxy163(server.port)
        try:
            client = server.client()
            for i in range(n):
                client.append("INBOX", simple_mail(i, attachments={"材料.zip": package}), msg_time=ON_TIME)
            client.logout()
            for run in range(args.runs):
                floors.append(timed(lambda: _expect(floor(proxy.port, work / f"floor{run}"), n)))
                outcome: list[tuple[int, int]] = []
                intakes.append(timed(lambda: outcome.append(daemon(proxy.port, work / f"intake{run}"))))
                _expect(outcome[0][0], n)
                forks.append(outcome[0][1])
                print(f"run {run + 1}: floor {n / floors[-1]:5.1f} msg/s, intake {n / intakes[-1]:5.1f} msg/s "
                      f"({intakes[-1] / floors[-1]:.2f}x)", flush=True)
            idle_s, idle_commands = idle_poll(proxy, work / f"intake{args.runs - 1}")
        finally:
            proxy.close()
            server.remove()
        memory = None if args.no_memory else imap_memory_bench.measure_all(work / "memory", maildir=False)
    print(f"{n} one-project messages from Dovecot (163-like proxy) to judged, {args.runs} alternating runs")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")
    print("                                                     best      median")
    print(f"floor (FETCH + unzip + MediaInfo/docx/openpyxl): {n / min(floors):6.1f}    {n / statistics.median(floors):6.1f} msg/s")
    print(f"intake (poll + judge + record + reply, SQLite):  {n / min(intakes):6.1f}    {n / statistics.median(intakes):6.1f} msg/s")
    print(f"ratio (target <= 1.3x):                          {min(intakes) / min(floors):6.2f}x   "
          f"{statistics.median(intakes) / statistics.median(floors):6.2f}x the floor's time")
    print(f"judging children forked per run: {forks} for {n} messages")
    print(f"idle poll (nothing new): {idle_s * 1000:.1f} ms median of 20; IMAP commands: {' '.join(c.strip() for c in idle_commands)}")
    if memory is not None:
        print(imap_memory_bench.table(memory))


def _expect(got: int, wanted: int) -> None:
    if got != wanted:
        raise SystemExit(f"expected {wanted} messages, got {got}")


if __name__ == "__main__":
    main()
