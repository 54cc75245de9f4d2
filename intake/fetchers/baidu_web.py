"""The share as a web client sees it (probe and cookie routes): the share page with the
netdisk client's User-Agent, share/verify with the extraction code (BDCLND), the page's
embedded data, and share/list with paging into every folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from intake.fetchers.base import LinkGone, NeedsStaff, RemoteFile, WrongCode, sanitise
from intake.fetchers.baidu_share import (CODE_WRONG, ShareRef, check, errno_of, fs_id, kind_of, page_data,
                                         page_files, page_is_dead)
from intake.fetchers.http import NETDISK_UA, Http, set_cookies
from intake.kernel.errors import TransientError

PAN = "https://pan.baidu.com"
PAGE_SIZE = 100  # share/list gives at most 100 a page
MAX_ENTRIES = 5000  # a share listing this long is not a roadshow package: stop listing


@dataclass
class Entry:
    """A file or folder of the share, with its path relative to the share's top."""
    fs_id: int
    rel: str  # as Baidu names it ('/'-separated, unsanitised)
    size: int
    isdir: bool
    share_path: str  # the path share/list takes as dir=
    md5: str | None = None
    children: list[Entry] = field(default_factory=list)

    def files(self) -> list[Entry]:
        if not self.isdir:
            return [self]
        return [f for child in self.children for f in child.files()]


@dataclass
class ShareInfo:
    shareid: str
    uk: str
    top: list[Entry]
    bdstoken: str | None = None
    truncated: bool = False  # the listing stopped at MAX_ENTRIES: folders were left unlisted

    def files(self) -> list[Entry]:
        return [f for entry in self.top for f in entry.files()]


def require_whole(info: ShareInfo, url: str) -> None:
    """A listing cut at MAX_ENTRIES is not downloaded in part: staff get what was listed."""
    if info.truncated:
        raise_too_many(url, info.files())


def raise_too_many(url: str, files: list[Entry]) -> None:
    raise NeedsStaff(f"百度网盘分享 {url} 中的文件和文件夹超过 {MAX_ENTRIES} 个，未能全部列出（已列出 {len(files)} 个文件）："
                     "请工作人员核对后手工下载", [RemoteFile(sanitise(e.rel), e.size, e.md5) for e in files])


def entry_from(raw: dict[str, Any], parent: str) -> Entry:
    name = str(raw.get("server_filename") or str(raw.get("path", "")).rsplit("/", 1)[-1])
    md5 = raw.get("md5")
    return Entry(fs_id(raw["fs_id"]), f"{parent}/{name}" if parent else name, int(raw.get("size") or 0),
                 str(raw.get("isdir")) == "1", str(raw.get("path") or ""), md5 if isinstance(md5, str) else None)


class ShareWeb:
    """One share, opened with the given account cookies (none for the probe route)."""

    def __init__(self, http: Http, ref: ShareRef, cookies: dict[str, str] | None = None) -> None:
        self.http, self.ref = http, ref
        self.cookies = dict(cookies or {})
        self.headers = {"User-Agent": NETDISK_UA}

    def open(self) -> ShareInfo:
        """Unlock the share (trying each candidate code) and read its top level."""
        response = self.http.request("GET", self.ref.page_url, headers=self.headers, cookies=self.cookies)
        text = response.text
        if response.status_code == 404 or page_is_dead(text, response.url):
            raise LinkGone(f"百度网盘链接 {self.ref.url} 已失效（分享已取消、删除或不存在）。"
                           "请重新分享后发送新的链接和提取码，或将材料直接作为附件发送。")
        if "/share/init" in response.url:  # a code is needed: unlock, then read the page again
            self.ref.surl = self.ref.surl or _query(response.url).get("surl", "")
            self.verify()
            response = self.http.request("GET", self.ref.page_url, headers=self.headers, cookies=self.cookies)
            text = response.text
            if page_is_dead(text, response.url):
                raise LinkGone(f"百度网盘链接 {self.ref.url} 已失效（分享已取消、删除或不存在）。"
                               "请重新分享后发送新的链接和提取码，或将材料直接作为附件发送。")
        data = page_data(text)
        if data is None:  # a login page: the User-Agent was refused, or Baidu changed its page
            raise TransientError("pan.baidu.com: the share page came without its data (a login page?)",
                                 retry_after=1800.0)
        shareid, uk = str(data.get("shareid") or ""), str(data.get("share_uk") or data.get("uk") or "")
        top = [entry_from(raw, "") for raw in page_files(data)]
        if not top and shareid:
            top = self._list_root()
        return ShareInfo(shareid, uk, top, data.get("bdstoken") or None)

    def verify(self) -> None:
        """share/verify with each candidate code; -9 moves on to the next."""
        if not self.ref.codes:
            raise WrongCode(f"百度网盘链接 {self.ref.url} 需要提取码，但邮件中没有找到。"
                            "请发送链接时一并写明 4 位提取码。")
        for code in self.ref.codes:
            params = {"surl": self.ref.surl, "t": str(int(time.time() * 1000)), "channel": "chunlei",
                      "web": "1", "bdstoken": "null", "clienttype": "0"}
            response = self.http.request(
                "POST", f"{PAN}/share/verify", params=params, data={"pwd": code, "vcode": "", "vcode_str": ""},
                headers={**self.headers, "Referer": self.ref.init_url}, cookies=self.cookies)
            body = _json(response)
            if kind_of("verify", errno_of(body)) == CODE_WRONG:
                continue
            check("verify", body, self.ref.url)
            randsk = set_cookies(response).get("BDCLND") or str(body.get("randsk") or "")
            self.cookies["BDCLND"] = randsk
            return
        tried = "、".join(self.ref.codes)
        raise WrongCode(f"百度网盘链接 {self.ref.url} 的提取码不正确（已尝试：{tried}）。"
                        "请核对后重新发送链接和正确的提取码。")

    def _list_root(self) -> list[Entry]:
        params = {"shorturl": self.ref.surl, "root": "1", "web": "5", "app_id": "250528", "channel": "chunlei"}
        return self._pages(params, "", MAX_ENTRIES + 1)

    def list_tree(self, info: ShareInfo) -> ShareInfo:
        """Every folder listed, breadth-first, 100 a page until a page comes back short;
        past MAX_ENTRIES entries the walk stops and ``info.truncated`` says so."""
        queue = [e for e in info.top if e.isdir]
        seen = len(info.top)
        info.truncated = seen > MAX_ENTRIES
        while queue and not info.truncated:
            folder = queue.pop(0)
            params = {"uk": info.uk, "shareid": info.shareid, "dir": folder.share_path, "order": "other",
                      "desc": "1", "showempty": "0", "web": "1", "channel": "chunlei", "clienttype": "0"}
            folder.children = self._pages(params, folder.rel, MAX_ENTRIES - seen + 1)
            seen += len(folder.children)
            info.truncated = seen > MAX_ENTRIES
            queue += [e for e in folder.children if e.isdir]
        return info

    def _pages(self, params: dict[str, str], rel: str, room: int) -> list[Entry]:
        """share/list page by page until a short page, or until ``room`` entries came."""
        found: list[Entry] = []
        page = 1
        while len(found) < room:
            body = self.http.json("GET", f"{PAN}/share/list", params={**params, "page": str(page),
                                                                       "num": str(PAGE_SIZE)},
                                  headers=self.headers, cookies=self.cookies)
            check("share_list", body, self.ref.url)
            rows = body.get("list") or []
            found += [entry_from(raw, rel) for raw in rows if isinstance(raw, dict)]
            if len(rows) < PAGE_SIZE:
                break
            page += 1
        return found


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise TransientError(f"pan.baidu.com: HTTP {response.status_code} without JSON", retry_after=600.0) from None
    return body if isinstance(body, dict) else {}
