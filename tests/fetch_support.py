"""Helpers of the tests/test_fetch_*.py files: settings pointed at the loopback fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intake.fetchers import make_fetchers
from intake.fetchers.base import DownloadLimits, Fetcher
from intake.parsers.links import Link
from intake.settings import Settings, load_settings
from tests.fakes import FakeNetdisk

NO_RESERVE = DownloadLimits(reserve_bytes=0)


def settings_for(fake: FakeNetdisk, tmp_path: Path, route: str = "probe", **environ: str) -> Settings:
    env = {"INTAKE_HOST_MAP": fake.host_map, "INTAKE_NETDISK_ROUTE": route,
           "INTAKE_DATA_DIR": str(tmp_path / "data"), **environ}
    return load_settings(environ=env)


def fetcher(fake: FakeNetdisk, tmp_path: Path, route: str = "probe", **environ: str) -> Fetcher:
    return make_fetchers(settings_for(fake, tmp_path, route, **environ), pause=lambda seconds: None)["baidu"]


def link(share: Any, code: str | None = None, pwd: str | None = None) -> Link:
    """The link as the parser reports it; ``pwd`` keeps a ?pwd= code in the URL."""
    return Link("baidu", share.url + (f"?pwd={pwd}" if pwd else ""), code)


def codes(fetched: Any) -> list[str]:
    return [finding.code for finding in fetched.findings]
