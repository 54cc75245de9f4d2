"""FakeNetdisk: every fake host on its own loopback port, the world they share, and the
switches a test flips. Start it with `with FakeNetdisk() as fake:` or the `fake_netdisk`
fixture; point the client at it with INTAKE_HOST_MAP=fake.host_map."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .baidu_account import AccountWeb
from .baidu_apaas import Apaas
from .baidu_open import OAuthSite, Xpan
from .baidu_web import ShareWeb
from .filehost import FileHost, PcsSite
from .netease import NeteaseSite
from .qq import QQSite
from .server import Fault, FaultBook, Hit, HostServer, Request, Response, Site, html_response
from .world import World

NETDISK_UA = ("netdisk;P2SP;3.0.0.8;netdisk;11.12.3;ANG-AN00;android-android;10.0;JSbridge4.4.0;"
              "jointBridge;1.1.0;")
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")


class PanSite:
    """pan.baidu.com: share pages, the web API, xpan and apaas, routed by path."""

    def __init__(self, world: World) -> None:
        self.share_web = ShareWeb(world)
        self.xpan = Xpan(world)
        self.apaas = Apaas(world)
        self.routes: dict[str, Callable[[Request], Response]] = {**self.share_web.routes(),
                                                                   **AccountWeb(world).routes()}

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/s/"):
            return self.share_web.share_page(request)
        if request.path.startswith("/rest/2.0/xpan/"):
            return self.xpan.handle(request)
        if request.path.startswith("/apaas/1.0/share/"):
            return self.apaas.handle(request)
        handler = self.routes.get(request.path)
        if handler is None:
            return html_response("<html><body class=\"error-404\">404</body></html>", 404)
        return handler(request)


class FakeNetdisk(World):
    """The fake world plus its servers. Everything in World (add_share, add_account, add_app,
    approve_device, add_attachment, the switches) is the set-up API."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.faults = FaultBook()
        self.hits: list[Hit] = []
        self._hits_lock = threading.Lock()
        files = FileHost(self)
        netease, qq = NeteaseSite(self), QQSite(self)
        sites: dict[str, Site] = {
            "pan.baidu.com": PanSite(self), "pcs.baidu.com": PcsSite(self),
            "d.pcs.baidu.com": files, "issuecdn.baidupcs.com": files,
            "openapi.baidu.com": OAuthSite(self),
            "fs.mail.163.com": netease, "dashi.163.com": netease, "mail.163.com": netease,
            "mail.qq.com": qq, "wx.mail.qq.com": qq, "download.ftn.qq.com": qq,
        }
        self.servers: dict[str, HostServer] = {}
        try:
            for host, site in sites.items():
                self.servers[host] = HostServer(host, site, self.faults, self._log)
        except BaseException:
            self.close()
            raise

    # ---- where the hosts are ------------------------------------------------------------------
    @property
    def host_map(self) -> str:
        """The INTAKE_HOST_MAP value: 'pan.baidu.com=http://127.0.0.1:P1,…'."""
        return ",".join(f"{host}={server.base_url}" for host, server in self.servers.items())

    def base_url(self, host: str) -> str:
        return self.servers[host].base_url

    def url(self, real_url: str) -> str:
        """A real URL (https://pan.baidu.com/s/1…) rewritten to its loopback port, as a client's host map does."""
        scheme, _, rest = real_url.partition("://")
        host, slash, path = rest.partition("/")
        return self.base_url(host) + slash + path

    def _log(self, hit: Hit) -> None:
        with self._hits_lock:
            self.hits.append(hit)

    def requests_to(self, host: str, path: str = "") -> list[Hit]:
        """What clients sent to `host` (paths starting with `path`), oldest first."""
        with self._hits_lock:
            return [h for h in self.hits if h.host == host and h.path.startswith(path)]

    @property
    def server_errors(self) -> list[BaseException]:
        """Exceptions raised inside the fakes (each answered 500): a test may assert there were none."""
        return [error for server in self.servers.values() for error in server.errors]

    # ---- fault switches ----------------------------------------------------------------------------
    def fault(self, host: str, path: str = "", *, times: int = 1, **kind: Any) -> Fault:
        """The general form: see server.Fault (status, payload, delay, cut_after, retry_after)."""
        return self.faults.add(Fault(host, path, times, **kind))

    def fail_http(self, host: str, status: int = 503, *, path: str = "", times: int = 1,
                  retry_after: int | None = None) -> Fault:
        """The next `times` requests answer HTTP `status` (429, 500, 502, 503, …)."""
        return self.fault(host, path, times=times, status=status, retry_after=retry_after)

    def fail_errno(self, errno: int, *, host: str = "pan.baidu.com", path: str = "", times: int = 1,
                   **fields: Any) -> Fault:
        """The next `times` requests answer HTTP 200 {"errno": errno, …}: 31034 rate limit
        (命中接口频控), 13071 (apaas: another transfer running), 9019, -62 …"""
        payload = {"errno": errno, "errmsg": fields.pop("errmsg", ""), "request_id": 1, **fields}
        return self.fault(host, path, times=times, payload=payload)

    def rate_limit(self, *, path: str = "", times: int = 1) -> Fault:
        return self.fail_errno(31034, path=path, times=times, errmsg="命中接口频控")

    def hitcode(self, *, times: int = 1) -> Fault:
        """The file host refuses the next `times` downloads with 403 31326 "user is not
        authorized, hitcode:…" (a throttled or blocked account), whatever the User-Agent."""
        return self.fault("d.pcs.baidu.com", times=times, status=403,
                          payload={"error_code": 31326, "error_msg": "user is not authorized, hitcode:115"})

    def slow(self, host: str, seconds: float, *, path: str = "", times: int = 1) -> Fault:
        """Delay the next `times` answers (then answer normally)."""
        return self.fault(host, path, times=times, delay=seconds)

    def cut(self, after_bytes: int, *, host: str = "d.pcs.baidu.com", path: str = "", times: int = 1) -> Fault:
        """Drop the connection after `after_bytes` body bytes, for the next `times` downloads."""
        return self.fault(host, path, times=times, cut_after=after_bytes)

    def expire_links(self, *, after_bytes: int | None = None, after_requests: int | None = None,
                     answer: str = "31360") -> None:
        """Every download link the file host serves dies after sending `after_bytes` (the
        response crossing it is cut there) or after `after_requests` requests; then it answers
        403 with error_code 31360 ('31360') or a bare 403 ('403'). New links start afresh."""
        self.expire_after_bytes, self.expire_after_requests, self.expire_answer = after_bytes, after_requests, answer

    def clear_faults(self) -> None:
        self.faults.clear()
        self.expire_links()

    # ---- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every server (in parallel: each waits out its poll interval) and drop connections."""
        closers = [threading.Thread(target=server.close) for server in self.servers.values()]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()

    def __enter__(self) -> FakeNetdisk:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
