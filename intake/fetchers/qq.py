"""QQ Mail large attachments (超大附件, 文件中转站; mail-163.md §3).

The link is a landing page that needs no login. The newer page
((i)wx.mail.qq.com/ftn/download?func=3&key=…&code=…&k=…) writes ``var status = 1`` and
``var url = "…"`` (``&`` written ``\\x26``) into a script; the older one
(mail.qq.com/cgi-bin/ftnExs_download?k=…&code=…) has an ``a.ft_d_btnDownload`` button.
A status other than 1, or the page's "expired or deleted" notice, is the sender's
problem (``link.unavailable``); a page we cannot read is ours (``TransientError``).
A link that answers with the file itself (func=4 redirects to the ftn host) is its own
download URL. The page's cookies go along with the download (the ftn host may ask for
them).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from intake.fetchers.base import DownloadLimits, Fetched, NeedsStaff, Progress
from intake.fetchers.download import Source
from intake.fetchers.http import Http, set_cookies
from intake.fetchers.large_attachments import BROWSER_UA, Resolved, fetch_resolved, gone
from intake.kernel.errors import TransientError
from intake.parsers.links import Link

SERVICE = "QQ邮箱超大附件"
PAGE_BYTES = 2 * 1024 * 1024  # a landing page is a few kB; never read more than this
UNREADABLE_RETRY = 3600.0  # a page we cannot read: try again in an hour, then staff


@dataclass(frozen=True)
class PageShape:
    hosts: tuple[str, ...]
    path: str  # the link's path starts with it


# Every URL shape, in one place (exmail.qq.com is QQ's enterprise mail, the same pages).
SHAPES = (
    PageShape(("wx.mail.qq.com", "iwx.mail.qq.com", "mail.qq.com"), "/ftn/download"),
    PageShape(("mail.qq.com", "exmail.qq.com"), "/cgi-bin/ftnExs_download"),
)
STATUS = re.compile(r"var\s+status\s*=\s*['\"]?(\d+)")
SCRIPT_URL = re.compile(r"var\s+url\s*=\s*\"([^\"]+)\"")
SCRIPT_NAME = re.compile(r"var\s+name\s*=\s*\"([^\"]*)\"")
BUTTON = re.compile(r"<a\b[^>]*\bft_d_btnDownload\b[^>]*>", re.I)
HREF = re.compile(r"\bhref\s*=\s*\"([^\"]+)\"", re.I)
GONE_NOTICE = re.compile(r"ft_d_expired|已过期|已被删除|已删除|不存在")


def page_shape(url: str) -> PageShape:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for shape in SHAPES:
        if host in shape.hosts and parts.path.startswith(shape.path):
            return shape
    raise NeedsStaff(f"QQ邮箱超大附件链接 {url} 的形式无法识别，需工作人员手工下载。")


def script_text(value: str) -> str:
    """A JavaScript string literal's text: \\xNN, \\uNNNN and \\/ undone."""
    value = re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)
    value = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), value)
    return value.replace("\\/", "/")


def read_page(text: str, url: str) -> tuple[str, str | None]:
    """(download URL, the page's name for the file) from a landing page."""
    status = STATUS.search(text)
    if status and status.group(1) != "1":
        raise gone(SERVICE, url, "已过期或已被删除")
    found = SCRIPT_URL.search(text)
    name = SCRIPT_NAME.search(text)
    shown = html.unescape(script_text(name.group(1))) if name else None
    if found:
        return script_text(found.group(1)), shown
    button = BUTTON.search(text)
    href = HREF.search(button.group(0)) if button else None
    if href:
        return html.unescape(href.group(1)), shown
    if GONE_NOTICE.search(text):
        raise gone(SERVICE, url, "已过期或已被删除")
    raise TransientError(f"QQ large attachment: the landing page of {urlsplit(url).hostname} names no download "
                         "URL (its layout may have changed)", retry_after=UNREADABLE_RETRY)


def _fname(url: str) -> str | None:
    """The ftn host's URL carries the name as ``fname=``."""
    found = parse_qs(urlsplit(url).query).get("fname")
    return found[0] if found else None


class QQFetcher:
    provider = "qq"

    def __init__(self, http: Http, pause: Callable[[float], None] = time.sleep) -> None:
        self.http, self.pause = http, pause
        self.headers = {"User-Agent": BROWSER_UA}

    def fetch(self, link: Link, dest: Path, limits: DownloadLimits, progress: Progress | None = None,
              *, key: str | None = None) -> Fetched:
        page_shape(link.url)
        return fetch_resolved(self.http, lambda: self.resolve(link.url), dest, limits, progress, pause=self.pause)

    def resolve(self, url: str) -> Resolved:
        response = self.http.request("GET", url, headers=self.headers, stream=True)
        with response:
            cookies = set_cookies(response)
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"{urlsplit(url).hostname}: HTTP {response.status_code}",
                                     retry_after=UNREADABLE_RETRY / 12)
            if _is_file(response):
                return Resolved(Source(url, dict(self.headers), cookies))
            text = _bounded_text(response)
        target, name = read_page(text, url)
        return Resolved(Source(target, dict(self.headers), cookies), name or _fname(target))


def _is_file(response: requests.Response) -> bool:
    """The link answered with the file (after its redirects), not with a page."""
    kind = response.headers.get("Content-Type", "").lower()
    return response.status_code in (200, 206) and (
        "attachment" in response.headers.get("Content-Disposition", "").lower()
        or bool(kind) and not any(mark in kind for mark in ("html", "text", "json", "javascript")))


def _bounded_text(response: requests.Response) -> str:
    """The page, read up to PAGE_BYTES, in the charset its header names (else UTF-8:
    requests would say ISO-8859-1 for any text/* without one)."""
    body = response.raw.read(PAGE_BYTES, decode_content=True) or b""
    named = re.search(r"charset=[\"']?([\w-]+)", response.headers.get("Content-Type", ""), re.I)
    try:
        return body.decode(named.group(1) if named else "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")
