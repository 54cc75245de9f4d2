"""The shared downloader: streaming into ``<name>.part``, resumable, checked.

- Ranges of at most 50 MiB (Baidu's file hosts throttle or refuse longer ones), read in
  chunks of at most 1 MiB straight to disk: nothing of a download is held in memory.
- A cut connection resumes from the bytes on disk; so does the next attempt after an
  error (the ``.part`` file stays). Each 206 must start where asked (``Content-Range``).
- A link that expires mid-download (31360 in the body, or HTTP 403) is resolved again
  through the route's callback and the download goes on from the offset.
- The size is checked against the listing (or ``x-bs-file-size``/the range total); the
  md5 against ``Content-MD5``/``ETag`` when the host sends one, hashed while writing (a
  resumed file's existing bytes are hashed again by streaming them from disk). Baidu's
  listing md5 is not the data's md5, so it is never checked.
- The blocked-content stand-in ("温馨提示", 1749504 bytes) is ``link.unavailable``.
- Limits: the message's total is capped (``DownloadTooLarge``); nothing starts when the
  free disk after the download would fall below the reserve (``TransientError``); one
  download at a time per account (``AccountLock``).
"""

from __future__ import annotations

import base64
import binascii
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
from intake.kernel.errors import ConfigError, TransientError

MIB = 1024 * 1024
CHUNK = MIB  # bytes read and written at a time
RANGE = 50 * MIB  # bytes asked for in one request
STAND_INS = {(1749504, "48bb9b0361dc9c672f3dc7b3ffcfde97")}  # Baidu's "温馨提示" video for blocked content
STAND_IN_SMALL = (120, "6c1b8491")  # the 120-byte text stand-in (md5 prefix as published)
MAX_CUTS = 5  # consecutive cuts without a byte of progress before giving up for now
MAX_RESOLVES = 3  # consecutive expired links without progress
THROTTLED_RETRY = 1800.0  # 31326/31626: the account or address is throttled: 30 min
DISK_RETRY = 1800.0


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


class _Expired(Exception):
    """The link expired: resolve it again."""


class _Cut(Exception):
    """The connection broke mid-body."""


def _stand_in(size: int | None, *md5s: str | None) -> bool:
    """The blocked-content stand-in, told by its size and an md5: of the bytes, or the one
    the file host or the listing claims (the stand-in's own md5 is known, its bytes vary)."""
    return any((size, md5) in STAND_INS or (size, (md5 or "")[:8]) == STAND_IN_SMALL for md5 in md5s if md5)


def _blocked(path: str) -> LinkGone:
    return LinkGone(f"链接中的文件“{path}”已被百度网盘屏蔽（下载得到的是“温馨提示”替代文件），无法获取。"
                    "请将材料直接作为附件发送，或更换文件后重新分享并发送新的链接。")


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _expected_md5(response: requests.Response) -> str | None:
    value = response.headers.get("Content-MD5", "").strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", value):
        return value.lower()
    if value:
        try:
            raw = base64.b64decode(value, validate=True)
            if len(raw) == 16:
                return raw.hex()
        except (binascii.Error, ValueError):
            pass
    etag = response.headers.get("ETag", "").strip().removeprefix("W/").strip('"')
    return etag.lower() if re.fullmatch(r"[0-9a-fA-F]{32}", etag) else None


def _content_range(response: requests.Response) -> tuple[int, int, int | None] | None:
    match = re.fullmatch(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def _small_body(response: requests.Response) -> bytes | None:
    """The whole body when it is small enough to be an error message, else None."""
    length = response.headers.get("Content-Length")
    if length is not None and (not length.isdigit() or int(length) > 4096):
        return None
    try:
        body = response.raw.read(4097, decode_content=True)
    except Exception:  # an unreadable error body says nothing more than its status
        return b""
    return body if len(body) <= 4096 else None


def _error_code(body: bytes | None) -> int | None:
    """errno/error_code of a JSON error body (a file host's refusal)."""
    match = re.search(rb'"(?:error_code|errno)"\s*:\s*"?(-?\d+)', body or b"")
    return int(match.group(1)) if match else None


class _State:
    """One file's download: the part file, its hash and what the host told us."""

    def __init__(self, item: Download, target: Path) -> None:
        self.item, self.target, self.part = item, target, part_path(target)
        self.size: int | None = item.remote.size if item.remote.size > 0 else None
        self.md5 = BackgroundMd5()
        self.expected_md5: str | None = None
        self.offset = self.part.stat().st_size if self.part.exists() else 0
        self.pending = b""  # a small body read to see whether it was an error, but it was data
        if self.size is not None and self.offset > self.size:
            self.restart()
        if self.offset:
            with self.part.open("rb") as existing:  # rehash what is on disk, streaming
                for block in iter(lambda: existing.read(CHUNK), b""):
                    self.md5.update(block)

    def restart(self) -> None:
        self.md5.close()
        self.part.unlink(missing_ok=True)
        self.offset, self.md5 = 0, BackgroundMd5()

    @property
    def complete(self) -> bool:
        return self.size is not None and self.offset >= self.size


def preflight(listing: list[RemoteFile], dest: Path, limits: DownloadLimits) -> None:
    """Before anything is transferred or downloaded: the message's cap, then the disk."""
    total = sum(remote.size for remote in listing)
    if total > limits.max_total_bytes:
        raise DownloadTooLarge(
            f"链接中的文件共 {total / GIB:.2f} GB，超过 INTAKE_DOWNLOAD_MAX_GB（{limits.max_total_bytes / GIB:g} GB）："
            "请工作人员调高该设置后重新处理，或手工下载", listing)
    dest.mkdir(parents=True, exist_ok=True)
    remaining = 0
    for remote in listing:
        target = dest / remote.path
        part = part_path(target)
        done = target.stat().st_size if target.exists() else part.stat().st_size if part.exists() else 0
        remaining += max(remote.size - done, 0)
    free = shutil.disk_usage(dest).free
    if free - remaining < limits.reserve_bytes:
        raise TransientError(
            f"disk: {remaining / GIB:.2f} GB to download into {dest} would leave {(free - remaining) / GIB:.2f} GB "
            f"free, below INTAKE_DISK_RESERVE_GB ({limits.reserve_bytes / GIB:g} GB); free some space",
            retry_after=DISK_RETRY)


class Downloader:
    def __init__(self, http: Http, lock: AccountLock | None = None, *, range_size: int = RANGE,
                 pause: Callable[[float], None] = time.sleep) -> None:
        self.http, self.lock, self.range_size, self.pause = http, lock, range_size, pause

    def fetch_all(self, items: list[Download], dest: Path, limits: DownloadLimits,
                  progress: Progress | None = None) -> tuple[list[Path], list[SenderProblem]]:
        """Every file into ``dest`` (layout kept); a file that turns out to be the
        blocked-content stand-in is left out and reported, the others still fetched."""
        preflight([item.remote for item in items], dest, limits)
        files: list[Path] = []
        problems: list[SenderProblem] = []
        with self.lock or _no_lock():
            for item in items:
                try:
                    files.append(self.fetch_one(item, dest, progress))
                except LinkGone as problem:
                    problems.append(problem)
        return files, problems

    def fetch_one(self, item: Download, dest: Path, progress: Progress | None = None) -> Path:
        target = dest / item.remote.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().st_size == item.remote.size:
            return target  # fetched and checked by an earlier attempt
        state = _State(item, target)
        try:
            return self._fetch(item, state, progress)
        finally:
            state.md5.close()  # no hashing thread outlives the attempt

    def _fetch(self, item: Download, state: _State, progress: Progress | None) -> Path:
        report = progress or (lambda event: None)
        report(ProgressEvent(item.remote.path, state.offset, state.size))
        source, cuts, resolves, resolved_at = item.resolve(), 0, 0, state.offset
        while not state.complete:
            before = state.offset
            try:
                self._fetch_range(source, state, report)
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
        return self._finish(state, report)

    def _finish(self, state: _State, report: Progress) -> Path:
        size = state.part.stat().st_size if state.part.exists() else 0
        path = state.item.remote.path
        if state.size is not None and size != state.size:
            state.restart()
            raise TransientError(f"{path}: {size} bytes downloaded, {state.size} expected; downloading again",
                                 retry_after=SERVER_RETRY)
        digest = state.md5.hexdigest()
        if _stand_in(size, digest, state.expected_md5, state.item.remote.md5_hint):
            state.part.unlink(missing_ok=True)
            raise _blocked(path)
        if state.expected_md5 and digest != state.expected_md5:
            state.restart()
            raise TransientError(f"{path}: md5 {digest} differs from the file host's {state.expected_md5}; "
                                 "downloading again", retry_after=SERVER_RETRY)
        os.replace(state.part, state.target)
        report(ProgressEvent(path, size, state.size, finished=True))
        return state.target

    def _fetch_range(self, source: Source, state: _State, report: Progress) -> None:
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
            self._accept(response, state, first)
            self._write(response, state, report)
        if state.offset == first and not state.complete:
            raise _Cut()  # an answer without a byte of the file counts as a cut: no endless loop

    def _accept(self, response: requests.Response, state: _State, first: int) -> None:
        """Check what the host answered before a byte of it is written."""
        status = response.status_code
        if status in (200, 206):
            if "json" in response.headers.get("Content-Type", ""):
                body = _small_body(response)  # Baidu's hosts also say 31360 with a 200
                if body is not None and _error_code(body) is not None:
                    self._refused(_error_code(body), status)
                state.pending = body or b""
        elif status == 416 and state.size is not None and first >= state.size:
            return
        elif 400 <= status < 500 and status != 429:
            self._refused(_error_code(_small_body(response)), status)
        elif status == 429 or status >= 500:
            raise TransientError(f"file host: HTTP {status}", retry_after=SERVER_RETRY if status >= 500 else 600.0)
        else:
            raise TransientError(f"file host: unexpected HTTP {status}", retry_after=SERVER_RETRY)
        state.expected_md5 = state.expected_md5 or _expected_md5(response)
        announced = response.headers.get("x-bs-file-size")
        if _stand_in(int(announced) if announced and announced.isdigit() else state.size, state.expected_md5):
            state.restart()
            raise _blocked(state.item.remote.path)  # known from the headers: not a byte downloaded
        if status == 200:
            if first:
                state.restart()  # the host ignored Range: start over rather than append
            length = response.headers.get("x-bs-file-size") or response.headers.get("Content-Length")
            self._learn_size(state, int(length) if length and length.isdigit() else None)
            return
        found = _content_range(response)
        if found is None or found[0] != first:
            raise TransientError(f"file host: asked for bytes from {first}, answered "
                                 f"{response.headers.get('Content-Range')!r}", retry_after=SERVER_RETRY)
        size = response.headers.get("x-bs-file-size")
        self._learn_size(state, int(size) if size and size.isdigit() else found[2])

    def _learn_size(self, state: _State, size: int | None) -> None:
        if size is None:
            return
        if state.size is not None and size != state.size:
            raise TransientError(f"{state.item.remote.path}: the share lists {state.size} bytes, the file host "
                                 f"serves {size}", retry_after=SERVER_RETRY)
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

    def _write(self, response: requests.Response, state: _State, report: Progress) -> None:
        if response.status_code == 416:
            return
        first, state.pending = state.pending, b""
        with state.part.open("ab") as out:
            try:
                for block in _chunks(response, first):
                    _write_block(out, block, state.part)
                    state.md5.update(block)
                    state.offset += len(block)
                    report(ProgressEvent(state.item.remote.path, state.offset, state.size))
            except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError):
                raise _Cut() from None  # what came so far is on disk: the next range starts there
        if state.size is None:
            state.size = state.offset  # a 200 without a length: what came is the file


def _write_block(out: BinaryIO, block: bytes, part: Path) -> None:
    try:
        out.write(block)
    except OSError as err:
        raise TransientError(f"disk: cannot write {part}: {err.strerror or err}", retry_after=DISK_RETRY) from err


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
