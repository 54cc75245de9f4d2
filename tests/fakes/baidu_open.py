"""Baidu's open platform: OAuth on openapi.baidu.com (device code, single-use refresh tokens)
and xpan on pan.baidu.com (uinfo, file list/create, multimedia listall/filemetas), notes §3b."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .filehost import download_url, link_for
from .server import Request, Response, html_response, json_response
from .state import Account, Grant, Node, category
from .world import ACCESS_LIFETIME, World

LISTALL_MAX = 1000
FILEMETAS_MAX = 100


def oauth_error(error: str, description: str) -> Response:
    """OAuth errors as RFC 6749 §5.2 has them: HTTP 400 and an 'error' field."""
    return json_response({"error": error, "error_description": description}, 400)


class OAuthSite:
    """openapi.baidu.com."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        if request.path == "/oauth/2.0/device/code":
            return self.device_code(request)
        if request.path == "/oauth/2.0/token":
            return self.token(request)
        if request.path == "/device":
            return html_response("<html><body>请输入设备码 <input name=\"code\"></body></html>")
        return json_response({"error_code": 3, "error_msg": "Unsupported openapi method"}, 404)

    def device_code(self, request: Request) -> Response:
        app = self.world.apps.get(request.arg("client_id"))
        if app is None:
            return oauth_error("invalid_client", "unknown client id")
        grant = self.world.new_device_code(app)
        return json_response({"device_code": grant.device_code, "user_code": grant.user_code,
                              "verification_url": "https://openapi.baidu.com/device",
                              "qrcode_url": f"https://openapi.baidu.com/device/qrcode/{grant.user_code}/0",
                              "expires_in": int(grant.expires_at - self.world.clock.now()), "interval": 5})

    def token(self, request: Request) -> Response:
        form = request.form
        app = self.world.apps.get(form.get("client_id", ""))
        if app is None or form.get("client_secret") != app.secret_key:
            return oauth_error("invalid_client", "unknown client id or wrong client secret")
        kind = form.get("grant_type", "")
        with self.world.lock:
            if kind == "device_token":
                account, refused = self._device(form.get("code", ""), app.app_key)
            elif kind == "authorization_code":
                account, refused = self._code(form.get("code", ""), app.app_key)
            elif kind == "refresh_token":
                account, refused = self._refresh(form.get("refresh_token", ""), app.app_key)
            else:
                return oauth_error("unsupported_grant_type", f"grant_type {kind!r} is not faked")
            if account is None:
                return refused  # type: ignore[return-value]
            access, refresh = self.world.issue_tokens(app, account)
        return json_response({"expires_in": ACCESS_LIFETIME, "refresh_token": refresh, "access_token": access,
                              "session_secret": "", "session_key": "", "scope": "basic netdisk"})

    def _device(self, code: str, app_key: str) -> tuple[Account | None, Response | None]:
        grant = self.world.device_codes.get(code)
        if grant is None or grant.app.app_key != app_key:
            return None, oauth_error("invalid_grant", "Invalid device code")
        if grant.expires_at < self.world.clock.now():
            return None, oauth_error("expired_token", "device code expired")
        if grant.account is None:
            return None, oauth_error("authorization_pending", "User has not yet completed the authorization")
        del self.world.device_codes[code]  # a device code gives one pair
        return grant.account, None

    def _code(self, code: str, app_key: str) -> tuple[Account | None, Response | None]:
        grant = self.world.auth_codes.pop(code, None)  # an authorization code works once
        if grant is None or grant.app.app_key != app_key:
            return None, oauth_error("invalid_grant", "Invalid authorization code")
        return grant.account, None

    def _refresh(self, token: str, app_key: str) -> tuple[Account | None, Response | None]:
        grant = self.world.refresh_tokens.get(token)
        if grant is None or grant.app.app_key != app_key:
            return None, oauth_error("invalid_grant", "Invalid refresh token")
        if not grant.valid:  # single-use (notes §3b)
            return None, oauth_error("invalid_grant", "refresh token has been used")
        grant.valid = False
        return grant.account, None


def xpan_row(node: Node, path: str, with_dlink: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"fs_id": node.fs_id, "path": path, "server_filename": node.name, "size": node.size,
                           "isdir": int(node.isdir), "category": 6 if node.isdir else category(node.name),
                           "server_ctime": node.mtime, "server_mtime": node.mtime,
                           "local_ctime": node.mtime, "local_mtime": node.mtime}
    if not node.isdir and node.content is not None:
        row["md5"] = node.content.listing_md5
    if with_dlink is not None:
        row.update(filename=node.name, dlink=with_dlink)
    return row


def xpan_error(code: int, message: str = "") -> Response:
    return json_response({"errno": code, "errmsg": message, "request_id": int(time.time() * 1000)})


class Xpan:
    """pan.baidu.com/rest/2.0/xpan/…, authorised by ?access_token=."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        grant, code = self.world.token_grant(request.query.get("access_token", ""))
        if grant is None:
            return xpan_error(code, "Access token invalid or no longer valid")
        method = request.query.get("method", "")
        handler: Callable[[Request, Grant], Response] | None = {
            ("/rest/2.0/xpan/nas", "uinfo"): self.uinfo, ("/rest/2.0/xpan/file", "list"): self.list,
            ("/rest/2.0/xpan/file", "create"): self.create,
            ("/rest/2.0/xpan/file", "filemanager"): self.file_manager,
            ("/rest/2.0/xpan/multimedia", "listall"): self.listall,
            ("/rest/2.0/xpan/multimedia", "filemetas"): self.filemetas,
        }.get((request.path, method))
        if handler is None:
            return xpan_error(2, f"method {method} is not faked")
        with self.world.lock:
            return handler(request, grant)

    def uinfo(self, request: Request, grant: Grant) -> Response:
        account = grant.account
        return json_response({"errno": 0, "errmsg": "succ", "request_id": 1, "uk": account.uk,
                              "baidu_name": account.name, "netdisk_name": account.name, "avatar_url": "",
                              "vip_type": account.vip_type})

    def list(self, request: Request, grant: Grant) -> Response:
        folder_path = request.query.get("dir", "/")
        folder = grant.account.find(folder_path)
        if folder is None or not folder.isdir:
            return xpan_error(-9, "file does not exist")
        start, limit = int(request.query.get("start") or 0), min(1000, int(request.query.get("limit") or 1000))
        base = folder_path.rstrip("/")
        rows = [xpan_row(c, f"{base}/{c.name}") for c in folder.children][start:start + limit]
        return json_response({"errno": 0, "guid_info": "", "list": rows, "request_id": 1, "guid": 0})

    def file_manager(self, request: Request, grant: Grant) -> Response:
        """file?method=filemanager&opera=delete, form filelist=[paths] (the delete only)."""
        if request.query.get("opera") != "delete":
            return xpan_error(2, "only delete is faked")
        try:
            paths = [str(p) for p in json.loads(request.arg("filelist") or "[]")]
        except (ValueError, TypeError):
            return xpan_error(2, "filelist")
        info = [{"path": p, "errno": 0 if grant.account.delete(p) else -9} for p in paths]
        return json_response({"errno": 0, "info": info, "request_id": 1, "taskid": 0})

    def create(self, request: Request, grant: Grant) -> Response:
        path = request.arg("path")
        account = grant.account
        if not path.startswith("/"):
            return xpan_error(2, "path")
        if account.find(path) is not None:
            if request.arg("rtype", "0") == "0":
                return xpan_error(-8, "file already exists")
            path = f"{path.rstrip('/')}_{time.strftime('%Y%m%d_%H%M%S')}"  # rtype=1: renamed
        node = account.mkdir(path, self.world.ids.fs_id)
        return json_response({"errno": 0, "fs_id": node.fs_id, "category": 6, "path": path, "ctime": node.mtime,
                              "mtime": node.mtime, "isdir": 1, "name": path, "status": 0})

    def listall(self, request: Request, grant: Grant) -> Response:
        query = request.query
        top_path = query.get("path", "/")
        top = grant.account.find(top_path)
        if top is None or not top.isdir:
            return xpan_error(-9, "file does not exist")
        prefix = top_path.rstrip("/")
        if query.get("recursion") == "1":
            rows = [(p, n) for child in top.children for p, n in child.walk(prefix)]
        else:
            rows = [(f"{prefix}/{c.name}", c) for c in top.children]
        start, limit = int(query.get("start") or 0), min(LISTALL_MAX, int(query.get("limit") or LISTALL_MAX))
        page = rows[start:start + limit]
        return json_response({"errno": 0, "request_id": 1, "has_more": int(start + limit < len(rows)),
                              "cursor": start + len(page), "list": [xpan_row(n, p) for p, n in page]})

    def filemetas(self, request: Request, grant: Grant) -> Response:
        try:
            wanted = [int(f) for f in json.loads(request.query.get("fsids", "[]"))]
        except (ValueError, TypeError):
            return xpan_error(2, "fsids")
        if not wanted or len(wanted) > FILEMETAS_MAX:
            return xpan_error(2, "fsids: 1 to 100")
        account = grant.account
        by_id = {node.fs_id: (path, node) for path, node in account.files().items()}
        rows = []
        for fs_id in wanted:
            if fs_id not in by_id:
                return xpan_error(42213, "file does not exist")  # a missing fsid fails the whole call
            path, node = by_id[fs_id]
            dlink = None
            if request.query.get("dlink") == "1" and not node.isdir:
                dlink = download_url(link_for(self.world, node, account, "dlink"), node, account.uk)
            rows.append(xpan_row(node, path, dlink))
        return json_response({"errmsg": "succ", "errno": 0, "list": rows, "names": {}, "request_id": "1"})
