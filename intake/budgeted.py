"""The core's two entry points, each judged in a child process under the policy's
budget (``intake.kernel.budget``): what the CLI and the daemon call, so that `intake
check` and the daemon judge alike and neither can be taken down by one package."""

from __future__ import annotations

import mmap
import os
from datetime import datetime
from pathlib import Path

import intake.core as core
from intake.kernel.budget import within
from intake.kernel.fetched import FetchedPackage
from intake.kernel.judges import JudgingChild, Pending
from intake.kernel.policy import Policy, is_late
from intake.kernel.report import Report
from intake.parsers.message_links import MessageLinks, message_links
from intake.parsers.messages import LoadedMessage, load_message


def check_package_within(path: Path, policy: Policy, received_at: datetime | None = None,
                         workdir: Path | None = None) -> Report:
    report = within(policy.budget, policy.name, received_at, core.check_package, path, policy, received_at, workdir)
    report.source = str(path)
    return _with_lateness(report, policy, received_at)


def check_message_within(raw_path: Path, policy: Policy, received_at: datetime | None = None,
                         workdir: Path | None = None, judges: JudgingChild | None = None,
                         fetched: FetchedPackage | None = None) -> Report:
    """Judge a stored message; the child maps the file itself (no copy through a pipe).
    With ``judges``, in its long-lived child (the daemon's), else in a fork of its own.
    ``fetched``: what its links brought (plain data: the outcomes and the folder's path)."""
    report = (judges.within if judges is not None else within)(policy.budget, policy.name, received_at, _check_stored_message, Path(raw_path), policy,
                    received_at, workdir, fetched)
    return _with_lateness(report, policy, received_at)


class MessageJudgement:
    """A stored message handed to the daemon's judging child (``submit_message``)."""

    def __init__(self, pending: Pending, policy: Policy, received_at: datetime | None) -> None:
        self._pending, self._policy, self._received_at = pending, policy, received_at

    def report(self) -> Report:
        """Wait for the judgement: as ``check_message_within`` returns it."""
        report = self._pending.result()
        if not isinstance(report, Report):
            raise TypeError(f"a judgement returned {type(report).__name__}, not a Report")
        return _with_lateness(report, self._policy, self._received_at)


def submit_message(raw_path: Path, policy: Policy, received_at: datetime | None, workdir: Path | None,
                   judges: JudgingChild, fetched: FetchedPackage | None = None) -> MessageJudgement:
    """``check_message_within`` in the judging child, returning once the child has taken
    it: the daemon saves the previous message meanwhile."""
    pending = judges.submit(policy.budget, policy.name, received_at, _check_stored_message, Path(raw_path), policy,
                            received_at, workdir, fetched)
    return MessageJudgement(pending, policy, received_at)


def message_links_within(raw_path: Path, policy: Policy, judges: JudgingChild,
                         received_at: datetime | None = None) -> MessageLinks | Report:
    """A stored message's links (the daemon's fetching stage), read in the judging child
    under the policy's budget, as the judgement reads the message: the sender's bytes are
    never parsed in the daemon itself, and the structure parsed here is kept in the
    child for the judgement of the same message that usually follows (one parse a
    message, not two). Over the budget: the message's judgement (package.too_complex),
    which judging it again would only repeat at the cost of a second budget."""
    found = judges.call(policy.budget, policy.name, received_at, _stored_links, Path(raw_path))
    if isinstance(found, Report):
        return _with_lateness(found, policy, received_at)
    if isinstance(found, MessageLinks):
        return found
    raise TypeError(f"reading links returned {type(found).__name__}")


# In the judging child: the structure of the message whose links were read last, by the
# stored file's identity; taken (and dropped) by that message's judgement.
_loaded: tuple[tuple[object, ...], LoadedMessage] | None = None


def _stored_links(raw_path: Path) -> MessageLinks:
    global _loaded
    _loaded = None
    with open(raw_path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if info.st_size == 0:
            return MessageLinks()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as raw:  # no heap copy of large mail
            loaded = load_message(raw)
            found = message_links(raw, loaded)
    _loaded = (_identity(raw_path, info), loaded)
    return found


def _check_stored_message(raw_path: Path, policy: Policy, received_at: datetime | None,
                          workdir: Path | None, fetched: FetchedPackage | None) -> Report:
    global _loaded
    kept, _loaded = _loaded, None  # used once at most: never held past its judgement
    with open(raw_path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if info.st_size == 0:
            return core.check_message(b"", policy, received_at, workdir, fetched)
        loaded = kept[1] if kept is not None and kept[0] == _identity(raw_path, info) else None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as raw:  # no heap copy of large mail
            return core.check_message(raw, policy, received_at, workdir, fetched, loaded)


def _identity(raw_path: Path, info: os.stat_result) -> tuple[object, ...]:
    """The stored file, as long as it is unchanged (stored messages never change)."""
    return (str(raw_path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _with_lateness(report: Report, policy: Policy, received_at: datetime | None) -> Report:
    """A report cut short by its budget still says when a message came too late."""
    too_complex = any(f.code == "package.too_complex" for f in report.findings)
    if too_complex and received_at is not None and is_late(received_at, policy):
        report.findings.insert(0, core.late_finding(received_at, policy))
    return report
