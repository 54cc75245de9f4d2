"""The OpenAPI tokens (``intake netdisk login`` stores them) and the OAuth calls.

The refresh token is single-use and each refresh returns a new pair: the new pair is
written to the store (a temporary file, fsync, rename, fsync of the folder) BEFORE the
new access token is used, under a lock that holds across processes, so that a crash or a
second process never leaves us holding a spent refresh token.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from intake.fetchers.baidu_share import AUTH, CAPABILITY, RETRY_AFTER, AuthDead, errno_of, kind_of
from intake.fetchers.http import Http
from intake.fetchers.locks import AccountLock
from intake.kernel.errors import ConfigError, TransientError

OAUTH = "https://openapi.baidu.com/oauth/2.0"
SETTING = "INTAKE_BAIDU_APP_KEY"
EARLY = 3600.0  # refresh this long before the access token expires
REFRESH_LOCK = "baidu-openapi-refresh"  # the lock a refresh and a login hold while they store a pair


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float  # Unix time
    scope: str = ""

    @classmethod
    def from_answer(cls, body: dict[str, Any], now: float) -> Tokens:
        return cls(str(body["access_token"]), str(body["refresh_token"]),
                   now + float(body.get("expires_in") or 2592000), str(body.get("scope") or ""))


class TokenStore:
    """One JSON file in the data folder, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> TokenStore:
        return cls(Path(data_dir) / "netdisk" / "baidu-openapi-tokens.json")

    def load(self) -> Tokens | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return Tokens(**{k: data[k] for k in ("access_token", "refresh_token", "expires_at", "scope")})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{self.path}: unreadable token store ({err}); run `intake netdisk login` again") from None

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(asdict(tokens), out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a crash
        finally:
            os.close(folder)


class OAuth:
    def __init__(self, http: Http, app_key: str | None, secret_key: str | None) -> None:
        if not app_key or not secret_key:
            missing = "INTAKE_BAIDU_APP_KEY" if not app_key else "INTAKE_BAIDU_SECRET_KEY"
            raise ConfigError(f"{missing}: not set; the openapi route needs the app's key and secret key")
        self.http, self.app_key, self.secret_key = http, app_key, secret_key

    def token(self, grant: dict[str, str]) -> dict[str, Any]:
        body = self.http.json("POST", f"{OAUTH}/token", data={
            **grant, "client_id": self.app_key, "client_secret": self.secret_key})
        return body

    def refresh(self, store: TokenStore, lock: AccountLock, spent: str | None = None) -> Tokens:
        """A new pair, stored before it is returned. ``spent`` is the access token that was
        refused: when the store already holds another one, a parallel refresh did the work."""
        with lock:
            current = store.load()
            if current is None:
                raise ConfigError("INTAKE_NETDISK_ROUTE=openapi: no tokens stored; run `intake netdisk login`")
            if spent is not None and current.access_token != spent:
                return current  # another process refreshed since our token was refused
            if spent is None and current.expires_at - EARLY > time.time():
                return current  # another process refreshed since we loaded the pair
            now = time.time()
            body = self.token({"grant_type": "refresh_token", "refresh_token": current.refresh_token})
            if "access_token" not in body:
                raise oauth_error(body)
            fresh = Tokens.from_answer(body, now)
            store.save(fresh)  # before the new access token is used: the old refresh token is spent
            return fresh


def oauth_error(body: dict[str, Any]) -> Exception:
    code = errno_of(body)
    kind = kind_of("oauth", code)
    said = f"openapi.baidu.com: {code} {body.get('error_description') or ''}".strip()
    if kind == AUTH:
        return AuthDead(f"{said}: the stored tokens are no longer valid; run `intake netdisk login`",
                        retry_after=RETRY_AFTER[AUTH])
    if kind == CAPABILITY:
        return ConfigError(f"{said}: check {SETTING} / INTAKE_BAIDU_SECRET_KEY and the app's scope (netdisk)")
    return TransientError(said, retry_after=RETRY_AFTER["rate"])


def device_login(oauth: OAuth, store: TokenStore, say: Callable[[str], None],
                 pause: Callable[[float], None] = time.sleep, lock: AccountLock | None = None) -> Tokens:
    """The device-code login: show the user code and the page to enter it on, poll the
    token endpoint until staff have approved it, store the pair (0600) under ``lock``
    (the refresh lock: a daemon refreshing at that moment does not overwrite it)."""
    body = oauth.http.json("GET", f"{OAUTH}/device/code", params={
        "response_type": "device_code", "client_id": oauth.app_key, "scope": "basic,netdisk"})
    if "device_code" not in body:
        raise oauth_error(body)
    lifetime = float(body.get("expires_in") or 1800)
    say(f"请在浏览器中打开 {body.get('verification_url') or 'https://openapi.baidu.com/device'}，"
        f"登录用于接收作品的百度网盘账号，并输入用户码：{body.get('user_code')}")
    if body.get("qrcode_url"):
        say(f"也可以用百度网盘 App 扫描二维码：{body['qrcode_url']}")
    say(f"用户码 {int(lifetime // 60)} 分钟内有效；授权完成前本命令会一直等待。")
    interval = float(body.get("interval") or 5)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        pause(interval)
        answer = oauth.token({"grant_type": "device_token", "code": str(body["device_code"])})
        if "access_token" in answer:
            tokens = Tokens.from_answer(answer, time.time())
            with lock or AccountLock(REFRESH_LOCK):
                store.save(tokens)
            return tokens
        error = str(answer.get("error") or "")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error == "expired_token":
            break
        raise oauth_error(answer)
    raise ConfigError("intake netdisk login: the user code expired before it was approved; run it again")
