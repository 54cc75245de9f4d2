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
import ipaddress
import json as jsonlib
import re
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3

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
MAX_JSON = 8 * 1024 * 1024  # bytes of a JSON API answer read at most (a listing page is far less)
SECURE_COOKIES = ("BDUSS", "STOKEN")  # the account's login: never over plain http
_QUERY = re.compile(r"\?[^\s'\"<>)]*")


def scrub(text: str) -> str:
    """Error text with every URL's query cut off (access tokens, signs travel there)."""
    return _QUERY.sub("?…", text)


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


def _same_site(first: str, second: str, mapped: Mapping[str, str] | None = None) -> bool:
    """Cookies follow a redirect only within one site (baidu.com to baidu.com), on the
    same scheme, and never to an address given as an IP literal unless INTAKE_HOST_MAP
    maps a host there. Judged on the real URLs, before the host map rewrites them."""
    one, two = urlsplit(first), urlsplit(second)
    if one.scheme != two.scheme or _ip_literal(one.hostname, mapped) or _ip_literal(two.hostname, mapped):
        return False

    def site(host: str | None) -> str:
        return ".".join((host or "").lower().split(".")[-2:])
    return site(one.hostname) == site(two.hostname)


def _ip_literal(host: str | None, mapped: Mapping[str, str] | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    targets = {urlsplit(base).hostname for base in (mapped or {}).values()}
    return host not in targets


def _cookies_for(url: str, cookies: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """The login cookies only over https (the real URL's scheme, before mapping)."""
    if not cookies or urlsplit(url).scheme == "https":
        return cookies
    return {name: value for name, value in cookies.items() if name not in SECURE_COOKIES}


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
            carried = _cookies_for(url, cookies)
            if carried:
                hop["Cookie"] = cookie_header(carried)
            response = self._send(method, url, data, hop, stream, json)
            location = response.headers.get("Location")
            if not follow or not response.is_redirect or not location:
                response.url = url
                return response
            response.close()
            following = self.host_map.to_logical(urljoin(url, location))
            if cookies and not _same_site(url, following, self.host_map.mapping):
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
        except requests.RequestException as err:
            # from None: requests' text holds the path and query (an access token) and a
            # traceback stored in the database or a log must not carry it
            raise NetworkError(f"{urlsplit(url).hostname}: {type(err).__name__}: {scrub(str(err))}",
                               retry_after=NETWORK_RETRY) from None

    def json(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        """A JSON API call: HTTP 429 and 5xx are transient; a body that is no JSON object too."""
        response = self.request(method, url, stream=True, **options)
        host = urlsplit(url).hostname
        with response:
            if response.status_code == 429:
                raise TransientError(f"{host}: rate limited (HTTP 429)", retry_after=RATE_LIMIT_RETRY)
            if response.status_code >= 500:
                raise TransientError(f"{host}: server error (HTTP {response.status_code})",
                                     retry_after=SERVER_RETRY)
            raw = _bounded(response, host)
        try:
            body = jsonlib.loads(raw)
        except ValueError:
            raise TransientError(f"{host}: answered HTTP {response.status_code} without JSON",
                                 retry_after=SERVER_RETRY) from None
        if not isinstance(body, dict):
            raise TransientError(f"{host}: unexpected JSON answer", retry_after=SERVER_RETRY)
        body.setdefault("_http_status", response.status_code)
        return body


def _bounded(response: requests.Response, host: str | None) -> bytes:
    """The body of an API answer, at most MAX_JSON bytes; a cut one is a network error."""
    try:
        raw = response.raw.read(MAX_JSON + 1, decode_content=True) or b""
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
        raise NetworkError(f"{host}: answer cut ({type(err).__name__})", retry_after=NETWORK_RETRY) from None
    if len(raw) > MAX_JSON:
        raise TransientError(f"{host}: JSON answer longer than {MAX_JSON} bytes", retry_after=SERVER_RETRY)
    return raw
