"""163/126 large attachments (超大附件) and 网易邮箱大师 cloud attachments (mail-163.md §3).

The link's key goes to an undocumented endpoint that answers a short-lived
``downloadUrl``; the file is then fetched with the shared downloader (which asks again
when that URL expires mid-file). An endpoint that says *expired* settles it: the
sender is told (``link.unavailable``). One that says *not found* may not know a key of
the other generation, so the next endpoint is asked first; only when every endpoint
that answered says the file is gone is it gone. A network failure, HTTP 5xx or an
answer we do not know is ours: ``TransientError``, the message is retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from intake.fetchers.base import DownloadLimits, Fetched, NeedsStaff, Progress
from intake.fetchers.download import Source
from intake.fetchers.http import Http
from intake.fetchers.large_attachments import BROWSER_UA, Resolved, fetch_resolved, gone
from intake.kernel.errors import TransientError
from intake.parsers.links import Link

EXPIRED, DELETED = "已过期", "已被删除或不存在"
SERVICE = "网易邮箱超大附件"
UNKNOWN_RETRY = 3600.0  # an answer we do not know: try again in an hour, then staff


@dataclass(frozen=True)
class Endpoint:
    """One resolver call: ``{host}`` in the URL is the link's host, ``{key}`` in a field
    its key; GET sends the fields as the query, POST as a JSON body."""
    method: str
    url: str
    fields: tuple[tuple[str, str], ...]
    gone: Mapping[int, str]  # the answer's ``code`` → why the file is gone


@dataclass(frozen=True)
class LinkShape:
    hosts: tuple[str, ...]
    path: str  # the link's path contains it
    key: str  # the query parameter holding the key
    endpoints: tuple[Endpoint, ...]  # asked in this order


# Every URL shape, in one place. Old links carry ?p=X-NETEASE-HUGE-ATTACHMENT&file=<key>
# (the key is still ``file``); 126 and yeah.net are the same service.
FS_SERVICE = Endpoint("GET", "https://fs.mail.163.com/fs/service", (("f", "{key}"), ("op", "fs_dl_f_a")),
                      {-17: EXPIRED, -3: DELETED})
FILEHUB = Endpoint("POST", "https://{host}/filehub/bg/dl/prepare", (("linkKey", "{key}"),),
                   {400: EXPIRED, 404: DELETED})
DASHI = Endpoint("POST", "https://dashi.163.com/filehub-master/file/dl/prepare2",
                 (("fid", ""), ("linkKey", "{key}")), {601: EXPIRED, 400: EXPIRED, 404: DELETED})
SHAPES = (
    LinkShape(("mail.163.com", "mail.126.com", "mail.yeah.net"), "/large-attachment-download/", "file",
              (FS_SERVICE, FILEHUB)),
    LinkShape(("dashi.163.com",), "/html/cloud-attachment-download", "key", (DASHI,)),
)


def link_key(url: str) -> tuple[LinkShape, str, str]:
    """(shape, key, host) of a 163 link; a link without its key is for staff."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for shape in SHAPES:
        if host in shape.hosts and shape.path in parts.path:
            key = (parse_qs(parts.query).get(shape.key) or [""])[0].strip()
            if key:
                return shape, key, host
    raise NeedsStaff(f"网易邮箱超大附件链接 {url} 的形式无法识别（缺少 file/key 参数），需工作人员手工下载。")


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _download_url(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    """``result`` (fs_dl_f_a, dashi) or ``data`` (filehub) holding a downloadUrl."""
    for field in ("result", "data"):
        inner = answer.get(field)
        if isinstance(inner, dict) and isinstance(inner.get("downloadUrl"), str) and inner["downloadUrl"]:
            return inner
    return {"downloadUrl": answer["downloadUrl"]} if isinstance(answer.get("downloadUrl"), str) else None


class NeteaseFetcher:
    provider = "netease"

    def __init__(self, http: Http, pause: Callable[[float], None] = time.sleep) -> None:
        self.http, self.pause = http, pause
        self.headers = {"User-Agent": BROWSER_UA}

    def fetch(self, link: Link, dest: Path, limits: DownloadLimits, progress: Progress | None = None,
              *, key: str | None = None) -> Fetched:
        shape, file_key, host = link_key(link.url)
        return fetch_resolved(self.http, lambda: self.resolve(link.url, shape, file_key, host), dest, limits,
                              progress, pause=self.pause)

    def resolve(self, url: str, shape: LinkShape, key: str, host: str) -> Resolved:
        """The first endpoint's downloadUrl; else gone, or ours to retry."""
        deleted, failure, unknown = False, None, []
        for endpoint in shape.endpoints:
            try:
                answer = self._ask(endpoint, key, host)
            except TransientError as error:
                failure = error
                continue
            code, found = _number(answer.get("code")), _download_url(answer)
            if code == 200 and found is not None:
                return Resolved(Source(found["downloadUrl"], dict(self.headers)),
                                found.get("fileName") or None, _number(found.get("fileSize")))
            reason = endpoint.gone.get(code) if code is not None else None
            if reason == EXPIRED:
                raise gone(SERVICE, url, EXPIRED)
            if reason == DELETED:
                deleted = True
                continue
            unknown.append(f"{urlsplit(endpoint.url).path} code {answer.get('code')!r}")
        if failure is not None:
            raise failure
        if deleted:
            raise gone(SERVICE, url, DELETED)
        raise TransientError(f"163 large attachment: unexpected answer ({'; '.join(unknown)})",
                             retry_after=UNKNOWN_RETRY)

    def _ask(self, endpoint: Endpoint, key: str, host: str) -> dict[str, Any]:
        fields = {name: value.format(key=key) for name, value in endpoint.fields}
        url = endpoint.url.format(host=host)
        if endpoint.method == "GET":
            return self.http.json("GET", url, params=fields, headers=self.headers)
        return self.http.json("POST", url, json=fields, headers=self.headers)

