"""The ``openapi`` route: an app with the enterprise share capability and the tokens
``intake netdisk login`` stored.

apaas share/verify → share/list (100 a page, every folder) → share/transfer into a folder
unique to the message (``ondup=fail``: a retry finds its earlier copy) → share/taskquery →
xpan listall of that folder → filemetas dlinks → download with ``User-Agent:
pan.baidu.com`` and the access token appended → the copy deleted.

Tokens: refreshed when (nearly) expired, and once when Baidu says a token is dead
(errno 111/-6); the new pair is stored before it is used (refresh tokens are single-use).

Two points the sources disagree on are settings: whether apaas ``short_url`` keeps the
leading ``1`` (INTAKE_BAIDU_SHORT_URL: ``surl`` without it, the default, or ``full``), and
what a numeric taskquery status means (INTAKE_BAIDU_TASK_STATUS; the words ``running``,
``success`` and ``failed`` are always understood).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intake.fetchers.base import (DownloadLimits, Fetched, Progress, RemoteFile, SenderProblem, WrongCode,
                                  finding_for)
from intake.fetchers.baidu_share import (EXISTS, RATE, RETRY_AFTER, AuthDead, Missing, ShareRef, check, errno_of,
                                         share_ref)
from intake.fetchers.baidu_web import MAX_ENTRIES, Entry, entry_from, raise_too_many
from intake.fetchers.download import Download, Downloader, Source, preflight
from intake.fetchers.http import OPENAPI_UA, Http
from intake.fetchers.locks import AccountLock
from intake.fetchers.tokens import EARLY, REFRESH_LOCK, OAuth, Tokens, TokenStore
from intake.fetchers.transfer_plan import listing, message_folder, transfer_all
from intake.kernel.errors import ConfigError, TransientError
from intake.parsers.links import Link

log = logging.getLogger("intake.fetchers")
PAN = "https://pan.baidu.com"
APAAS = f"{PAN}/apaas/1.0/share"
XPAN = f"{PAN}/rest/2.0/xpan"
SETTING = "INTAKE_BAIDU_APP_KEY"
DEFAULT_INBOX = "/apps/intake/inbox"
POLLS = 300
PAGE = 100


def status_words(setting: str) -> dict[str, str]:
    """INTAKE_BAIDU_TASK_STATUS ("0=running,1=running,2=success,3=failed") as a table."""
    table = {"running": "running", "pending": "running", "success": "success", "failed": "failed"}
    for pair in setting.split(","):
        number, _, word = pair.partition("=")
        table[number.strip()] = word.strip()
    return table


class OpenApiFetcher:
    provider = "baidu"

    def __init__(self, http: Http, oauth: OAuth, store: TokenStore, app_id: str | None, *,
                 inbox: str | None = None, short_url: str = "surl", task_status: str = "",
                 lock_folder: Path | None = None, pause: Callable[[float], None] = time.sleep) -> None:
        if not app_id:
            raise ConfigError("INTAKE_BAIDU_APP_ID: not set; the openapi route needs the app's AppID")
        self.http, self.oauth, self.store, self.app_id, self.pause = http, oauth, store, app_id, pause
        self.inbox, self.short_url = inbox or DEFAULT_INBOX, short_url
        self.statuses = status_words(task_status or "0=running,1=running,2=success,3=failed")
        self.lock = AccountLock("baidu-openapi", lock_folder)
        self.refresh_lock = AccountLock(REFRESH_LOCK, lock_folder)
        self.tokens: Tokens | None = None

    # ---- tokens --------------------------------------------------------------------------
    def _token(self) -> str:
        if self.tokens is None:
            self.tokens = self.store.load()
            if self.tokens is None:
                raise ConfigError("INTAKE_NETDISK_ROUTE=openapi: no tokens stored; run `intake netdisk login`")
        if self.tokens.expires_at - EARLY < time.time():
            self.tokens = self.oauth.refresh(self.store, self.refresh_lock)
        return self.tokens.access_token

    def _call(self, method: str, url: str, endpoint: str, params: dict[str, str], form: dict[str, str] | None = None,
              share: str = "") -> dict[str, Any]:
        """One API call with the access token; a dead token is refreshed once."""
        for attempt in range(2):
            token = self._token()
            body = self.http.json(method, url, params={**params, "access_token": token}, data=form,
                                  headers={"User-Agent": OPENAPI_UA})
            try:
                if check(endpoint, body, share, SETTING) == EXISTS:
                    body["_exists"] = True
                return body
            except AuthDead:
                if attempt:
                    raise
                self.tokens = self.oauth.refresh(self.store, self.refresh_lock, spent=token)
        raise AssertionError("unreachable")

    def account(self) -> dict[str, Any]:
        """The account the tokens belong to (xpan uinfo): one cheap call that proves the
        token works (`intake doctor`); a dead token is refreshed once, as for any call."""
        return self._call("GET", f"{XPAN}/nas", "uinfo", {"method": "uinfo"})

    # ---- the route -----------------------------------------------------------------------
    def fetch(self, link: Link, dest: Path, limits: DownloadLimits, progress: Progress | None = None,
              *, key: str | None = None) -> Fetched:
        ref = share_ref(link)
        shown: list[RemoteFile] = []
        try:
            short = "1" + ref.surl if self.short_url == "full" else ref.surl
            spwd = self._verify(ref, short)
            top = self._list(ref, short, spwd, "", "", [])
            files = [f for e in top for f in e.files()]
            shown = listing(files)
            preflight(shown, dest, limits)
            folder = message_folder(self.inbox, key, dest, ref.url)
            self._transfer(ref, short, spwd, top, folder)
            own = self._listall(folder)
            downloads = [self._download(remote, own, folder, entry) for entry, remote in zip(files, shown)]
            fetched, problems = Downloader(self.http, self.lock, pause=self.pause).fetch_all(
                downloads, dest, limits, progress)
        except SenderProblem as problem:
            return Fetched([], shown, [finding_for(problem)])
        self._delete(folder)
        return Fetched(fetched, shown, [finding_for(p) for p in problems])

    def _share_params(self, short: str) -> dict[str, str]:
        return {"product": "netdisk", "appid": self.app_id, "short_url": short}

    def _verify(self, ref: ShareRef, short: str) -> str:
        """The share's spwd, trying each candidate code (13003 moves on to the next)."""
        for code in ref.codes or [""]:
            try:
                body = self._call("POST", f"{APAAS}/verify", "apaas_verify", self._share_params(short),
                                  {"pwd": code}, ref.url)
            except WrongCode:
                continue
            return str((body.get("data") or {}).get("spwd") or "")
        tried = "、".join(ref.codes)
        raise WrongCode(f"百度网盘链接 {ref.url} 的提取码不正确或缺失" + (f"（已尝试：{tried}）" if tried else "") +
                        "。请核对后重新发送链接和正确的提取码。")

    def _list(self, ref: ShareRef, short: str, spwd: str, folder: str, rel: str, seen: list[Entry]) -> list[Entry]:
        """A folder of the share (the top for ""), every page, every sub-folder; ``seen``
        holds every entry listed so far: past MAX_ENTRIES staff get what was listed."""
        entries: list[Entry] = []
        page = 1
        while True:
            body = self._call("POST", f"{APAAS}/list", "apaas_list", self._share_params(short),
                              {"spwd": spwd, "dir": folder, "page": str(page), "page_size": str(PAGE)}, ref.url)
            rows = [row for row in (body.get("data") or {}).get("list") or [] if isinstance(row, dict)]
            entries += [entry_from({**row, "fs_id": row.get("fsid", row.get("fs_id"))}, rel) for row in rows]
            seen += entries[len(entries) - len(rows):]
            if len(seen) > MAX_ENTRIES:
                raise_too_many(ref.url, [f for e in seen for f in e.files()])
            if len(rows) < PAGE:
                break
            page += 1
        for entry in entries:
            if entry.isdir:
                entry.children = self._list(ref, short, spwd, entry.share_path, entry.rel, seen)
        return entries

    def _mkdir(self, path: str) -> None:
        self._call("POST", f"{XPAN}/file", "xpan_create", {"method": "create"},
                   {"path": path, "isdir": "1", "rtype": "0"})

    def _transfer(self, ref: ShareRef, short: str, spwd: str, top: list[Entry], folder: str) -> None:
        self._mkdir(folder)
        transfer_all(top, lambda sub, entries: self._transfer_batch(
            ref, short, spwd, entries, f"{folder}/{sub}" if sub else folder),
            lambda sub: self._mkdir(f"{folder}/{sub}"), self.pause, ref.url)

    def _transfer_batch(self, ref: ShareRef, short: str, spwd: str, entries: list[Entry], target: str) -> None:
        form = {"spwd": spwd, "fsid_list": json.dumps([str(e.fs_id) for e in entries]), "to_path": target,
                "async": "2", "ondup": "fail"}
        body = self._call("POST", f"{APAAS}/transfer", "apaas_transfer", self._share_params(short), form, ref.url)
        task = (body.get("data") or {}).get("task_id")
        if body.get("_exists") or not task:
            return
        for _ in range(POLLS):
            answer = self._call("GET", f"{APAAS}/taskquery", "apaas_taskquery",
                                {"appid": self.app_id, "task_id": str(task)}, None, ref.url)
            data = answer.get("data") or {}
            status = self.statuses.get(str(data.get("status")), "running")
            if status == "success":
                return
            if status == "failed":
                code = errno_of({"errno": data.get("task_errno") or data.get("errno")})
                if code != 0 and check("apaas_transfer", {"errno": code}, ref.url, SETTING) == EXISTS:
                    return
                raise TransientError(f"apaas transfer task {task} failed", retry_after=RETRY_AFTER[RATE])
            self.pause(1.0)
        raise TransientError(f"apaas transfer task {task} still running after {POLLS} polls",
                             retry_after=RETRY_AFTER[RATE])

    def _own(self, url: str, endpoint: str, params: dict[str, str], what: str) -> dict[str, Any]:
        """A call about our own copy: "missing" (31066, 31297, -9) means the copy went
        (a parallel attempt's cleanup, staff), not the sender's share: ours, retried."""
        try:
            return self._call("GET", url, endpoint, params)
        except Missing:
            raise TransientError(f"{endpoint}: our copy {what} is missing from the account; "
                                 "transferring again at the next attempt", retry_after=RETRY_AFTER[RATE]) from None

    def _listall(self, folder: str) -> dict[str, tuple[int, int]]:
        """Our copy: relative path → (fs_id, size), every page (has_more/cursor)."""
        found: dict[str, tuple[int, int]] = {}
        start = 0
        while True:
            body = self._own(f"{XPAN}/multimedia", "xpan_listall", {
                "method": "listall", "path": folder, "recursion": "1", "start": str(start), "limit": "1000"}, folder)
            for row in body.get("list") or []:
                path = str(row.get("path") or "")
                if str(row.get("isdir")) != "1" and path.startswith(folder + "/"):
                    found[path[len(folder) + 1:]] = (int(str(row["fs_id"])), int(row.get("size") or 0))
            if not body.get("has_more"):
                return found
            cursor = int(body.get("cursor") or start + 1000)
            if cursor <= start or len(found) > 4 * MAX_ENTRIES:  # a cursor that stands still pages forever
                raise TransientError(f"xpan listall of {folder}: cursor {cursor} after {start} "
                                     f"({len(found)} entries)", retry_after=RETRY_AFTER[RATE])
            start = cursor

    def _download(self, remote: RemoteFile, own: dict[str, tuple[int, int]], folder: str, entry: Entry) -> Download:
        if entry.rel not in own:
            raise TransientError(f"{folder}/{entry.rel}: not in the account after the transfer",
                                 retry_after=RETRY_AFTER[RATE])
        fs_id = own[entry.rel][0]
        return Download(remote, lambda: self._dlink(fs_id), str(entry.fs_id))

    def _dlink(self, fs_id: int) -> Source:
        body = self._own(f"{XPAN}/multimedia", "filemetas", {
            "method": "filemetas", "fsids": json.dumps([fs_id]), "dlink": "1"}, str(fs_id))
        rows = [r for r in body.get("list") or [] if r.get("dlink")]
        if not rows:
            raise TransientError(f"filemetas gave no dlink for {fs_id}", retry_after=RETRY_AFTER[RATE])
        token = self._token()
        dlink = str(rows[0]["dlink"])
        return Source(f"{dlink}{'&' if '?' in dlink else '?'}access_token={token}", {"User-Agent": OPENAPI_UA})

    def _delete(self, folder: str) -> None:
        try:
            self._call("POST", f"{XPAN}/file", "filemanager", {"method": "filemanager", "opera": "delete"},
                       {"async": "0", "filelist": json.dumps([folder])})
        except TransientError as err:
            log.warning("could not delete %s from the Baidu account: %s", folder, err)
