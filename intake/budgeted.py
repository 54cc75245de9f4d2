"""The core's two entry points, each judged in a child process under the policy's
budget (``intake.kernel.budget``): what the CLI and the daemon call, so that `intake
check` and the daemon judge alike and neither can be taken down by one package."""

from __future__ import annotations

import mmap
from datetime import datetime
from pathlib import Path

import intake.core as core
from intake.kernel.budget import within
from intake.kernel.fetched import FetchedPackage
from intake.kernel.judges import JudgingChild
from intake.kernel.policy import Policy, is_late
from intake.kernel.report import Report


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


def _check_stored_message(raw_path: Path, policy: Policy, received_at: datetime | None,
                          workdir: Path | None, fetched: FetchedPackage | None) -> Report:
    with open(raw_path, "rb") as fh:
        if raw_path.stat().st_size == 0:
            return core.check_message(b"", policy, received_at, workdir, fetched)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as raw:  # no heap copy of large mail
            return core.check_message(raw, policy, received_at, workdir, fetched)


def _with_lateness(report: Report, policy: Policy, received_at: datetime | None) -> Report:
    """A report cut short by its budget still says when a message came too late."""
    too_complex = any(f.code == "package.too_complex" for f in report.findings)
    if too_complex and received_at is not None and is_late(received_at, policy):
        report.findings.insert(0, core.late_finding(received_at, policy))
    return report
