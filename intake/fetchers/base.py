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
import threading
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
    """One message's limits AND its running budget.

    CHANGED (review fix): the cap is per message, not per link. Make ONE object per
    message attempt (``intake.fetchers.download_limits(settings)``) and pass that same
    object to the ``fetch`` of every link of the message: each fetch checks the message's
    bytes so far plus its listing against ``max_total_bytes`` before it starts, and every
    byte written draws from ``used_bytes`` (sizes a host reveals only while sending
    are bounded too). A new object starts from nothing; do not share one between messages.
    """
    max_total_bytes: int = 20 * GIB  # INTAKE_DOWNLOAD_MAX_GB: one message's linked files
    reserve_bytes: int = 5 * GIB  # INTAKE_DISK_RESERVE_GB: free space left after the download
    used_bytes: int = field(default=0, compare=False)  # this message's bytes on disk so far
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def from_gb(cls, max_total_gb: float, reserve_gb: float) -> DownloadLimits:
        return cls(int(max_total_gb * GIB), int(reserve_gb * GIB))

    def check(self, more: int, listing: list[RemoteFile] | None = None) -> None:
        """DownloadTooLarge when ``more`` bytes on top of what is used would pass the cap."""
        with self._lock:
            total = self.used_bytes + more
        if total > self.max_total_bytes:
            raise too_large(total, self.max_total_bytes, listing)

    def draw(self, count: int) -> None:
        """``count`` bytes written (or found on disk) for this message."""
        with self._lock:
            self.used_bytes += count
            total = self.used_bytes
        if total > self.max_total_bytes:
            raise too_large(total, self.max_total_bytes, None)

    def give_back(self, count: int) -> None:
        """Bytes deleted again (a part file started over)."""
        with self._lock:
            self.used_bytes = max(self.used_bytes - count, 0)


def too_large(total: int, cap: int, listing: list[RemoteFile] | None) -> DownloadTooLarge:
    return DownloadTooLarge(
        f"链接中的文件共 {total / GIB:.2f} GB 以上，超过 INTAKE_DOWNLOAD_MAX_GB（{cap / GIB:g} GB）："
        "请工作人员调高该设置后重新处理，或手工下载", listing, total)


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
    """The message's linked files come to more than INTAKE_DOWNLOAD_MAX_GB. ``total``: the
    bytes known when the cap was passed (the listing's sum, or what was written). The
    wiring (``intake.fetchers.message``) makes it the sender's ``archive.too_large`` when
    ``total`` also passes the policy's own package limit, and a case for staff otherwise
    (the operator's cap is below what the policy allows)."""

    def __init__(self, message: str, listing: list[RemoteFile] | None = None, total: int = 0) -> None:
        super().__init__(message, listing)
        self.total = total


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


PARTS_DIR = ".intake-parts"  # unfinished downloads, beside the layout (dest/.intake-parts/)
NAME_BYTES = 240  # a name's UTF-8 bytes: ext4 allows 255; room for '.part' and ' (99)'
PATH_BYTES = 3000  # a whole relative path (PATH_MAX is 4096 with the destination folder)
MAX_DEPTH = 32  # folders deeper than this are flattened into the last one kept


def cut_name(name: str, limit: int = NAME_BYTES) -> str:
    """A name cut to ``limit`` bytes of UTF-8, never inside a character, its extension kept."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode("utf-8")) > 16:
        stem, extension = name, ""
    tail = f".{extension}" if extension else ""
    budget = limit - len(tail.encode("utf-8"))
    return (stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" .") or "_") + tail


def numbered(name: str, number: int) -> str:
    """'v.mp4' -> 'v (2).mp4': a second file that would land on the same path."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    tail = f" ({number})" + (f".{extension}" if extension else "")
    return cut_name(stem, NAME_BYTES - len(tail.encode("utf-8"))) + tail


def sanitise(path: str) -> str:
    """A share's path made safe as a relative path: no root, no '..', no control
    characters or characters Windows refuses; each name at most NAME_BYTES of UTF-8
    (extension kept), at most MAX_DEPTH deep and PATH_BYTES long; '/'-separated."""
    text = unicodedata.normalize("NFC", path.replace("\\", "/"))
    parts = []
    for part in posixpath.normpath("/" + text).split("/"):
        part = re.sub(r'[\x00-\x1f\x7f<>:"|?*]', "_", part).strip().rstrip(".")
        if part and part not in (".", ".."):
            parts.append("_intake-parts" if part == PARTS_DIR else cut_name(part))
    if len(parts) > MAX_DEPTH:
        parts = parts[:MAX_DEPTH - 1] + parts[-1:]
    while len(parts) > 1 and len("/".join(parts).encode("utf-8")) > PATH_BYTES:
        del parts[-2]  # the deepest folder goes first: the file's own name is kept
    return "/".join(parts) or "unnamed"
