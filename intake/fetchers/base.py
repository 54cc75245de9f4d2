"""What every fetcher shares: the records it returns, the interface the daemon calls, and
the errors that tell the sender's problems from ours.

- The sender's problem (a wrong code, a dead share, the blocked-content stand-in) comes
  back as a finding in ``Fetched.findings``: the reply tells the sender at once.
- Ours (network, rate limits, risk control, dead credentials, disk) raises
  ``TransientError`` with a ``retry_after``: the message stays in ``fetching``.
- What only staff can settle (no account configured, a cap exceeded, a configuration
  error Baidu reports) raises ``NeedsStaff`` (a ``PermanentError``) carrying the listing.
"""

from __future__ import annotations

import logging
import posixpath
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from intake.kernel.errors import IntakeError, PermanentError, TransientError
from intake.kernel.findings import Finding
from intake.parsers.links import Link

GIB = 1024 ** 3


@dataclass
class RemoteFile:
    """What a share lists."""
    path: str  # relative path inside the share, '/'-separated, sanitised
    size: int
    md5_hint: str | None = None  # Baidu's listing md5: not the data's md5 since ~2023; never checked


@dataclass
class Fetched:
    files: list[Path]  # downloaded into dest, relative layout kept
    listing: list[RemoteFile]  # for staff, also when nothing could be downloaded
    findings: list[Finding] = field(default_factory=list)  # the sender's problems


@dataclass
class DownloadLimits:
    max_total_bytes: int = 20 * GIB  # INTAKE_DOWNLOAD_MAX_GB: one message's linked files
    reserve_bytes: int = 5 * GIB  # INTAKE_DISK_RESERVE_GB: free space left after the download

    @classmethod
    def from_gb(cls, max_total_gb: float, reserve_gb: float) -> DownloadLimits:
        return cls(int(max_total_gb * GIB), int(reserve_gb * GIB))


@dataclass(frozen=True)
class ProgressEvent:
    path: str  # the file's path inside the share
    done: int  # bytes on disk
    total: int | None
    finished: bool = False  # the file is complete and checked (the daemon logs one line then)


Progress = Callable[[ProgressEvent], None]


def log_each_file(log: logging.Logger) -> Progress:
    """The daemon's progress hook: one line per file, when it is complete and checked
    (``intake check`` draws a bar from the same events instead)."""
    def report(event: ProgressEvent) -> None:
        if event.finished:
            log.info("fetched %s (%d bytes)", event.path, event.done)
    return report


class Fetcher(Protocol):
    provider: str  # 'baidu' | 'netease' | 'qq'

    def fetch(self, link: Link, dest: Path, limits: DownloadLimits,
              progress: Progress | None = None, *, key: str | None = None) -> Fetched:
        """Download what ``link`` shares into ``dest``. ``key`` names the message (its
        receipt): the account folder a transfer goes to is derived from it, so that a
        retry finds its own earlier transfer instead of making a second one."""
        ...


class NeedsStaff(PermanentError):
    """Only staff can settle it; the listing (maybe empty) is kept for them."""

    def __init__(self, message: str, listing: list[RemoteFile] | None = None) -> None:
        super().__init__(message)
        self.listing = listing or []


class NoAccount(NeedsStaff):
    """The ``probe`` route found a valid link and code but has no account to download
    with: the wiring records link.fetch_failed (needs_review) and keeps the listing."""


class DownloadTooLarge(NeedsStaff):
    """The share holds more than INTAKE_DOWNLOAD_MAX_GB. Not a finding: the notice sets no
    size limit the sender broke; staff raise the cap or fetch it by hand."""


class NetworkError(TransientError):
    """A connection failed, timed out or was cut."""


NETWORK_RETRY = 120.0  # seconds: the daemon's next attempt after a network failure


class SenderProblem(IntakeError):
    """Raised inside a route, returned as a finding by ``fetch``."""

    code = "link.unavailable"


class WrongCode(SenderProblem):
    code = "link.code_wrong"


class LinkGone(SenderProblem):
    code = "link.unavailable"


def finding_for(problem: SenderProblem) -> Finding:
    return Finding(problem.code, str(problem))


def sanitise(path: str) -> str:
    """A share's path made safe as a relative path: no root, no '..', no control
    characters or characters Windows refuses; '/'-separated."""
    text = unicodedata.normalize("NFC", path.replace("\\", "/"))
    parts = []
    for part in posixpath.normpath("/" + text).split("/"):
        part = re.sub(r'[\x00-\x1f\x7f<>:"|?*]', "_", part).strip().rstrip(".")
        if part and part not in (".", ".."):
            parts.append(part[:200])
    return "/".join(parts) or "unnamed"
