"""Linked packages: fetchers that download what a message links to (Baidu Netdisk, 163
and QQ large attachments), behind one interface (``intake.fetchers.base.Fetcher``), with
one HTTP client (``http``) and one downloader (``download``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from intake.fetchers.base import DownloadLimits, Fetcher
from intake.fetchers.baidu_cookie import CookieFetcher
from intake.fetchers.baidu_openapi import OpenApiFetcher
from intake.fetchers.baidu_probe import ProbeFetcher
from intake.fetchers.http import HostMap, Http
from intake.fetchers.locks import AccountLock
from intake.fetchers.netease import NeteaseFetcher
from intake.fetchers.qq import QQFetcher
from intake.fetchers.tokens import REFRESH_LOCK, OAuth, TokenStore
from intake.settings import Settings


def make_http(settings: Settings) -> Http:
    return Http(HostMap(settings.host_map))


def make_fetchers(settings: Settings, http: Http | None = None,
                  pause: Callable[[float], None] = time.sleep) -> dict[str, Fetcher]:
    """provider ('baidu', 'netease', 'qq') -> fetcher; the Baidu route from INTAKE_NETDISK_ROUTE. Missing
    credentials for the route chosen are a ConfigError naming the setting. ``pause``
    waits between task polls and transfers (tests pass one that does not sleep)."""
    http = http or make_http(settings)
    locks = lock_folder(settings)
    baidu: Fetcher
    if settings.netdisk_route == "cookie":
        baidu = CookieFetcher(http, settings.baidu_cookie, inbox=settings.baidu_inbox, lock_folder=locks,
                              pause=pause)
    elif settings.netdisk_route == "openapi":
        baidu = OpenApiFetcher(http, OAuth(http, settings.baidu_app_key, settings.baidu_secret_key),
                               TokenStore.in_data_dir(settings.data_dir), settings.baidu_app_id,
                               inbox=settings.baidu_inbox, short_url=settings.baidu_short_url,
                               task_status=settings.baidu_task_status, lock_folder=locks, pause=pause)
    else:
        baidu = ProbeFetcher(http)
    return {"baidu": baidu, "netease": NeteaseFetcher(http, pause), "qq": QQFetcher(http, pause)}


def lock_folder(settings: Settings) -> Path:
    return settings.data_dir / "netdisk" / "locks"


def refresh_lock(settings: Settings) -> AccountLock:
    """The lock a token refresh holds (across processes); `intake netdisk login` takes it too."""
    return AccountLock(REFRESH_LOCK, lock_folder(settings))


def download_limits(settings: Settings) -> DownloadLimits:
    """A NEW budget for ONE message: call once per message (per attempt) and pass the
    same object to the fetch of each of its links; INTAKE_DOWNLOAD_MAX_GB caps their sum."""
    return DownloadLimits.from_gb(settings.download_max_gb, settings.disk_reserve_gb)
