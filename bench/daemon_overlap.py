"""Benchmark: how much of the daemon's own work overlaps its judging child's (issue #13).

One drain over N of daemon_bench.py's one-project messages from a Maildir (SQLite). The
daemon's main-thread CPU (time.thread_time, which other processes' load inflates far less
than wall time) is split into what it spends while the judging child is idle (the serial
part of a message: the child waits for it) and while the child works on a judgement or a
link reading (overlapped); and how much of the drain's wall time the child is busy.

    .venv/bin/python bench/daemon_overlap.py [--messages 60]
"""

from __future__ import annotations

import argparse
import mailbox
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import intake.kernel.judges as judges  # noqa: E402
from tests.conftest import daemon_settings, simple_mail  # noqa: E402

from daemon_bench import one_project_zip  # noqa: E402  (bench/, beside this file)


class ChildClock:
    """The daemon's CPU and the child's busy wall time, split at each hand-over to the
    child and each answer taken from it."""

    def __init__(self) -> None:
        self.busy = False
        self.cpu_mark, self.wall_mark = time.thread_time(), time.perf_counter()
        self.idle_cpu = self.busy_cpu = self.busy_wall = 0.0

    def flip(self, busy: bool) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        if self.busy:
            self.busy_cpu += cpu - self.cpu_mark
            self.busy_wall += wall - self.wall_mark
        else:
            self.idle_cpu += cpu - self.cpu_mark
        self.cpu_mark, self.wall_mark, self.busy = cpu, wall, busy


def watch(clock: ChildClock) -> None:
    """Tell the clock when the child takes a job and when its answer is taken (before the
    pipelined worker, the answer was taken inside ``_run``)."""
    child = judges.JudgingChild
    hand_over = child._hand_over
    answer_name = "_outcome" if hasattr(child, "_outcome") else "_run"
    answer = getattr(child, answer_name)

    def handed(self: judges.JudgingChild, *args: Any) -> Any:
        conn = hand_over(self, *args)
        clock.flip(True)
        return conn

    def answered(self: judges.JudgingChild, *args: Any) -> Any:
        try:
            return answer(self, *args)
        finally:
            clock.flip(False)

    setattr(child, "_hand_over", handed)
    setattr(child, answer_name, answered)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=60)
    n = parser.parse_args().messages
    from intake.daemon.ledger import poll
    from intake.daemon.worker import Worker
    from intake.service import open_service
    from intake.sources.maildir import MaildirSource

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = one_project_zip(work)
        folder = mailbox.Maildir(work / "Maildir", create=True)
        for i in range(n):
            folder.add(simple_mail(i, attachments={"材料.zip": package}, date="Tue, 30 Jul 2024 12:00:00 +0800"))
        settings = daemon_settings(work, None, maildir=work / "Maildir")
        service = open_service(settings)
        poll(settings, service.Session, lambda: MaildirSource(work / "Maildir"))
        worker = Worker(settings, service.Session, service.policy)
        clock = ChildClock()
        watch(clock)
        start = time.perf_counter()
        done = worker._work_queue(lambda: False)
        clock.flip(False)
        wall = time.perf_counter() - start
        worker.judges.close()
        service.engine.dispose()
    per = 1000 / done
    print(f"{done} messages, load average {os.getloadavg()[0]:.1f}: the daemon's CPU while its judging child is "
          f"idle {clock.idle_cpu * per:.1f} ms a message, while it works {clock.busy_cpu * per:.1f} ms; "
          f"the child busy {clock.busy_wall * per:.1f} ms of {wall * per:.1f} ms wall a message")


if __name__ == "__main__":
    main()
