"""The ``cookie`` route: a staff account's BDUSS + STOKEN (INTAKE_BAIDU_COOKIE).

share page + share/verify (BDCLND) → share/list (100 a page, every folder) → bdstoken →
a folder unique to the message (a retry finds its earlier transfer: "already exists",
-30, counts as done) → share/transfer (Referer set, async; split by sub-folder over the
file-count limit) → share/taskquery (``errno`` and ``task_errno``) → PCS locatedownload
(rand/devuid signed) → download → the transferred copy deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intake.fetchers.base import DownloadLimits, Fetched, LinkGone, Progress, SenderProblem, finding_for
from intake.fetchers.baidu_share import (EXISTS, RATE, RETRY_AFTER, Missing, ShareRef, StaleSign, TooManyFiles,
                                         check, errno_of, share_ref)
from intake.fetchers.baidu_web import PAN, Entry, ShareInfo, ShareWeb, require_whole
from intake.fetchers.download import Download, Downloader, Source, preflight
from intake.fetchers.http import NETDISK_UA, Http
from intake.fetchers.locks import AccountLock, account_name
from intake.fetchers.transfer_plan import listing, message_folder, transfer_all
from intake.kernel.errors import ConfigError, TransientError
from intake.parsers.links import Link

log = logging.getLogger("intake.fetchers")
PCS = "https://pcs.baidu.com/rest/2.0/pcs/file"
SIGN_KEY = "ebrcUYiuxaZv2XGu7KIYKxUrqfnOfpDF"  # the 32-character key of the locatedownload sign
SETTING = "INTAKE_BAIDU_COOKIE"
POLLS = 300  # taskquery polls (a second apart) before a transfer counts as stuck
DEFAULT_INBOX = "/intake-inbox"


def parse_cookie(text: str | None) -> dict[str, str]:
    """``BDUSS=…; STOKEN=…; …`` as configured; BDUSS and STOKEN are required."""
    cookies: dict[str, str] = {}
    for pair in (text or "").replace("\n", ";").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name.strip():
            cookies[name.strip()] = value.strip()
    missing = [name for name in ("BDUSS", "STOKEN") if not cookies.get(name)]
    if missing:
        raise ConfigError(f"{SETTING}: {' and '.join(missing)} missing; copy the cookie string of a logged-in "
                          "pan.baidu.com page (BDUSS=…; STOKEN=…)")
    return cookies


def locate_sign(bduss: str, uid: str, when: int) -> dict[str, str]:
    """time, rand and devuid of a locatedownload request: devuid = MD5(BDUSS) upper-cased
    + "|0"; rand = SHA1(hex SHA1(BDUSS) + uid + key + time + devuid)."""
    devuid = hashlib.md5(bduss.encode()).hexdigest().upper() + "|0"
    seed = hashlib.sha1(bduss.encode()).hexdigest() + uid + SIGN_KEY + str(when) + devuid
    return {"time": str(when), "rand": hashlib.sha1(seed.encode()).hexdigest(), "devuid": devuid, "cuid": devuid}


class CookieFetcher:
    provider = "baidu"

    def __init__(self, http: Http, cookie: str | None, *, inbox: str | None = None,
                 lock_folder: Path | None = None, pause: Callable[[float], None] = time.sleep) -> None:
        self.http, self.pause = http, pause
        self.cookies = parse_cookie(cookie)
        self.inbox = inbox or DEFAULT_INBOX
        self.lock = AccountLock(f"baidu-{account_name(self.cookies['BDUSS'])}", lock_folder)
        self.headers = {"User-Agent": NETDISK_UA}

    def fetch(self, link: Link, dest: Path, limits: DownloadLimits, progress: Progress | None = None,
              *, key: str | None = None) -> Fetched:
        ref = share_ref(link)
        shown: list = []
        try:
            bdstoken, uk = self._account()
            web = ShareWeb(self.http, ref, self.cookies)
            info = web.list_tree(web.open())
            require_whole(info, ref.url)
            files = info.files()
            shown = listing(files)
            preflight(shown, dest, limits)
            folder = message_folder(self.inbox, key, dest, ref.url)
            self._transfer(ref, web, info, bdstoken, folder)
            downloads = [self._download(entry, remote, f"{folder}/{entry.rel}", uk)
                         for entry, remote in zip(files, shown)]
            fetched, problems = Downloader(self.http, self.lock, pause=self.pause).fetch_all(
                downloads, dest, limits, progress)
        except SenderProblem as problem:
            return Fetched([], shown, [finding_for(problem)])
        self._delete(folder, bdstoken)
        return Fetched(fetched, shown, [finding_for(p) for p in problems])

    def _get(self, url: str, endpoint: str, **options: Any) -> dict[str, Any]:
        body = self.http.json("GET", url, headers=self.headers, cookies=self.cookies, **options)
        check(endpoint, body, setting=SETTING)
        return body

    def account(self) -> tuple[str, str]:
        """bdstoken and uk of the logged-in account (`intake doctor`: is the cookie alive?)."""
        return self._account()

    def _account(self) -> tuple[str, str]:
        """bdstoken and uk; a dead cookie stops here (getinfo errno 2, or -6)."""
        self._get(f"{PAN}/api/user/getinfo", "getinfo", params={"need_selfinfo": "1"})
        fields = json.dumps(["bdstoken", "token", "uk", "isdocuser", "servertime"])
        body = self._get(f"{PAN}/api/gettemplatevariable", "templatevariable",
                         params={"clienttype": "0", "web": "1", "fields": fields})
        result = body.get("result") or {}
        if not result.get("bdstoken"):
            raise TransientError(f"{SETTING}: pan.baidu.com gave no bdstoken (is the cookie complete?)",
                                 retry_after=RETRY_AFTER["auth"])
        return str(result["bdstoken"]), str(result.get("uk") or "")

    def _post(self, path: str, endpoint: str, params: dict[str, str], form: dict[str, str],
              headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None) -> dict[str, Any]:
        body = self.http.json("POST", f"{PAN}{path}", params={**params, "channel": "chunlei", "web": "1",
                                                                "clienttype": "0"},
                              data=form, headers={**self.headers, **(headers or {})}, cookies=cookies or self.cookies)
        return body

    def _mkdir(self, path: str, bdstoken: str) -> None:
        body = self._post("/api/create", "create", {"a": "commit", "bdstoken": bdstoken},
                          {"path": path, "isdir": "1", "block_list": "[]"})
        check("create", body, setting=SETTING)

    def _transfer(self, ref: ShareRef, web: ShareWeb, info: ShareInfo, bdstoken: str, folder: str) -> None:
        self._mkdir(folder, bdstoken)
        transfer_all(info.top, lambda sub, entries: self._transfer_batch(
            ref, web, info, bdstoken, f"{folder}/{sub}" if sub else folder, entries),
            lambda sub: self._mkdir(f"{folder}/{sub}", bdstoken), self.pause, ref.url)

    def _transfer_batch(self, ref: ShareRef, web: ShareWeb, info: ShareInfo, bdstoken: str, target: str,
                        entries: list[Entry]) -> None:
        params = {"shareid": info.shareid, "from": info.uk, "bdstoken": bdstoken, "async": "1"}
        form = {"fsidlist": json.dumps([e.fs_id for e in entries]), "path": target}
        headers = {"Referer": ref.page_url, "X-Requested-With": "XMLHttpRequest", "Origin": "https://pan.baidu.com"}
        body = self._post("/share/transfer", "transfer", params, form, headers, web.cookies)
        if self._transferred(body, ref):
            return
        task = body.get("task_id") or body.get("taskid")
        if task:
            self._wait(str(task), "transfer", ref.url)

    def _transferred(self, body: dict[str, Any], ref: ShareRef) -> bool:
        """True when nothing more is to be done (done at once, or already there)."""
        code = errno_of(body)
        if code == 12:
            info = body.get("info") or []
            codes = {errno_of(item) for item in info if isinstance(item, dict)} - {0}
            if codes and codes <= {-30}:
                return True  # every entry is already in the folder: an earlier attempt's transfer
            nums, limit = body.get("target_file_nums"), body.get("target_file_nums_limit")
            if nums is not None and limit is not None and int(nums) > int(limit):
                raise TooManyFiles(int(limit))
            if codes:
                check("transfer", {"errno": sorted(codes - {-30}, key=str)[0]}, ref.url, SETTING)
        return check("transfer", body, ref.url, SETTING) == EXISTS

    def _wait(self, task: str, endpoint: str, url: str) -> None:
        """share/taskquery until the task ends; both errno and task_errno are read."""
        for _ in range(POLLS):
            body = self.http.json("GET", f"{PAN}/share/taskquery", params={"taskid": task, "channel": "chunlei",
                                                                            "web": "1", "clienttype": "0"},
                                  headers=self.headers, cookies=self.cookies)
            check("taskquery", body, url, SETTING)
            task_errno = errno_of({"errno": body.get("task_errno")})
            if task_errno != 0 and check(endpoint, {"errno": task_errno}, url, SETTING) == EXISTS:
                return  # what the task copies is already there: an earlier attempt's
            status = str(body.get("status") or "")
            if status == "success":
                return
            if status == "failed":
                raise TransientError(f"{endpoint} task {task} failed", retry_after=RETRY_AFTER[RATE])
            self.pause(1.0)
        raise TransientError(f"{endpoint} task {task} still running after {POLLS} polls",
                             retry_after=RETRY_AFTER[RATE])

    def _download(self, entry: Entry, remote: Any, path: str, uid: str) -> Download:
        return Download(remote, lambda: self._locate(path, uid), str(entry.fs_id))

    def _locate(self, path: str, uid: str) -> Source:
        """A download URL for a file of the account (PCS locatedownload), signed anew each time."""
        for attempt in range(2):
            params = {"method": "locatedownload", "app_id": "250528", "ver": "4.0", "clienttype": "17",
                      "channel": "0", "apn_id": "1_0", "check_blue": "1", "es": "1", "esl": "1", "freeisp": "0",
                      "queryfree": "0", "use": "0", "path": path,
                      **locate_sign(self.cookies["BDUSS"], uid, int(time.time()))}
            body = self.http.json("POST", PCS, params=params, headers=self.headers, cookies=self.cookies)
            try:
                check("locatedownload", body, setting=SETTING)
            except StaleSign:  # sign again
                if attempt:
                    raise
                continue
            except Missing:  # 31066/31297: our transferred copy is missing, not the sender's share
                if attempt:
                    raise TransientError(f"locatedownload: our copy {path} is missing from the account; "
                                         "transferring again at the next attempt",
                                         retry_after=RETRY_AFTER[RATE]) from None
                continue  # looked for once more
            return self._pick(body, path)
        raise AssertionError("unreachable")

    def _pick(self, body: dict[str, Any], path: str) -> Source:
        urls = [u for u in body.get("urls") or [] if isinstance(u, dict) and str(u.get("encrypt", 0)) == "0"]
        hosts = [u["url"] for u in urls if u.get("url") and "//nb.cache" not in u["url"]]
        if not hosts:
            raise TransientError(f"locatedownload gave no usable URL for {path}", retry_after=RETRY_AFTER[RATE])
        if "issuecdn.baidupcs.com" in hosts[0]:
            raise LinkGone(f"百度网盘分享中的文件“{path.rsplit('/', 1)[-1]}”已被百度网盘屏蔽，无法下载。"
                           "请将材料直接作为附件发送。")
        return Source(hosts[0], dict(self.headers), {"BDUSS": self.cookies["BDUSS"]})

    def _delete(self, folder: str, bdstoken: str) -> None:
        """The transferred copy goes once downloaded; a failure only costs account space."""
        try:
            body = self._post("/api/filemanager", "filemanager", {"opera": "delete", "async": "2",
                                                                  "bdstoken": bdstoken},
                              {"filelist": json.dumps([folder])})
            check("filemanager", body, setting=SETTING)
            task = body.get("taskid") or body.get("task_id")
            if task:
                self._wait(str(task), "filemanager", "")
        except TransientError as err:
            log.warning("could not delete %s from the Baidu account: %s", folder, err)
