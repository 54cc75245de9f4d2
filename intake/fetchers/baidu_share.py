"""Baidu share links and pages, and Baidu's error codes: one table, keyed by endpoint.

errno values mean different things at different endpoints (-8 is "share expired" after
share/verify but "already exists" after a create), so every lookup names its endpoint;
the ``*`` row holds what means the same everywhere. ``check`` turns an answer into what
the daemon does: nothing (success, or "already exists"), a finding for the sender
(``WrongCode``/``LinkGone``), or our own error with the retry-after of the notes' table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from intake.fetchers.base import LinkGone, WrongCode
from intake.kernel.errors import ConfigError, TransientError
from intake.parsers.links import Link

HOURS, MINUTES = 3600.0, 60.0

# what an errno means (the notes' §4 table)
CODE_WRONG, GONE, EXPIRED, BLOCKED, MISSING = "code_wrong", "gone", "expired", "blocked", "missing"
RISK, AUTH, CAPABILITY, QUOTA = "risk", "auth", "capability", "quota"
TOO_MANY, EXISTS, RATE, THROTTLED = "too_many", "exists", "rate", "throttled"
STALE_SIGN, LINK_EXPIRED, SIGN_ERROR = "stale_sign", "link_expired", "sign_error"

ERRORS: dict[str, dict[int | str, str]] = {
    "*": {
        105: GONE, -7: GONE, -21: GONE, 115: GONE, 116: GONE, 13000: GONE, 13001: GONE, 13004: GONE,
        31390: BLOCKED,
        -62: RISK, -19: RISK, -20: RISK, 132: RISK, 8001: RISK, 9019: RISK,
        -6: AUTH, -4: AUTH, 31045: AUTH, 110: AUTH, 111: AUTH, "invalid_grant": AUTH, "expired_token": AUTH,
        "invalid_token": AUTH,
        13998: CAPABILITY, "invalid_scope": CAPABILITY, "invalid_client": CAPABILITY,
        -32: QUOTA, -10: QUOTA, 20: QUOTA, 31112: QUOTA,
        120: TOO_MANY, 130: TOO_MANY, -33: TOO_MANY, 13072: TOO_MANY, 13073: TOO_MANY,
        31034: RATE, 42000: RATE, "Trigger security policy": RATE, 1504: RATE, 13070: RATE, 13071: RATE,
        2: RATE, 4: RATE,
        31326: THROTTLED, 31626: THROTTLED,
        112: STALE_SIGN, 113: STALE_SIGN,
        31360: LINK_EXPIRED,
        31362: SIGN_ERROR,
        31066: MISSING, 31297: MISSING,
    },
    "verify": {-9: CODE_WRONG, -12: CODE_WRONG, -8: EXPIRED},
    "apaas_verify": {13003: CODE_WRONG},
    "apaas_list": {13003: CODE_WRONG},
    "apaas_transfer": {13003: CODE_WRONG, -30: EXISTS, 12: TOO_MANY},
    "getinfo": {2: AUTH},
    "transfer": {-30: EXISTS, 4: EXISTS, 12: TOO_MANY},
    "create": {-8: EXISTS},
    "xpan_create": {-8: EXISTS},
    "xpan_list": {-9: MISSING},
}

RETRY_AFTER = {RISK: 6 * HOURS, AUTH: 6 * HOURS, QUOTA: 6 * HOURS, RATE: 10 * MINUTES,
               THROTTLED: 30 * MINUTES, STALE_SIGN: 5 * MINUTES, LINK_EXPIRED: 5 * MINUTES, "unknown": 30 * MINUTES}


class TooManyFiles(Exception):
    """A transfer over the account's file-count limit: split it by sub-folder."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(f"over the transfer limit ({limit})")
        self.limit = limit


class Missing(LinkGone):
    """31066/31297/-9 "no such file": the sender's when a share is listed, ours when it
    is asked about our own transferred copy (the routes turn it into a TransientError)."""


class AuthDead(TransientError):
    """The session or token is dead: a token refresh may help once, else staff log in again."""


class StaleSign(TransientError):
    """A sign/time pair is stale: sign again and retry."""


def errno_of(body: dict[str, Any]) -> int | str:
    """The error of an answer: errno, error_code, an OAuth ``error``; 0 for success."""
    for name in ("errno", "error_code"):
        value = body.get(name)
        if value not in (None, "", 0, "0"):
            try:
                return int(value)
            except (TypeError, ValueError):
                return str(value)
    return str(body["error"]) if body.get("error") else 0


def kind_of(endpoint: str, code: int | str) -> str | None:
    specific = ERRORS.get(endpoint, {})
    return specific[code] if code in specific else ERRORS["*"].get(code)


def check(endpoint: str, body: dict[str, Any], url: str = "", setting: str = "INTAKE_BAIDU_COOKIE") -> str | None:
    """None for success, ``EXISTS`` when what we asked for is already there; otherwise raise."""
    code = errno_of(body)
    if code == 0:
        return None
    kind = kind_of(endpoint, code)
    if kind == EXISTS:
        return EXISTS
    raise error_for(kind, endpoint, code, url, setting, body)


def error_for(kind: str | None, endpoint: str, code: int | str, url: str, setting: str,
              body: dict[str, Any] | None = None) -> Exception:
    said = f"{endpoint}: errno {code}"
    shown = url or "该链接"
    if kind == CODE_WRONG:
        return WrongCode(f"百度网盘链接 {shown} 的提取码不正确或缺失。请核对后重新发送链接和正确的提取码。")
    gone = (f"百度网盘链接 {shown} 已失效（分享已取消、删除或不存在）。"
            "请重新分享后发送新的链接和提取码，或将材料直接作为附件发送。")
    if kind == MISSING:
        return Missing(gone)
    if kind == GONE:
        return LinkGone(gone)
    if kind == EXPIRED:
        return LinkGone(f"百度网盘链接 {shown} 的分享已过期。请重新分享（有效期请选择“永久有效”）后发送新的链接和提取码。")
    if kind == BLOCKED:
        return LinkGone(f"百度网盘链接 {shown} 中的内容已被百度网盘屏蔽，无法下载。请将材料直接作为附件发送。")
    if kind == TOO_MANY:
        limit = (body or {}).get("target_file_nums_limit")
        return TooManyFiles(int(str(limit)) if str(limit or "").isdigit() else None)
    if kind == CAPABILITY:
        return ConfigError(f"{said}: the OpenAPI app lacks the share capability or its keys are wrong; "
                           "check INTAKE_BAIDU_APP_KEY / INTAKE_BAIDU_SECRET_KEY / INTAKE_BAIDU_APP_ID")
    if kind == SIGN_ERROR:
        return ConfigError(f"{said}: sign error: the User-Agent or cookie does not match; check {setting}")
    if kind == AUTH:
        return AuthDead(f"{said}: the Baidu login is no longer valid; renew {setting}"
                        f"{' (intake netdisk login)' if 'APP' in setting else ''}", retry_after=RETRY_AFTER[AUTH])
    if kind == STALE_SIGN:
        return StaleSign(f"{said}: stale sign", retry_after=RETRY_AFTER[STALE_SIGN])
    texts = {RISK: "captcha or risk control: a person must log in to the account in a browser",
             QUOTA: "the account is out of space: free some space in it",
             RATE: "rate limited", THROTTLED: "downloads throttled or the account/address blocked",
             LINK_EXPIRED: "the download link expired"}
    kind = kind or "unknown"
    return TransientError(f"{said}: {texts.get(kind, 'unknown error')}", retry_after=RETRY_AFTER[kind])


@dataclass
class ShareRef:
    """A Baidu share as the fetchers use it."""
    url: str  # https://pan.baidu.com/s/1… (as the contract reports it)
    surl: str = ""  # the /s/ ID without its leading 1, as share/init?surl= has it
    shareid: str = ""  # the old share/link?shareid=&uk= form
    uk: str = ""
    codes: list[str] = field(default_factory=list)  # candidates in the order to try

    @property
    def short_id(self) -> str:
        return "1" + self.surl

    @property
    def init_url(self) -> str:
        return f"https://pan.baidu.com/share/init?surl={self.surl}"

    @property
    def page_url(self) -> str:
        if self.surl:
            return f"https://pan.baidu.com/s/{self.short_id}"
        return f"https://pan.baidu.com/share/link?shareid={self.shareid}&uk={self.uk}"


_CODE = re.compile(r"[A-Za-z0-9]{4}")


def share_ref(link: Link) -> ShareRef:
    """A share from a link: a code in the URL (``?pwd=``) is tried first, then the code
    bound to the link in the text (``link.code``) when the two differ."""
    parts = urlsplit(link.url if "://" in link.url else f"https://{link.url}")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    codes = [c for c in (query.get("pwd"), link.code) if c and _CODE.fullmatch(c)]
    codes = list(dict.fromkeys(codes))
    match = re.match(r"/(?:s|e)/1([A-Za-z0-9_-]+)", parts.path)
    if match:
        surl = match.group(1)
    elif query.get("surl"):
        surl = query["surl"].removeprefix("1") if len(query["surl"]) == 23 else query["surl"]
    else:
        surl = ""
    url = f"https://pan.baidu.com/s/1{surl}" if surl else link.url.split("?pwd=")[0]
    return ShareRef(url, surl, query.get("shareid", ""), query.get("uk", ""), codes)


# --- the share page ------------------------------------------------------------------

_DEAD_MARKS = ("platform-non-found", "error-404", "share_nofound_des")
_DATA_STARTS = re.compile(r"(?:yunData\.setData|locals\.mset)\(\s*(?=\{)|try\s*\{\s*(?=\{)")


def page_is_dead(text: str, final_url: str) -> bool:
    """The dead-share page: its marks count only on a page without the share's data, and
    outside any embedded JSON (the sender's file names are in the data and the title: a
    file may well be called 'error-404…')."""
    if urlsplit(final_url).path.startswith("/error"):
        return True
    data = page_data(text)
    if data is not None and (data.get("shareid") or page_files(data)):
        return False  # a share's data: the page is alive, whatever its title or names say
    return any(mark in _outside_data(text) for mark in _DEAD_MARKS)


def _outside_data(text: str) -> str:
    """The page without its embedded JSON objects."""
    decoder = json.JSONDecoder()
    kept, position = [], 0
    for match in _DATA_STARTS.finditer(text):
        if match.start() < position:
            continue
        try:
            _, end = decoder.raw_decode(text, match.end())
        except ValueError:
            continue
        kept.append(text[position:match.end()])
        position = end
    kept.append(text[position:])
    return "".join(kept)


def page_data(text: str) -> dict[str, Any] | None:
    """The JSON a share page embeds: ``locals.mset({...})``, ``yunData.setData({...})``
    or ``try{ {...}; }catch(ex){}``; the one that says something about the share."""
    decoder = json.JSONDecoder()
    for match in _DATA_STARTS.finditer(text):
        try:
            data, _ = decoder.raw_decode(text, match.end())
        except ValueError:
            continue
        if isinstance(data, dict) and ("shareid" in data or "loginstate" in data or "file_list" in data):
            return data
    return None


def page_files(data: dict[str, Any]) -> list[dict[str, Any]]:
    """file_list as an array or as {"list": [...]}."""
    files = data.get("file_list") or []
    if isinstance(files, dict):
        files = files.get("list") or []
    return [f for f in files if isinstance(f, dict)]


def fs_id(value: Any) -> int:
    """fs_ids are 64-bit: never through a float."""
    return int(str(value))
