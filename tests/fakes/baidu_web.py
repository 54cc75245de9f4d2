"""pan.baidu.com's share pages and the anonymous share API: /s/1<ID>, /share/init,
/share/verify, /api/getcaptcha, /share/list (notes §2)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from .server import Request, Response, html_response, json_response, redirect
from .state import Share, entry
from .world import World

PAGE_SIZE_MAX = 100  # share/list: "num max is 100" ([Py])

# errno for a dead share, by endpoint (the notes' §4: codes mean different things per endpoint)
DEAD_VERIFY = {"missing": 105, "cancelled": -7, "expired": -8, "blocked": 115}
DEAD_LIST = {"missing": 105, "cancelled": -7, "expired": -7, "blocked": 115}
DEAD_TEXT = {
    "missing": "啊哦，你所访问的页面不存在了。",
    "cancelled": "啊哦，你来晚了，分享的文件已经被取消了，下次要早点哟。",
    "expired": "啊哦，来晚了，该分享文件已过期",
    "blocked": "此链接分享内容可能因为涉及侵权、色情、反动、低俗等信息，无法访问！",
}


def request_id() -> int:
    return int(time.time() * 1000) * 1000 + 321


def errno(code: int, **extra: Any) -> Response:
    """An API error as Baidu gives it: HTTP 200, the errno in the JSON."""
    return json_response({"errno": code, "err_msg": "", "show_msg": "", "request_id": request_id(), **extra})


def share_state(share: Share | None) -> str:
    return "missing" if share is None else share.state


def verified(request: Request, share: Share) -> bool:
    """A share with a code wants the BDCLND cookie that share/verify set."""
    if share.code is None:
        return True
    value = request.cookies.get("BDCLND", "")
    return value in share.randsks or quote(unquote(value), safe="") in share.randsks


def not_found_page(state: str) -> Response:
    return html_response(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>百度网盘-链接不存在</title></head>"
        "<body><div class=\"platform-non-found\"><div class=\"error-img\"></div>"
        f"<div id=\"share_nofound_des\" class=\"share-nofound-des\">{DEAD_TEXT[state]}</div>"
        "</div></body></html>")


def login_page() -> Response:
    """What a browser User-Agent gets since 2026 (PR #535): a login page, no share data."""
    head = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>百度网盘 客户端下载</title></head>"
            "<body><div id=\"login-container\">请登录后查看分享内容</div><script>var passport = {};</script>")
    return html_response(head + "<!--" + "x" * (10751 - len(head.encode()) - 21) + "--></body></html>")


class ShareWeb:
    def __init__(self, world: World) -> None:
        self.world = world

    def routes(self) -> dict[str, Callable[[Request], Response]]:
        return {"/share/init": self.init_page, "/share/verify": self.verify, "/api/getcaptcha": self.captcha,
                "/share/list": self.listing, "/login": lambda r: login_page(), "/genimage": self.image}

    # ---- pages ---------------------------------------------------------------------------
    def share_page(self, request: Request) -> Response:
        if "netdisk" not in request.user_agent:
            return redirect("https://pan.baidu.com/login?redirecturl=" + quote(f"https://pan.baidu.com{request.path}"))
        share = self.world.share_by_short(request.path[len("/s/"):])
        if share is None or share.state != "ok":
            return not_found_page(share_state(share))
        if not verified(request, share):
            return redirect(f"https://pan.baidu.com/share/init?surl={share.short}")
        return html_response(self.page_html(request, share))

    def page_html(self, request: Request, share: Share) -> str:
        account = self.world.account_by_cookies(request.cookies)
        rows = [entry(node, path) for path, node in share.walk() if node in share.roots]
        data = {
            "file_list": rows if share.file_list_form == "array" else {"errno": 0, "list": rows},
            "shareid": share.shareid, "share_uk": str(share.owner_uk),
            "uk": account.uk if account else 0, "bdstoken": account.bdstoken if account else None,
            "title": share.roots[0].name if share.roots else "", "expiredType": 0, "public": 0,
            "ctime": int(time.time()) - 86400, "linkusername": "分享者", "loginstate": int(account is not None),
            "self": 0,
        }
        encoded = json.dumps(data, ensure_ascii=False)
        script = f"locals.mset({encoded});" if share.page_form == "mset" else f"try{{ {encoded}; }}catch(ex){{}}"
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
                f"<title>{data['title']}_免费高速下载|百度网盘-分享无限制</title></head><body>\n"
                "<div id=\"layoutApp\"></div>\n<script>window.jsToken = 'a1b2';</script>\n"
                f"<script>\n{script}\n</script>\n</body></html>")

    def init_page(self, request: Request) -> Response:
        share = self.world.share_by_short(request.query.get("surl", ""))
        if share is None or share.state != "ok":
            return not_found_page(share_state(share))
        return html_response("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>百度网盘 请输入提取码</title>"
                             "</head><body><div class=\"verify-form\"><input id=\"accessCode\">"
                             "<a id=\"submitBtn\">提取文件</a></div></body></html>")

    # ---- share/verify and the captcha ------------------------------------------------------
    def verify(self, request: Request) -> Response:
        world = self.world
        share = world.share_by_short(request.query.get("surl", ""))
        if share is None and request.query.get("shareid"):  # [Go] sends shareid and uk instead
            share = next((s for s in world.shares.values() if str(s.shareid) == request.query["shareid"]), None)
        if share is None or share.state != "ok":
            return errno(DEAD_VERIFY[share_state(share)])
        if not request.header("Referer"):
            return errno(2, err_msg="referer required")
        form = request.form
        if share.captcha and not self.captcha_solved(form):
            return errno(-62)
        if share.code is not None and form.get("pwd", "") != share.code:
            return errno(-9)
        randsk = world.ids.randsk()
        with world.lock:
            share.randsks.add(randsk)
        cookie = f"BDCLND={randsk}; expires=Thu, 01-Jan-2037 00:00:00 GMT; path=/; domain=.baidu.com"
        return json_response({"errno": 0, "err_msg": "", "request_id": request_id(), "randsk": randsk},
                             headers=[("Set-Cookie", cookie)])

    def captcha_solved(self, form: dict[str, str]) -> bool:
        answer = self.world.captchas.get(form.get("vcode_str", ""))
        return answer is not None and form.get("vcode", "") == answer

    def captcha(self, request: Request) -> Response:
        vcode_str = self.world.ids.hex(40)
        self.world.captchas[vcode_str] = self.world.ids.text(4, "abcdefghkmnpqrstuvwxy3456789")
        return json_response({"errno": 0, "request_id": request_id(), "vcode_str": vcode_str,
                              "vcode_img": f"https://pan.baidu.com/genimage?{vcode_str}"})

    def image(self, request: Request) -> Response:
        return Response(200, [("Content-Type", "image/gif")], b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    # ---- share/list ----------------------------------------------------------------------------
    def listing(self, request: Request) -> Response:
        world = self.world
        query = request.query
        if query.get("root") == "1" or "shorturl" in query:
            share = world.share_by_short(query.get("shorturl", ""))
            folder = None
        else:
            share = next((s for s in world.shares.values() if str(s.shareid) == query.get("shareid")
                          and str(s.owner_uk) == query.get("uk")), None)
            folder = share.find_path(query.get("dir", "")) if share is not None else None
            if share is not None and (folder is None or not folder.isdir) and share.state == "ok":
                return errno(-9, err_msg="dir not found")
        if share is None or share.state != "ok":
            return errno(DEAD_LIST[share_state(share)])
        with world.lock:
            if share.list_8001 > 0:
                share.list_8001 -= 1
                return errno(8001, show_msg="已触发验证")
        if not verified(request, share):
            return errno(-9, err_msg="verify first")
        if folder is None:
            rows = [entry(node, path) for path, node in share.walk() if node in share.roots]
        else:
            base = share.path_of(folder)
            rows = [entry(child, f"{base}/{child.name}") for child in folder.children]
        page, num = max(1, int(query.get("page") or 1)), min(PAGE_SIZE_MAX, int(query.get("num") or PAGE_SIZE_MAX))
        payload: dict[str, Any] = {"errno": 0, "request_id": request_id(), "server_time": int(time.time()),
                                   "list": rows[(page - 1) * num: page * num]}
        if folder is None:
            payload.update(share_id=share.shareid, uk=share.owner_uk, title=share.roots[0].name if share.roots else "")
        return json_response(payload)
