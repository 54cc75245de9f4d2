"""`intake check FILE.eml` fetches the message's links as the daemon would, once, before
judging: with an account route (cookie, openapi) the files are downloaded and judged
with the attachments; with the probe route each Baidu link and its code are checked (a
valid one is ``link.fetch_failed``, needs_review, with its listing printed for staff).
A failure on our side is ``link.fetch_failed`` at once (the command does not wait to
retry). A progress bar (rich) goes to a terminal's stderr; nothing extra when piped.
"""

from __future__ import annotations

import dataclasses
import mmap
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from intake.budgeted import message_links_within
from intake.fetchers import download_limits, make_fetchers
from intake.fetchers.base import ProgressEvent
from intake.fetchers.message import DISABLED, failed, fetch_now
from intake.kernel.fetched import FAILED, LATE, FetchedPackage, LinkFetch
from intake.kernel.judges import JudgingChild
from intake.kernel.policy import Policy, is_late
from intake.kernel.report import Report
from intake.parsers.message_links import message_links
from intake.settings import Settings

if TYPE_CHECKING:  # typing only: rich is imported when a bar is drawn
    from rich.progress import TaskID

MIB = 1024 * 1024


def fetch_for_check(path: Path, settings: Settings, policy: Policy, received_at: datetime | None,
                    root: Path, judges: JudgingChild | None = None) -> FetchedPackage | None:
    """The message's links fetched into ``root``; None when it has none to fetch (or
    reading them ran over the budget: the judgement says so). With ``judges``, the links
    are read in its child under the policy's budget, which keeps the parsed message for
    the judgement that follows (as the daemon does)."""
    if judges is not None:
        read = message_links_within(path, policy, judges, received_at)
        if isinstance(read, Report):
            return None
        found = read
    else:
        with open(path, "rb") as fh:
            if path.stat().st_size == 0:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as raw:
                found = message_links(raw)
    links = [] if found.ignored else found.fetchable()
    if not links:
        return None
    moment = received_at or found.moment
    if moment is not None and is_late(moment, policy):  # void whatever it links to: nothing fetched
        return FetchedPackage(root, {n: LinkFetch(link.provider, link.url, LATE) for n, link in links})
    if not settings.fetch_links:
        return FetchedPackage(root, {n: failed(link, DISABLED) for n, link in links})
    fetchers = make_fetchers(settings)  # a route without its settings: one line naming them (exit 2)
    probe = make_fetchers(dataclasses.replace(settings, netdisk_route="probe"))["baidu"]
    cap = policy.archive.max_total_bytes
    if not sys.stderr.isatty():
        return fetch_now(fetchers, links, root, download_limits(settings), package_cap=cap, probe=probe)
    with _Bar() as bar:
        return fetch_now(fetchers, links, root, download_limits(settings), bar.progress, package_cap=cap, probe=probe)


class _Bar:
    """One rich progress bar per file, on stderr."""

    def __enter__(self) -> _Bar:
        # imported here: rich is only needed on a terminal
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress as Bars, TransferSpeedColumn

        self.bars = Bars("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                         TransferSpeedColumn(), console=Console(stderr=True), transient=False)
        self.tasks: dict[str, TaskID] = {}
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def progress(self, event: ProgressEvent) -> None:
        task = self.tasks.get(event.path)
        if task is None:
            task = self.tasks[event.path] = self.bars.add_task(event.path, total=event.total)
        self.bars.update(task, completed=event.done, total=event.total)


def listing_text(fetched: FetchedPackage | None) -> str:
    """For a person: what each link that could not be fetched holds (names, sizes)."""
    lines: list[str] = []
    for link in fetched.of(FAILED) if fetched else []:
        if link.listing:
            lines += ["", f"链接 {link.url} 中的文件（供工作人员核对，共 {len(link.listing)} 个）："]
            lines += [f"  · {name}（{size / MIB:.1f} MB）" for name, size in link.listing]
    return "\n".join(lines) + ("\n" if lines else "")
