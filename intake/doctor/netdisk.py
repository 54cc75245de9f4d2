"""The Baidu Netdisk route and its credentials, through the routes' own code:

- ``probe``: no account, nothing to check (reported as not needed);
- ``cookie``: BDUSS and STOKEN present, and one request (getinfo, then the page's
  template variables, through INTAKE_HOST_MAP) that tells whether the session is alive;
- ``openapi``: the app's settings, the stored tokens and their age; a token near its end
  is refreshed by the route's own refresh (the new pair stored atomically before use,
  under the cross-process refresh lock), then one call (xpan uinfo) proves it works.

No cookie, token or key is ever printed."""

from __future__ import annotations

import os
import pwd
import time
from datetime import datetime, timezone
from pathlib import Path

from intake.doctor.model import Check, Context, failed, not_needed, passed
from intake.fetchers import lock_folder, make_http
from intake.fetchers.baidu_cookie import CookieFetcher
from intake.fetchers.baidu_openapi import OpenApiFetcher
from intake.fetchers.baidu_share import AuthDead
from intake.fetchers.http import Http
from intake.fetchers.tokens import EARLY, OAuth, TokenStore
from intake.kernel.errors import ConfigError, TransientError
from intake.kernel.report import beijing_text
from intake.settings import Settings

NAME, TITLE = "netdisk", "百度网盘（线路与凭据）"
COOKIE_HINT = "请在已登录的 pan.baidu.com 页面重新复制 Cookie（须含 BDUSS 和 STOKEN），更新 INTAKE_BAIDU_COOKIE"
LOGIN_HINT = "请运行 intake netdisk login 重新授权"


def check_netdisk(context: Context) -> Check:
    settings = context.settings
    assert settings is not None
    route = settings.netdisk_route
    if route == "probe":
        return not_needed(NAME, TITLE, "INTAKE_NETDISK_ROUTE=probe，不登录网盘账号，只检查分享链接和提取码"
                          "是否有效（链接中的文件不会下载，需人工处理）")
    owner = _other_owner(settings.data_dir)
    if owner is not None:
        return failed(NAME, TITLE, f"数据目录 {settings.data_dir} 属于用户 {owner}，本次检查却以用户 {_user(os.geteuid())} "
                      "运行：核对网盘凭据可能刷新令牌、建立锁文件，这些文件将归当前用户所有，服务随后无法读取，"
                      f"因此未核对。请以服务用户运行：sudo -u {owner} intake doctor（加上服务所用的 --config）")
    http = make_http(settings)
    try:
        return _cookie(settings, http) if route == "cookie" else _openapi(settings, http)
    finally:
        http.close()


def _other_owner(data_dir: Path) -> str | None:
    """The data folder's owner when it is not this process's user (root running doctor
    over the service's folder), else None; None too while the folder does not exist."""
    try:
        uid = data_dir.stat().st_uid
    except OSError:
        return None
    return None if uid == os.geteuid() else _user(uid)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _cookie(settings: Settings, http: Http) -> Check:
    try:
        fetcher = CookieFetcher(http, settings.baidu_cookie, lock_folder=lock_folder(settings))
    except ConfigError as err:
        return failed(NAME, TITLE, f"INTAKE_BAIDU_COOKIE 不完整（{_missing(str(err))}）：{COOKIE_HINT}")
    try:
        fetcher.account()
    except (AuthDead, ConfigError):
        return failed(NAME, TITLE, f"INTAKE_BAIDU_COOKIE 中的登录已失效（百度网盘不再认可该 Cookie）：{COOKIE_HINT}")
    except TransientError as err:
        return failed(NAME, TITLE, f"无法访问 pan.baidu.com 核对 Cookie：请检查网络（及 INTAKE_HOST_MAP）。详情：{err}")
    return passed(NAME, TITLE, "线路 cookie：Cookie 含 BDUSS 和 STOKEN，pan.baidu.com 确认仍处于登录状态")


def _missing(said: str) -> str:
    names = [name for name in ("BDUSS", "STOKEN") if f"{name}" in said.split(";", 1)[0]]
    return f"缺少 {' 和 '.join(names)}" if names else "缺少必要字段"


def _openapi(settings: Settings, http: Http) -> Check:
    try:
        oauth = OAuth(http, settings.baidu_app_key, settings.baidu_secret_key)
        store = TokenStore.in_data_dir(settings.data_dir)
        fetcher = OpenApiFetcher(http, oauth, store, settings.baidu_app_id,
                                 lock_folder=lock_folder(settings))
        tokens = store.load()
    except ConfigError as err:
        setting = str(err).split(":", 1)[0]
        return failed(NAME, TITLE, f"线路 openapi 的设置不完整：请设置 {setting}。详情：{err}")
    if tokens is None:
        return failed(NAME, TITLE, f"线路 openapi 尚未授权（{store.path} 不存在）：{LOGIN_HINT}")
    try:
        # the route's own call: a token near its end (or refused) is refreshed by the route,
        # the new pair stored under the cross-process lock before it is used
        fetcher.account()
    except AuthDead as err:
        return failed(NAME, TITLE, f"百度网盘不再认可已保存的令牌：{LOGIN_HINT}。详情：{err}")
    except ConfigError as err:
        return failed(NAME, TITLE, "百度网盘开放平台拒绝了本应用：请核对 INTAKE_BAIDU_APP_KEY、INTAKE_BAIDU_SECRET_KEY、"
                      f"INTAKE_BAIDU_APP_ID 及应用的网盘权限。详情：{err}")
    except TransientError as err:
        return failed(NAME, TITLE, f"无法访问百度网盘开放平台核对令牌：请检查网络（及 INTAKE_HOST_MAP）。详情：{err}")
    current = fetcher.tokens or tokens
    refreshed = "" if current.access_token == tokens.access_token else (
        "访问令牌已到期或临近到期，已刷新并保存新令牌；" if tokens.expires_at - EARLY < time.time()
        else "百度网盘不再认可原访问令牌，已刷新并保存新令牌；")
    until = datetime.fromtimestamp(current.expires_at, timezone.utc)
    stored = datetime.fromtimestamp(store.path.stat().st_mtime, timezone.utc)
    days = (current.expires_at - time.time()) / 86400
    return passed(NAME, TITLE, f"线路 openapi：{refreshed}令牌有效（{beijing_text(stored)} 保存），访问令牌有效期至 "
                  f"{beijing_text(until)}（还有约 {days:.1f} 天，到期前自动续期）")
