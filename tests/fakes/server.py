"""A small multi-host HTTP server for the fakes: one ThreadingHTTPServer per real host name,
each on its own 127.0.0.1 port, all answering through Site objects that share one state.

A Site turns a Request into a Response. Responses may stream (a file host's 2 GiB file),
may be cut after N body bytes (the connection is then dropped, as a flaky CDN does), and
faults registered in a FaultBook (HTTP 429/5xx, a JSON errno, a delay, a cut) are applied
before the site sees the request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    host: str            # the real host name this port stands for, e.g. 'pan.baidu.com'
    method: str
    path: str            # without the query
    query: dict[str, str]
    headers: Message
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default) or default

    @property
    def user_agent(self) -> str:
        return self.header("User-Agent")

    @property
    def cookies(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for raw in self.headers.get_all("Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(raw)
            except CookieError:  # a value SimpleCookie rejects: split by hand
                for pair in raw.split(";"):
                    name, _, value = pair.strip().partition("=")
                    found[name] = value
                continue
            found.update({name: morsel.value for name, morsel in jar.items()})
        return found

    @property
    def form(self) -> dict[str, str]:
        """The urlencoded body (and, as Baidu accepts, the query for what it lacks)."""
        fields = dict(self.query)
        if self.body and "json" not in self.header("Content-Type"):
            fields.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return fields

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except ValueError:
            return None

    def arg(self, name: str, default: str = "") -> str:
        """A form field or query parameter."""
        return self.form.get(name, default)


@dataclass
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterable[bytes] | None = None  # then Content-Length must be among the headers
    cut_after: int | None = None           # drop the connection after this many body bytes
    on_bytes: Callable[[int], None] | None = None  # told how many body bytes went out

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, [("Content-Type", "application/json; charset=utf-8"), *headers], body)


def html_response(text: str, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", "text/html; charset=utf-8"), *headers], text.encode("utf-8"))


def redirect(location: str, status: int = 302, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Location", location), *headers], b"")


class Site(Protocol):
    def handle(self, request: Request) -> Response: ...


@dataclass
class Fault:
    """One injected fault: the next `times` requests to `host` whose path starts with
    `path` get it (times < 0: every one, until cleared)."""

    host: str
    path: str = ""
    times: int = 1
    status: int | None = None          # answer with this HTTP status (429, 500, 503, …)
    payload: dict[str, Any] | None = None  # answer with this JSON (HTTP 200 unless status is set)
    delay: float = 0.0                 # sleep this long first (a slow response)
    cut_after: int | None = None       # let the site answer, but drop the connection after N body bytes
    retry_after: int | None = None     # a Retry-After header with the status
    hits: int = 0

    def matches(self, request: Request) -> bool:
        return self.host == request.host and request.path.startswith(self.path) and self.times != 0


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1 if fault.times > 0 else 0
                    fault.hits += 1
                    return fault
        return None


def apply_fault(fault: Fault, site: Site, request: Request) -> Response:
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status is not None:
        extra = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
        payload = fault.payload or {"error_code": fault.status, "error_msg": "injected fault"}
        return json_response(payload, fault.status, extra)
    if fault.payload is not None:
        return json_response(fault.payload)
    response = site.handle(request)
    if fault.cut_after is not None:
        response.cut_after = fault.cut_after
    return response


@dataclass
class Hit:
    """A request as the fakes log it, for tests that assert what a client sent."""

    host: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    status: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as a real client expects
    server: "_HostHTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read Hits instead
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.server.real_host, self.command, parts.path,
                          dict(parse_qsl(parts.query, keep_blank_values=True)), self.headers, body)
        hit = Hit(request.host, request.method, request.path, request.query,
                  {k: v for k, v in self.headers.items()}, request.form)
        self.server.log(hit)
        fault = self.server.faults.take(request)
        try:
            response = apply_fault(fault, self.server.site, request) if fault else self.server.site.handle(request)
        except Exception as error:  # a bug in a fake must show in the test, not hang the client
            response = json_response({"error": "fake server bug", "detail": repr(error)}, 500)
            self.server.errors.append(error)
        hit.status = response.status
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        names = {name.lower() for name, _ in response.headers}
        for name, value in response.headers:
            # header values are latin-1 on the wire; a UTF-8 filename goes out as its raw bytes
            self.send_header(name, value.encode("utf-8").decode("latin-1"))
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        chunks: Iterator[bytes] = iter(response.stream) if response.stream is not None else iter([response.body])
        self._write_body(chunks, response)

    def _write_body(self, chunks: Iterator[bytes], response: Response) -> None:
        sent = 0
        limit = response.cut_after
        try:
            for chunk in chunks:
                if limit is not None and sent + len(chunk) >= limit:
                    self.wfile.write(chunk[:limit - sent])
                    sent = limit
                    self._drop()
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if response.on_bytes is not None:
                response.on_bytes(sent)

    def _drop(self) -> None:
        """End the connection mid-body: the client sees fewer bytes than Content-Length."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve


class _HostHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, real_host: str, site: Site, faults: FaultBook, log: Callable[[Hit], None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.real_host = real_host
        self.site = site
        self.faults = faults
        self.log = log
        self.errors: list[BaseException] = []
        self.open_connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.open_connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self.open_connections.discard(request)

    def drop_connections(self) -> None:
        """Close kept-alive connections too, so no client waits on a fake that is gone."""
        with self._connections_lock:
            for connection in list(self.open_connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class HostServer:
    """One real host name served on one loopback port, in a thread."""

    def __init__(self, real_host: str, site: Site, faults: FaultBook, log: Callable[[Hit], None]) -> None:
        self.real_host = real_host
        self.httpd = _HostHTTPServer(real_host, site, faults, log)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"fake {real_host}", daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def errors(self) -> list[BaseException]:
        return self.httpd.errors

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.drop_connections()
        self.httpd.server_close()
        self.thread.join(timeout=5)
