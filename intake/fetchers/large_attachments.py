"""What the 163 and QQ large-attachment fetchers share: one file behind a link that a
service resolves into a short-lived download URL.

``fetch_resolved`` resolves the link once, asks the download URL for its first byte to
learn the file's name (``Content-Disposition``) and size, then hands it to the shared
downloader; when the URL expires mid-file (HTTP 403), the link is resolved again and
the download goes on from the bytes on disk. A link the service calls expired or
deleted is the sender's problem: a ``link.unavailable`` finding.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path
from urllib.parse import unquote

from intake.fetchers.base import (DownloadLimits, Fetched, LinkGone, NetworkError, Progress, RemoteFile,
                                  SenderProblem, finding_for, sanitise)
from intake.fetchers.download import Download, Downloader, Source
from intake.fetchers.http import Http

# Sent to the landing pages and APIs, which serve browsers (no login is used).
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
MAX_NAME_BYTES = 200  # a file name's UTF-8 length on disk (ext4 allows 255, ".part" is added)
FALLBACK_NAME = "附件"


@dataclass
class Resolved:
    """Where the file can be downloaded now, and what the service says about it."""
    source: Source
    name: str | None = None  # the service's own name for it (a fallback for Content-Disposition)
    size: int | None = None


Resolver = Callable[[], Resolved]  # raises LinkGone (expired, deleted) or TransientError


def gone(service: str, url: str, reason: str) -> LinkGone:
    """The finding's text: what happened and what the sender should do."""
    return LinkGone(f"邮件中的{service}链接 {url} {reason}，无法下载。请在截止时间前将材料上传至百度网盘并发送分享链接"
                    "（附提取码），或直接作为附件重新发送。")


def fetch_resolved(http: Http, resolve: Resolver, dest: Path, limits: DownloadLimits,
                   progress: Progress | None = None, *,
                   pause: Callable[[float], None] = time.sleep) -> Fetched:
    """The one file behind a large-attachment link, into ``dest``."""
    try:
        first = resolve()
        remote = RemoteFile(*describe(http, first))
        handed = [first.source]

        def again() -> Source:  # the first resolution is used once; an expired URL asks anew
            return handed.pop() if handed else resolve().source

        files, problems = Downloader(http, pause=pause).fetch_all([Download(remote, again)], dest, limits,
                                                                  progress)
    except SenderProblem as problem:
        return Fetched([], [], [finding_for(problem)])
    return Fetched(files, [remote], [finding_for(problem) for problem in problems])


def describe(http: Http, resolved: Resolved) -> tuple[str, int]:
    """(file name, size) from the download URL's answer to a one-byte range, else from
    what the service said. A refusal here is left to the downloader, which resolves the
    link again."""
    name, size = None, None
    headers = {**resolved.source.headers, "Range": "bytes=0-0", "Accept-Encoding": "identity"}
    try:
        response = http.request("GET", resolved.source.url, headers=headers, cookies=resolved.source.cookies,
                                stream=True)
    except NetworkError:
        response = None
    if response is not None:
        with response:
            if response.status_code in (200, 206):
                name = disposition_name(response.headers.get("Content-Disposition", ""))
                size = _total(response.status_code, response.headers)
    size = size if size is not None else resolved.size
    return file_name(name or resolved.name or FALLBACK_NAME), size or 0


def _total(status: int, headers: Mapping[str, str]) -> int | None:
    if status == 206:
        match = re.search(r"/(\d+)\s*$", headers.get("Content-Range", "") or "")
        return int(match.group(1)) if match else None
    length = headers.get("Content-Length", "") or ""
    return int(length) if length.isdigit() else None


def disposition_name(header: str) -> str | None:
    """The file name a ``Content-Disposition`` header gives: RFC 5987 ``filename*=``
    first; else ``filename=``, whose raw UTF-8 (or GBK) bytes ``requests`` read as
    ISO-8859-1 are decoded again, and whose %XX or =?…?= encoding is undone."""
    extended = re.search(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;]+)", header, re.I)
    if extended:
        try:
            return unquote(extended.group(2).strip().strip('"'), encoding=extended.group(1), errors="replace")
        except LookupError:  # an unknown charset name: read it as UTF-8
            return unquote(extended.group(2).strip().strip('"'), errors="replace")
    plain = re.search(r'filename\s*=\s*"([^"]*)"', header, re.I) or re.search(r"filename\s*=\s*([^;]+)", header, re.I)
    if not plain or not plain.group(1).strip():
        return None
    name = _redecoded(plain.group(1).strip())
    if name.startswith("=?"):
        try:
            name = str(make_header(decode_header(name)))
        except (LookupError, ValueError):  # a malformed encoded word: keep it as written
            pass
    if re.search(r"%[0-9A-Fa-f]{2}", name):
        name = unquote(name, errors="replace")
    return name


def _redecoded(text: str) -> str:
    """Header text that was bytes read as ISO-8859-1, decoded as UTF-8 (else GB18030)."""
    if all(ord(c) < 0x80 for c in text):
        return text
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text  # already decoded properly
    for charset in ("utf-8", "gb18030"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return text


def file_name(name: str) -> str:
    """One safe path component, at most MAX_NAME_BYTES of UTF-8, its extension kept."""
    single = sanitise(name.replace("/", "_").replace("\\", "_"))
    if len(single.encode("utf-8")) <= MAX_NAME_BYTES:
        return single
    stem, dot, extension = single.rpartition(".")
    if not dot or len(extension) > 16:
        stem, extension = single, ""
    tail = f".{extension}" if extension else ""
    budget = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" .") + tail
