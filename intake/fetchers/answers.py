"""What a file host's answer says, read from its headers and first bytes: the md5 it
claims, the range it sends, a JSON refusal, the blocked-content stand-in."""

from __future__ import annotations

import base64
import binascii
import re

import requests

from intake.fetchers.base import LinkGone

STAND_INS = {(1749504, "48bb9b0361dc9c672f3dc7b3ffcfde97")}  # Baidu's "温馨提示" video for blocked content
STAND_IN_SMALL = (120, "6c1b8491")  # the 120-byte text stand-in (md5 prefix as published)
SNIFF = 4096  # a JSON answer of at most this many bytes may be a file host's error


def stand_in(size: int | None, *md5s: str | None) -> bool:
    """The blocked-content stand-in, told by its size and an md5: of the bytes, or the one
    the file host or the listing claims (the stand-in's own md5 is known, its bytes vary)."""
    return any((size, md5) in STAND_INS or (size, (md5 or "")[:8]) == STAND_IN_SMALL for md5 in md5s if md5)


def blocked(path: str) -> LinkGone:
    return LinkGone(f"链接中的文件“{path}”已被百度网盘屏蔽（下载得到的是“温馨提示”替代文件），无法获取。"
                    "请将材料直接作为附件发送，或更换文件后重新分享并发送新的链接。")


def expected_md5(response: requests.Response) -> str | None:
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


def content_range(response: requests.Response) -> tuple[int, int, int | None] | None:
    match = re.fullmatch(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def sniff(response: requests.Response) -> tuple[bytes, bool]:
    """(the first bytes of a body that may be a JSON error, whether they are all of it).
    A body announced longer than SNIFF is not looked at (b"", False)."""
    length = response.headers.get("Content-Length")
    if length is not None and (not length.isdigit() or int(length) > SNIFF):
        return b"", False
    body = response.raw.read(SNIFF + 1, decode_content=True) or b""
    return body, len(body) <= SNIFF


def refusal_body(response: requests.Response) -> bytes:
    """A 4xx answer's body, when small (an unreadable one says no more than its status)."""
    try:
        return sniff(response)[0]
    except Exception:  # noqa: BLE001 - any failure to read an error body leaves the status alone
        return b""


def error_code(body: bytes | None) -> int | None:
    """The non-zero errno/error_code of a JSON error body (a file host's refusal)."""
    match = re.search(rb'"(?:error_code|errno)"\s*:\s*"?(-?\d+)', body or b"")
    return int(match.group(1)) if match and int(match.group(1)) != 0 else None


def host_tag(response: requests.Response) -> str | None:
    return response.headers.get("ETag") or response.headers.get("Content-MD5") or None
