"""One HTTP client for every fetcher: INTAKE_HOST_MAP applied to every request and every
redirect, explicit cookies, timeouts, and the User-Agents the services demand.

The host map sends a request for a mapped host to its base URL, keeping path and query
(tests point Baidu at loopback; a site may point it at a proxy). Redirects are followed
here, not by requests, so that each ``Location`` is mapped too and the cookies a Baidu
host needs travel as an explicit ``Cookie`` header: a cookie jar keyed by .baidu.com
would not send them to 127.0.0.1. No jar is kept at all: each route holds its own
cookies and says which go with each request.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from intake.fetchers.base import NETWORK_RETRY, NetworkError
from intake.kernel.errors import TransientError

# The netdisk client's User-Agent: Baidu sends a browser's to a login page and answers
# a PCS download with the wrong one with 31362 "sign error".
NETDISK_UA = ("netdisk;P2SP;3.0.0.8;netdisk;11.12.3;ANG-AN00;android-android;10.0;"
              "JSbridge4.4.0;jointBridge;1.1.0;")
OPENAPI_UA = "pan.baidu.com"  # what the open platform demands on a dlink download
TIMEOUT = (10.0, 60.0)  # seconds: connect, and between two reads of a body
MAX_REDIRECTS = 8
RATE_LIMIT_RETRY = 600.0  # HTTP 429: minutes
SERVER_RETRY = 300.0  # HTTP 5xx


class HostMap:
    """host -> base URL, and back (a ``Location`` that names the base URL itself)."""

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self.mapping = {host.lower(): base.rstrip("/") for host, base in (mapping or {}).items()}
        self.reverse = {urlsplit(base).netloc.lower(): host for host, base in self.mapping.items()}

    def to_wire(self, url: str) -> str:
        parts = urlsplit(url)
        base = self.mapping.get((parts.hostname or "").lower())
        if base is None:
            return url
        mapped = urlsplit(base)
        return urlunsplit((mapped.scheme, mapped.netloc, parts.path or "/", parts.query, ""))

    def to_logical(self, url: str) -> str:
        """The URL as if no map existed (https://pan.baidu.com/… for the fake's own address)."""
        parts = urlsplit(url)
        host = self.reverse.get(parts.netloc.lower())
        if host is None:
            return url
        return urlunsplit(("https", host, parts.path, parts.query, parts.fragment))


def _same_site(first: str, second: str) -> bool:
    """Cookies follow a redirect only within one site (baidu.com to baidu.com)."""
    def site(url: str) -> str:
        return ".".join((urlsplit(url).hostname or "").split(".")[-2:])
    return site(first) == site(second)


def cookie_header(cookies: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items() if value)


def set_cookies(response: requests.Response) -> dict[str, str]:
    """The ``Set-Cookie`` pairs of a response, whatever domain they name."""
    found: dict[str, str] = {}
    raw = getattr(response.raw, "headers", None)
    values = raw.getlist("Set-Cookie") if raw is not None and hasattr(raw, "getlist") else []
    for value in values:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except Exception:  # a malformed cookie is skipped, as a browser would
            continue
        found.update({name: morsel.value for name, morsel in jar.items()})
    return found


class Http:
    """requests, with the host map, explicit cookies and timeouts on every request."""

    def __init__(self, host_map: HostMap | None = None, timeout: tuple[float, float] = TIMEOUT) -> None:
        self.host_map = host_map or HostMap()
        self.timeout = timeout
        self.session = requests.Session()
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # no jar

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                cookies: Mapping[str, str] | None = None, stream: bool = False,
                follow: bool = True, json: Any = None) -> requests.Response:
        """One request, redirects followed (each one mapped); ``response.url`` is the
        logical URL (the Baidu one). ``json``: a JSON body instead of ``data`` (163's
        filehub endpoints). Connection failures raise ``NetworkError``."""
        sent = dict(headers or {})
        if params:
            url = requests.Request("GET", url, params=params).prepare().url or url
        for _ in range(MAX_REDIRECTS + 1):
            hop = dict(sent)
            if cookies:
                hop["Cookie"] = cookie_header(cookies)
            response = self._send(method, url, data, hop, stream, json)
            location = response.headers.get("Location")
            if not follow or not response.is_redirect or not location:
                response.url = url
                return response
            response.close()
            following = self.host_map.to_logical(urljoin(url, location))
            if cookies and not _same_site(url, following):
                cookies = None
            if response.status_code in (301, 302, 303) and method.upper() != "HEAD":
                method, data, json = "GET", None, None
            url = following
        raise TransientError(f"{urlsplit(url).hostname}: more than {MAX_REDIRECTS} redirects",
                             retry_after=SERVER_RETRY)

    def _send(self, method: str, url: str, data: Mapping[str, Any] | None, headers: dict[str, str],
              stream: bool, json: Any = None) -> requests.Response:
        wire = self.host_map.to_wire(url)
        try:
            return self.session.request(method, wire, data=data, json=json, headers=headers, stream=stream,
                                        timeout=self.timeout, allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as err:
            raise NetworkError(f"{urlsplit(url).hostname}: {type(err).__name__}",
                               retry_after=NETWORK_RETRY) from err

    def json(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        """A JSON API call: HTTP 429 and 5xx are transient; a body that is no JSON object too."""
        response = self.request(method, url, **options)
        host = urlsplit(url).hostname
        if response.status_code == 429:
            raise TransientError(f"{host}: rate limited (HTTP 429)", retry_after=RATE_LIMIT_RETRY)
        if response.status_code >= 500:
            raise TransientError(f"{host}: server error (HTTP {response.status_code})", retry_after=SERVER_RETRY)
        try:
            body = response.json()
        except ValueError:
            raise TransientError(f"{host}: answered HTTP {response.status_code} without JSON",
                                 retry_after=SERVER_RETRY) from None
        if not isinstance(body, dict):
            raise TransientError(f"{host}: unexpected JSON answer", retry_after=SERVER_RETRY)
        body.setdefault("_http_status", response.status_code)
        return body
