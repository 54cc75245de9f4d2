"""163 large attachments (mail-163.md §3): fs.mail.163.com's fs_dl_f_a service and its
download path, 网易邮箱大师's dashi.163.com prepare2, and mail.163.com's landing page and
newer filehub prepare. All undocumented endpoints, shaped as public downloaders use them."""

from __future__ import annotations

from typing import Any

from .filehost import serve_content
from .server import Request, Response, html_response, json_response
from .state import Attachment
from .world import World

FS_HOST = "fs.mail.163.com"


def mail_download(world: World, request: Request, token: str) -> Response:
    """A download URL handed out for a large attachment (163 or QQ). It obeys the
    ``expire_links`` switches as the Baidu file host does, answering a dead link as a
    signed-URL store does (HTTP 403, an XML AccessDenied)."""
    link = world.links.get(token)
    if link is None or link.kind != "mail":
        return Response(404, [("Content-Type", "text/html")], b"<html><body>404 Not Found</body></html>")
    with world.lock:
        if world.expire_after_requests is not None and link.requests >= world.expire_after_requests:
            link.expired = True
        if link.expired:
            return Response(403, [("Content-Type", "application/xml")],
                            b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
        link.requests += 1
    response = serve_content(request, link.content, link.name, disposition="raw")
    length = int(response.header("Content-Length") or 0)
    if world.expire_after_bytes is not None and response.status in (200, 206):
        left = max(0, world.expire_after_bytes - link.bytes_sent)
        if left < length:  # the link dies mid-body: the connection drops where it does
            response.cut_after = left

    def count(sent: int) -> None:
        with world.lock:
            world.bytes_served += sent
            link.bytes_sent += sent
            if world.expire_after_bytes is not None and link.bytes_sent >= world.expire_after_bytes:
                link.expired = True

    response.on_bytes = count
    return response


class NeteaseSite:
    """One site for fs.mail.163.com, dashi.163.com and mail.163.com (told apart by host)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def attachment(self, key: str) -> Attachment | None:
        return self.world.attachments.get(key)

    def download_url(self, attachment: Attachment) -> str:
        link = self.world.new_link(attachment.content, attachment.name, "mail")
        return f"https://{FS_HOST}/fs/display/?p=X-NETEASE-HUGE-ATTACHMENT&file={link.token}"

    def handle(self, request: Request) -> Response:
        route = (request.host, request.path)
        if route == (FS_HOST, "/fs/service"):
            return self.fs_service(request)
        if route == (FS_HOST, "/fs/display/"):
            return mail_download(self.world, request, request.query.get("file", ""))
        if route == ("dashi.163.com", "/filehub-master/file/dl/prepare2"):
            return self.prepare(request, {"expired": 601, "deleted": 404}, "result")
        if route == ("mail.163.com", "/filehub/bg/dl/prepare"):
            return self.prepare(request, {"expired": 400, "deleted": 404}, "data")
        if route in (("mail.163.com", "/large-attachment-download/index.html"),
                     ("dashi.163.com", "/html/cloud-attachment-download")):
            return html_response("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>网易邮箱 超大附件下载</title>"
                                 "</head><body><div id=\"root\"></div><script src=\"/static/app.js\"></script>"
                                 "</body></html>")
        return Response(404, [("Content-Type", "text/html")], b"<html><body>404</body></html>")

    def fs_service(self, request: Request) -> Response:
        """GET ?f=<file>&op=fs_dl_f_a → code 200 and result.downloadUrl; -17 expired, -3 deleted."""
        if request.query.get("op") != "fs_dl_f_a":
            return json_response({"code": -1, "msg": "unknown op"})
        attachment = self.attachment(request.query.get("f", ""))
        if attachment is None or attachment.state == "deleted":
            return json_response({"code": -3, "msg": "file not exist"})
        if attachment.state == "expired":
            return json_response({"code": -17, "msg": "file expired"})
        return json_response({"code": 200, "msg": "", "result": self._result(attachment)})

    def prepare(self, request: Request, codes: dict[str, int], field: str) -> Response:
        """POST JSON {'fid': '', 'linkKey': key} → code 200 and <field>.downloadUrl (dashi's
        prepare2 says ``result``, mail.163.com's filehub ``data``), else codes[state]."""
        body = request.json()
        key = body.get("linkKey", "") if isinstance(body, dict) else ""
        attachment = self.attachment(key)
        if attachment is None or attachment.state != "ok":
            state = "deleted" if attachment is None else attachment.state
            return json_response({"code": codes[state], "msg": state})
        return json_response({"code": 200, "msg": "", field: self._result(attachment)})

    def _result(self, attachment: Attachment) -> dict[str, Any]:
        return {"downloadUrl": self.download_url(attachment), "fileName": attachment.name,
                "fileSize": attachment.content.size}
