"""QQ Mail large attachments (超大附件, mail-163.md §3): wx.mail.qq.com's ftn landing page
(`var url = "…"` with \\x26 for '&', `var status = 1`), the older mail.qq.com ftnExs_download
page (an a.ft_d_btnDownload button) and the ftn download host."""

from __future__ import annotations

import html
from urllib.parse import quote

from .netease import mail_download
from .server import Request, Response, html_response
from .state import Attachment
from .world import World

FTN_HOST = "download.ftn.qq.com"


class QQSite:
    """One site for wx.mail.qq.com, mail.qq.com and the ftn download host."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        if request.host == FTN_HOST and request.path.startswith("/ftn_handler/"):
            return mail_download(self.world, request, request.path.split("/")[2])
        if request.path == "/ftn/download":
            return self.wx_page(request)
        if request.path == "/cgi-bin/ftnExs_download":
            return self.old_page(request)
        return Response(404, [("Content-Type", "text/html")], b"<html><body>404</body></html>")

    def attachment(self, key: str, code: str) -> Attachment | None:
        found = self.world.attachments.get(key)
        return found if found is not None and found.state == "ok" and found.code == code else None

    def download_url(self, attachment: Attachment) -> str:
        link = self.world.new_link(attachment.content, attachment.name, "mail")
        return f"https://{FTN_HOST}/ftn_handler/{link.token}/?fname={quote(attachment.name)}&k={attachment.code}&fr=00"

    def wx_page(self, request: Request) -> Response:
        attachment = self.attachment(request.query.get("key", ""), request.query.get("code", ""))
        head = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>QQ邮箱 - 超大附件</title></head>"
                "<body><script>window.__ftn = {};</script>")
        if attachment is None:
            return html_response(head + "<script>var status = 0;</script>"
                                 "<div class=\"expired\">该文件已过期或已被删除</div></body></html>")
        url = self.download_url(attachment).replace("&", "\\x26")
        return html_response(head + f"<script>var status = 1;\nvar url = \"{url}\";\n"
                             f"var name = \"{html.escape(attachment.name)}\";</script>"
                             f"<div class=\"file\">{html.escape(attachment.name)}</div></body></html>")

    def old_page(self, request: Request) -> Response:
        attachment = self.attachment(request.query.get("k", ""), request.query.get("code", ""))
        if attachment is None:
            inner = "<div class=\"ft_d_expired\">很抱歉，该文件已过期或已被删除。</div>"
        else:
            href = html.escape(self.download_url(attachment))
            inner = ("<div class=\"ft_d_fileToggle default\">"
                     f"<span class=\"ft_d_fileName\">{html.escape(attachment.name)}</span>"
                     f"<a class=\"ft_d_btnDownload btn_blue\" href=\"{href}\">下载</a></div>")
        return html_response("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>QQ邮箱-文件中转站</title>"
                             "</head><body><div id=\"main\"><div class=\"ft_d_mainWrapper\"><div><div>"
                             f"{inner}</div></div></div></div></body></html>")
