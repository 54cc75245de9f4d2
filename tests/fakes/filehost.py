"""Downloads: serving content with Range, Baidu's PCS locatedownload and its file host
(d.pcs.baidu.com, plus issuecdn.baidupcs.com for blocked files)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from .content import STANDIN, Content
from .server import Request, Response, json_response, redirect
from .state import Account, Link, Node
from .world import World

NETDISK_UA_MARK = "netdisk"          # the cookie route's links want the netdisk client's User-Agent
OPENAPI_UA = "pan.baidu.com"         # OpenAPI dlinks want exactly this User-Agent
FILE_HOST = "d.pcs.baidu.com"
ISSUE_HOST = "issuecdn.baidupcs.com"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


UNSATISFIABLE = (-1, -1)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """[start, end) for a Range header; None for no range; UNSATISFIABLE (416) when it cannot be served."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # a form we do not serve ranges for: the whole body, as servers do
    first, last = match.groups()
    if not first and not last:
        return UNSATISFIABLE
    if not first:  # bytes=-N: the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        return UNSATISFIABLE
    return start, end


def serve_content(request: Request, content: Content, name: str, *, disposition: str = "baidu",
                  headers: Iterable[tuple[str, str]] = (), md5: str | None = None) -> Response:
    """200 or 206 with Baidu's headers. disposition 'baidu': a URL-encoded filename; 'raw':
    the UTF-8 bytes of the name inside the quotes (163's large attachments)."""
    size = content.size
    md5 = md5 or content.md5
    shown = quote(name) if disposition == "baidu" else name
    common = [("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream"),
              ("x-bs-file-size", str(size)), ("Content-MD5", md5), ("ETag", md5),
              ("Content-Disposition", f'attachment;filename="{shown}"'), *headers]
    wanted = byte_range(request.header("Range"), size)
    if wanted == UNSATISFIABLE:
        return Response(416, [("Content-Range", f"bytes */{size}"), *common], b"")
    if wanted is None:
        return Response(200, [("Content-Length", str(size)), *common], stream=content.chunks(0, size))
    start, end = wanted
    return Response(206, [("Content-Length", str(end - start)),
                          ("Content-Range", f"bytes {start}-{end - 1}/{size}"), *common],
                    stream=content.chunks(start, end))


def not_authorized(hitcode: int = 119) -> Response:
    return json_response({"error_code": 31326, "error_msg": f"user is not authorized, hitcode:{hitcode}",
                          "request_id": 9012345678901234567}, 403)


class FileHost:
    """d.pcs.baidu.com: /file/<token> for locatedownload URLs and dlinks (a dlink answers 302
    to /data/<token>), and issuecdn.baidupcs.com, which serves the "温馨提示" stand-in."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        if request.host == ISSUE_HOST:
            return self._serve(request, None, STANDIN, "温馨提示.mp4")
        parts = request.path.strip("/").split("/")
        link = self.world.links.get(parts[-1]) if len(parts) == 2 and parts[0] in ("file", "data") else None
        if link is None or link.kind not in ("pcs", "dlink"):
            return json_response({"error_code": 31066, "error_msg": "file does not exist"}, 404)
        refused = self._refusal(request, link)
        if refused is not None:
            return refused
        if link.kind == "dlink" and parts[0] == "file":
            query = {k: v for k, v in request.query.items() if k != "access_token"}
            return redirect(f"https://{FILE_HOST}/data/{link.token}?{urlencode(query)}")
        return self._serve(request, link, link.content, link.name)

    def _refusal(self, request: Request, link: Link) -> Response | None:
        world = self.world
        if link.kind == "pcs":
            cookies = request.cookies
            if NETDISK_UA_MARK not in request.user_agent or link.account is None \
                    or cookies.get("BDUSS") != link.account.bduss:
                return not_authorized()
        else:
            if request.user_agent != OPENAPI_UA:
                return not_authorized()
            if request.path.startswith("/file/"):
                grant, _ = world.token_grant(request.query.get("access_token", ""))
                if grant is None or grant.account is not link.account:
                    return not_authorized(hitcode=122)
        with world.lock:
            counted = request.path.startswith("/data/") or link.kind == "pcs"
            if counted and world.expire_after_requests is not None \
                    and link.requests >= world.expire_after_requests:
                link.expired = True
            if link.expired:
                return self._expired()
            if counted:
                link.requests += 1
        return None

    def _expired(self) -> Response:
        if self.world.expire_answer == "403":
            return Response(403, [("Content-Type", "text/html")], b"<html><body>403 Forbidden</body></html>")
        return json_response({"error_code": 31360, "error_msg": "expire time out",
                              "request_id": 9012345678901234568}, 403)

    def _serve(self, request: Request, link: Link | None, content: Content, name: str) -> Response:
        world = self.world
        response = serve_content(request, content, name)
        length = int(response.header("Content-Length") or 0)
        if world.max_range is not None and response.status in (200, 206) and length > world.max_range:
            return not_authorized(hitcode=211)
        if link is not None and world.expire_after_bytes is not None and response.status in (200, 206):
            left = max(0, world.expire_after_bytes - link.bytes_sent)
            if left < length:  # the link dies mid-body: the connection drops where it does
                response.cut_after = left
        response.on_bytes = lambda sent: self._count(link, sent)
        return response

    def _count(self, link: Link | None, sent: int) -> None:
        world = self.world
        with world.lock:
            world.bytes_served += sent
            if link is None:
                return
            link.bytes_sent += sent
            if world.expire_after_bytes is not None and link.bytes_sent >= world.expire_after_bytes:
                link.expired = True


def download_url(link: Link, node: Node, uk: int) -> str:
    """The URL a client is handed: it names the real host (the client's host map sends it here)."""
    query = urlencode({"fid": f"{uk}-250528-{node.fs_id}", "rt": "pr", "sign": "FDtAERV-DCb740ccc5511e5e8fedcff06b081203-"
                       + link.token[:20], "expires": "8h", "chkv": "1", "chkbd": "0", "chkpc": "",
                       "dp-logid": "8765432109876543210", "dp-callid": "0", "r": "123456789", "sh": "1"})
    return f"https://{FILE_HOST}/file/{link.token}?{query}"


def link_for(world: World, node: Node, account: Account, kind: str) -> Link:
    """A fresh link to a file of the account; a blocked file's link serves the stand-in."""
    content = STANDIN if node.blocked else node.content
    assert content is not None
    return world.new_link(content, "温馨提示.mp4" if node.blocked else node.name, kind, account)


class PcsSite:
    """pcs.baidu.com: locatedownload for the cookie route."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        if request.path != "/rest/2.0/pcs/file" or request.query.get("method") != "locatedownload":
            return json_response({"error_code": 3, "error_msg": "Unsupported openapi method"}, 400)
        account = self.world.account_by_cookies(request.cookies, need_stoken=False)
        if account is None:
            return json_response({"error_code": 31045, "error_msg": "user not exists"}, 403)
        path = request.arg("path")
        node = account.find(path)
        if node is None or node.isdir:
            return json_response({"error_code": 31066, "error_msg": "file does not exist"}, 404)
        if node.blocked:  # Baidu points blocked content at its issue CDN ([Py])
            urls = [{"url": f"https://{ISSUE_HOST}/issue/netdisk/ts_ad/help/%E6%B8%A9%E9%A6%A8%E6%8F%90%E7%A4%BA.mp4",
                     "encrypt": 0, "rank": 1}]
        else:
            link = link_for(self.world, node, account, "pcs")
            real: dict[str, Any] = {"url": download_url(link, node, account.uk), "encrypt": 0, "rank": 3}
            urls = [real]
            if self.world.locate_decoys:  # a client must take encrypt == 0 and skip nb.cache hosts
                urls = [{"url": real["url"].replace(FILE_HOST, "encrypted.baidupcs.com"), "encrypt": 1, "rank": 1},
                        {"url": real["url"].replace(FILE_HOST, "nb.cache.baidupcs.com"), "encrypt": 0, "rank": 2},
                        real]
        return json_response({"client_ip": "127.0.0.1", "urls": urls, "rank_param": {"max_continuous_failure": 5},
                              "max_timeout": 30, "min_timeout": 5, "server_time": int(self.world.clock.now()),
                              "request_id": 8123456789012345678, "sl": 0})
