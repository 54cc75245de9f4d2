"""Helpers of the tests/test_fetch_*.py files: settings pointed at the loopback fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intake.fetchers import make_fetchers, make_http
from intake.fetchers.tokens import OAuth, TokenStore, device_login
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


class OpenApiSetup:
    """An app, an account, and (after ``login``) the tokens of the openapi route."""

    def __init__(self, fake, tmp_path, **environ):
        self.fake, self.tmp_path = fake, tmp_path
        self.app = fake.add_app()
        self.account = fake.add_account()
        self.environ = {"INTAKE_BAIDU_APP_KEY": self.app.app_key, "INTAKE_BAIDU_SECRET_KEY": self.app.secret_key,
                        "INTAKE_BAIDU_APP_ID": self.app.app_id, **environ}
        self.settings = settings_for(fake, tmp_path, "openapi", **self.environ)
        self.store = TokenStore.in_data_dir(self.settings.data_dir)

    def login(self):
        said = []

        def approve(seconds):  # staff enter the user code while the command waits
            code = said[0].rsplit("：", 1)[-1]
            self.fake.approve_device(code, self.account)

        oauth = OAuth(make_http(self.settings), self.app.app_key, self.app.secret_key)
        return device_login(oauth, self.store, said.append, pause=approve), said

    def route(self):
        return fetcher(self.fake, self.tmp_path, "openapi", **self.environ)
