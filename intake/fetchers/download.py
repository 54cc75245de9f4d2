"""The shared downloader: streaming into a part file, resumable, checked.

- Ranges of at most 50 MiB (Baidu's file hosts throttle or refuse longer ones), read in
  chunks of at most 1 MiB straight to disk: nothing of a download is held in memory.
- A cut connection resumes from the bytes on disk; so does the next attempt after an
  error (the part file in ``dest/.intake-parts/`` stays, with a validator: see
  ``parts``). Each 206 must start where asked (``Content-Range``); nothing is written
  past the last byte asked for or the file's size (a host that sends more is refused).
- A size nobody announced (163/QQ) is learnt from the answers: a 200 ends at its end, a
  206 with total ``*`` only at a range shorter than asked (or 416).
- A link that expires mid-download (31360 in the body, or HTTP 403) is resolved again
  through the route's callback and the download goes on from the offset.
- The size is checked against the listing (or ``x-bs-file-size``/the range total); the
  md5 against ``Content-MD5``/``ETag`` when the host sends one, hashed while writing (a
  resumed file's existing bytes are hashed again by streaming them from disk). Baidu's
  listing md5 is not the data's md5, so it is never checked.
- The blocked-content stand-in ("温馨提示", 1749504 bytes) is ``link.unavailable``.
- Limits: the message's total is capped (``DownloadTooLarge``): before anything starts,
  and byte by byte against the message's budget (``DownloadLimits``); nothing starts
  when the free disk after the download would fall below the reserve, checked again
  when a size is first learnt and while a file of unknown size streams in
  (``TransientError``); each file has an overall deadline (a host that trickles);
  one download at a time per account (``AccountLock``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3

from intake.fetchers.base import (GIB, DownloadLimits, DownloadTooLarge, LinkGone, NetworkError, Progress,
                                  ProgressEvent, RemoteFile, SenderProblem)
from intake.fetchers.hashing import BackgroundMd5
from intake.fetchers.http import SERVER_RETRY, Http
from intake.fetchers.locks import AccountLock
from intake.fetchers.answers import (blocked, content_range, error_code, expected_md5, host_tag, refusal_body,
                                     sniff, stand_in)
from intake.fetchers.parts import forget, part_path, read_validator, unique_paths, write_validator
from intake.kernel.errors import ConfigError, TransientError

MIB = 1024 * 1024
CHUNK = MIB  # bytes read and written at a time
RANGE = 50 * MIB  # bytes asked for in one request
MAX_CUTS = 5  # consecutive cuts without a byte of progress before giving up for now
MAX_RESOLVES = 3  # consecutive expired links without progress
THROTTLED_RETRY = 1800.0  # 31326/31626: the account or address is throttled: 30 min
DISK_RETRY = 1800.0
DISK_CHECK = 16 * MIB  # a file of unknown size: free space looked at again this often
FILE_TIME = 1800.0  # seconds every file may take, plus its size at MIN_RATE
MIN_RATE = 64 * 1024  # bytes a second: a host slower than this over a whole file is given up on
UNKNOWN_SIZE_TIME = 6 * 3600.0  # the deadline of a file whose size is unknown


@dataclass
class Source:
    """Where a file can be fetched from now, with the headers the host demands."""
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Download:
    remote: RemoteFile
    resolve: Callable[[], Source]  # called first, and again when the link expired
    identity: str = ""  # what names the file at its source (Baidu's fs_id): a part of another is not resumed


class _Expired(Exception):
    """The link expired: resolve it again."""


class _Cut(Exception):
    """The connection broke mid-body."""


class _Changed(_Cut):
    """The host's file is not the one the part was downloaded from: started over."""


class _State:
    """One file's download: the part file, its hash and what the host told us."""

    def __init__(self, item: Download, dest: Path, rel: str, limits: DownloadLimits) -> None:
        self.item, self.target, self.part, self.limits = item, dest / rel, part_path(dest, rel), limits
        self.size: int | None = item.remote.size if item.remote.size > 0 else None
        self.md5 = BackgroundMd5()
        self.expected_md5: str | None = None
        self.pending = b""  # bytes read to see whether the answer was an error, but it was data
        self.source_tag = {"path": item.remote.path, "size": item.remote.size, "md5": item.remote.md5_hint,
                           "identity": item.identity}
        saved = read_validator(self.part) or {}
        self.offset = self.part.stat().st_size if self.part.exists() else 0
        self.host_tag: str | None = saved.get("host")
        if self.offset and ({k: saved.get(k) for k in self.source_tag} != self.source_tag
                            or self.size is not None and self.offset > self.size):
            self.restart()  # a part of another file, or of this one before it changed
        self.remember()
        if self.offset:
            limits.draw(self.offset)
            with self.part.open("rb") as existing:  # rehash what is on disk, streaming
                for block in iter(lambda: existing.read(CHUNK), b""):
                    self.md5.update(block)

    def remember(self) -> None:
        write_validator(self.part, {**self.source_tag, "host": self.host_tag})

    def restart(self) -> None:
        self.md5.close()
        self.part.unlink(missing_ok=True)
        self.limits.give_back(self.offset)
        self.offset, self.md5, self.host_tag = 0, BackgroundMd5(), None

    def host_says(self, tag: str | None) -> None:
        """The host's ETag/MD5 for the file: another one than the part's means it changed."""
        if tag is None or tag == self.host_tag:
            return
        if self.host_tag is not None and self.offset:
            self.restart()
            raise _Changed()
        self.host_tag = tag
        self.remember()

    @property
    def complete(self) -> bool:
        return self.size is not None and self.offset >= self.size


def preflight(listing: list[RemoteFile], dest: Path, limits: DownloadLimits) -> None:
    """Before anything is transferred or downloaded: the message's cap (what its other
    links used, plus this listing), then the disk."""
    limits.check(sum(remote.size for remote in listing), listing)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        remaining = 0
        for remote, rel in zip(listing, unique_paths([remote.path for remote in listing])):
            target, part = dest / rel, part_path(dest, rel)
            done = target.stat().st_size if target.exists() else part.stat().st_size if part.exists() else 0
            remaining += max(remote.size - done, 0)
        free = shutil.disk_usage(dest).free
    except OSError as err:
        raise _disk_error(dest, err) from None
    _check_reserve(free, remaining, dest, limits)


def _check_reserve(free: int, remaining: int, dest: Path, limits: DownloadLimits) -> None:
    if free - remaining < limits.reserve_bytes:
        raise TransientError(
            f"disk: {remaining / GIB:.2f} GB to download into {dest} would leave {(free - remaining) / GIB:.2f} GB "
            f"free, below INTAKE_DISK_RESERVE_GB ({limits.reserve_bytes / GIB:g} GB); free some space",
            retry_after=DISK_RETRY)


def _disk_error(path: Path, err: OSError) -> TransientError:
    return TransientError(f"disk: cannot write {path}: {err.strerror or err}", retry_after=DISK_RETRY)


class Downloader:
    def __init__(self, http: Http, lock: AccountLock | None = None, *, range_size: int = RANGE,
                 pause: Callable[[float], None] = time.sleep, min_rate: int = MIN_RATE) -> None:
        self.http, self.lock, self.range_size, self.pause = http, lock, range_size, pause
        self.min_rate = min_rate

    def fetch_all(self, items: list[Download], dest: Path, limits: DownloadLimits,
                  progress: Progress | None = None) -> tuple[list[Path], list[SenderProblem]]:
        """Every file into ``dest`` (layout kept, clashing names numbered); a file that
        turns out to be the blocked-content stand-in is left out and reported, the others
        still fetched. ``limits`` is the message's: every byte is drawn from it."""
        listing = [item.remote for item in items]
        preflight(listing, dest, limits)
        files: list[Path] = []
        problems: list[SenderProblem] = []
        with self.lock or _no_lock():
            for item, rel in zip(items, unique_paths([remote.path for remote in listing])):
                try:
                    files.append(self.fetch_one(item, dest, progress, rel=rel, limits=limits))
                except LinkGone as problem:
                    problems.append(problem)
                except DownloadTooLarge as over:
                    over.listing = over.listing or listing
                    raise
        return files, problems

    def fetch_one(self, item: Download, dest: Path, progress: Progress | None = None, *,
                  rel: str | None = None, limits: DownloadLimits | None = None) -> Path:
        """One file into ``dest/rel`` (``rel`` defaults to its remote path)."""
        rel = rel or item.remote.path
        limits = limits if limits is not None else DownloadLimits(reserve_bytes=0)
        target = dest / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and target.stat().st_size == item.remote.size:
                limits.draw(item.remote.size)
                return target  # fetched and checked by an earlier attempt
            state = _State(item, dest, rel, limits)
        except OSError as err:
            raise _disk_error(target, err) from None
        try:
            return self._fetch(item, state, progress)
        except OSError as err:
            raise _disk_error(state.part, err) from None
        finally:
            state.md5.close()  # no hashing thread outlives the attempt

    def _fetch(self, item: Download, state: _State, progress: Progress | None) -> Path:
        report = progress or (lambda event: None)
        report(ProgressEvent(item.remote.path, state.offset, state.size))
        deadline = time.monotonic() + (FILE_TIME + state.size / self.min_rate if state.size else UNKNOWN_SIZE_TIME)
        source, cuts, resolves, resolved_at = item.resolve(), 0, 0, state.offset
        while not state.complete:
            before = state.offset
            try:
                self._fetch_range(source, state, report, deadline)
            except _Expired:
                # progress since the last resolve (a cut may have come in between) resets the count
                resolves = 0 if state.offset > resolved_at else resolves + 1
                if resolves >= MAX_RESOLVES:
                    raise TransientError(f"file host keeps refusing {item.remote.path} (expired link)",
                                         retry_after=SERVER_RETRY) from None
                source, resolved_at = item.resolve(), state.offset
            except _Cut:
                cuts = 0 if state.offset > before else cuts + 1
                if cuts >= MAX_CUTS:
                    raise NetworkError(f"file host: connection cut {cuts} times at byte {state.offset} of "
                                       f"{item.remote.path}; resuming at the next attempt",
                                       retry_after=SERVER_RETRY) from None
                self.pause(min(0.5 * 2 ** cuts, 8.0))
            _check_deadline(state, deadline)
        return self._finish(state, report)

    def _finish(self, state: _State, report: Progress) -> Path:
        size = state.part.stat().st_size if state.part.exists() else 0
        path = state.item.remote.path
        if state.size is not None and size != state.size:
            state.restart()
            raise TransientError(f"{path}: {size} bytes downloaded, {state.size} expected; downloading again",
                                 retry_after=SERVER_RETRY)
        digest = state.md5.hexdigest()
        if stand_in(size, digest, state.expected_md5, state.item.remote.md5_hint):
            state.restart()
            forget(state.part)
            raise blocked(path)
        if state.expected_md5 and digest != state.expected_md5:
            state.restart()
            raise TransientError(f"{path}: md5 {digest} differs from the file host's {state.expected_md5}; "
                                 "downloading again", retry_after=SERVER_RETRY)
        if not state.part.exists():
            state.part.touch()  # an empty file: nothing was written
        os.replace(state.part, state.target)
        forget(state.part)
        report(ProgressEvent(path, size, state.size, finished=True))
        return state.target

    def _fetch_range(self, source: Source, state: _State, report: Progress, deadline: float) -> None:
        first = state.offset
        last = first + self.range_size - 1
        if state.size is not None:
            last = min(last, state.size - 1)
        headers = {**source.headers, "Range": f"bytes={first}-{last}", "Accept-Encoding": "identity"}
        try:
            response = self.http.request("GET", source.url, headers=headers, cookies=source.cookies, stream=True)
        except NetworkError:
            raise _Cut() from None
        with response:
            end = self._accept(response, state, first, last)
            self._write(response, state, report, end, deadline)
        if state.offset == first and not state.complete:
            raise _Cut()  # an answer without a byte of the file counts as a cut: no endless loop

    def _accept(self, response: requests.Response, state: _State, first: int, last: int) -> int | None:
        """Check what the host answered before a byte of it is written; the offset no
        byte of this answer may pass (None: a 200 of a size nobody knows)."""
        status = response.status_code
        if status in (200, 206):
            if "json" in response.headers.get("Content-Type", ""):
                try:
                    body, whole = sniff(response)  # Baidu's hosts also say 31360 with a 200
                except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                    raise _Cut() from None
                if whole and error_code(body) is not None:
                    self._refused(error_code(body), status)
                state.pending = body  # never dropped: it is the file's first bytes
        elif status == 416:
            if state.size is None:
                state.size = first  # a size nobody announced: the file ends where the ranges ran out
            if first >= state.size:
                return first
            raise TransientError(f"file host: range from {first} refused (416) of a {state.size}-byte file",
                                 retry_after=SERVER_RETRY)
        elif 400 <= status < 500 and status != 429:
            self._refused(error_code(refusal_body(response)), status)
        elif status == 429 or status >= 500:
            raise TransientError(f"file host: HTTP {status}", retry_after=SERVER_RETRY if status >= 500 else 600.0)
        else:
            raise TransientError(f"file host: unexpected HTTP {status}", retry_after=SERVER_RETRY)
        state.expected_md5 = state.expected_md5 or expected_md5(response)
        announced = response.headers.get("x-bs-file-size")
        if stand_in(int(announced) if announced and announced.isdigit() else state.size, state.expected_md5):
            state.restart()
            raise blocked(state.item.remote.path)  # known from the headers: not a byte downloaded
        if status == 200:
            if first:
                state.restart()  # the host ignored Range: start over rather than append
            state.host_says(host_tag(response))
            length = response.headers.get("x-bs-file-size") or response.headers.get("Content-Length")
            self._learn_size(state, int(length) if length and length.isdigit() else None)
            return state.size
        found = content_range(response)
        if found is None or found[0] != first or found[1] < first - 1:
            raise TransientError(f"file host: asked for bytes from {first}, answered "
                                 f"{response.headers.get('Content-Range')!r}", retry_after=SERVER_RETRY)
        state.host_says(host_tag(response))
        size = response.headers.get("x-bs-file-size")
        total = int(size) if size and size.isdigit() else found[2]
        if total is None and found[1] < last:
            total = found[1] + 1  # no total, and a range shorter than asked: the file ends there
        self._learn_size(state, total)
        end = min(last, found[1]) + 1
        return min(end, state.size) if state.size is not None else end

    def _learn_size(self, state: _State, size: int | None) -> None:
        if size is None:
            return
        if state.size is not None and size != state.size:
            raise TransientError(f"{state.item.remote.path}: the share lists {state.size} bytes, the file host "
                                 f"serves {size}", retry_after=SERVER_RETRY)
        if state.size is None:  # first learnt now: the cap and the disk, before the bytes come
            state.limits.check(size - state.offset)
            free = shutil.disk_usage(state.part.parent).free
            _check_reserve(free, size - state.offset, state.part.parent, state.limits)
        state.size = size

    def _refused(self, code: int | None, status: int) -> None:
        if code in (31326, 31626):
            raise TransientError(f"file host: download throttled or blocked (error {code})",
                                 retry_after=THROTTLED_RETRY)
        if code == 31362:
            raise ConfigError(f"file host: sign error (31362): the User-Agent or cookie does not match the link; "
                              "check INTAKE_BAIDU_COOKIE")
        if code == 31360 or status == 403 or code is not None:
            raise _Expired()
        raise TransientError(f"file host: HTTP {status}", retry_after=SERVER_RETRY)

    def _write(self, response: requests.Response, state: _State, report: Progress, end: int | None,
               deadline: float) -> None:
        if response.status_code == 416:
            return
        first, state.pending = state.pending, b""
        unknown = state.size is None
        with state.part.open("ab") as out:
            try:
                for block in _chunks(response, first):
                    if end is not None and state.offset + len(block) > end:
                        state.restart()  # an answer longer than it said: none of it is trusted
                        raise TransientError(f"file host: sent more than the {end} bytes asked for of "
                                             f"{state.item.remote.path}; downloading again",
                                             retry_after=SERVER_RETRY)
                    _write_block(out, block, state.part)
                    state.md5.update(block)
                    state.offset += len(block)
                    report(ProgressEvent(state.item.remote.path, state.offset, state.size))
                    state.limits.draw(len(block))
                    if unknown and state.offset // DISK_CHECK != (state.offset - len(block)) // DISK_CHECK:
                        _check_reserve(shutil.disk_usage(state.part.parent).free, 0, state.part.parent,
                                       state.limits)
                    _check_deadline(state, deadline)
            except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError):
                raise _Cut() from None  # what came so far is on disk: the next range starts there
        if unknown and response.status_code == 200:
            state.size = state.offset  # a 200 without a length: what came is the file


def _check_deadline(state: _State, deadline: float) -> None:
    if time.monotonic() > deadline:
        raise NetworkError(f"file host: {state.item.remote.path} too slow ({state.offset} bytes so far); "
                           "resuming at the next attempt", retry_after=SERVER_RETRY)


def _write_block(out: BinaryIO, block: bytes, part: Path) -> None:
    try:
        out.write(block)
    except OSError as err:
        raise _disk_error(part, err) from None


def _chunks(response: requests.Response, first: bytes = b"") -> Iterator[bytes]:
    """The body as it arrives, at most 1 MiB at a time: ``read1`` hands over what the
    socket has, so a cut loses nothing already received."""
    if first:
        yield first
    while True:
        block = response.raw.read1(CHUNK, decode_content=True)
        if not block:
            return
        yield block


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
