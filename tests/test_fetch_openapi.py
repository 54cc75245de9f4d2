"""The openapi route and `intake netdisk login` against the loopback OAuth, apaas and
xpan: device-code login, tokens stored 0600 and refreshed atomically (single-use refresh
tokens), verify → list → transfer → taskquery → listall → filemetas → download."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from intake.fetchers.baidu_openapi import status_words
from intake.fetchers.tokens import Tokens
from intake.kernel.errors import ConfigError, TransientError
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, OpenApiSetup as Setup, codes, link

FILES = {"作品一/视频.mp4": 2_000_000, "作品一/简介.docx": b"doc", "报名表.xlsx": b"xlsx"}


def stored(setup):
    return json.loads(setup.store.path.read_text())


def test_device_login_stores_the_tokens_0600(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    tokens, said = setup.login()
    assert "https://openapi.baidu.com/device" in said[0] and "用户码" in said[0]
    assert stat.S_IMODE(setup.store.path.stat().st_mode) == 0o600
    assert stored(setup)["refresh_token"] == tokens.refresh_token
    assert fake_netdisk.token_grant(tokens.access_token)[0] is not None


def test_the_login_command(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "INTAKE_HOST_MAP": fake_netdisk.host_map,
           "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_NETDISK_ROUTE": "openapi", **setup.environ}
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "netdisk", "login"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = process.stdout.readline()
        fake_netdisk.approve_device(first.strip().rsplit("：", 1)[-1], setup.account)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "授权成功" in out and str(setup.store.path) in out
    assert stat.S_IMODE(setup.store.path.stat().st_mode) == 0o600


def test_login_without_the_app_key_names_it(tmp_path, monkeypatch, capsys):
    from intake.cli import main  # the command as `intake netdisk login` runs it, in this process
    monkeypatch.setenv("INTAKE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("INTAKE_BAIDU_APP_KEY", raising=False)
    assert main(["netdisk", "login"]) == 2
    err = capsys.readouterr().err
    assert "INTAKE_BAIDU_APP_KEY" in err and "Traceback" not in err


def test_a_share_through_the_openapi_route(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    setup.login()
    share = fake_netdisk.add_share(FILES, "ab12")
    fetched = setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, key="R-9")
    assert fetched.findings == [] and len(fetched.files) == 3
    source = next(node for path, node in share.walk() if path.endswith("/视频.mp4"))
    import hashlib  # the one md5 of this test
    assert hashlib.md5((tmp_path / "m" / "作品一" / "视频.mp4").read_bytes()).hexdigest() == source.content.md5
    downloads = fake_netdisk.requests_to("d.pcs.baidu.com")
    assert downloads and all(h.headers["User-Agent"] == "pan.baidu.com" for h in downloads)
    assert all(h.query.get("access_token") for h in fake_netdisk.requests_to("d.pcs.baidu.com", "/file/"))
    transfer = fake_netdisk.requests_to("pan.baidu.com", "/apaas/1.0/share/transfer")[0]
    assert transfer.query["short_url"] == share.short and transfer.form["ondup"] == "fail"
    assert all(isinstance(fsid, str) for fsid in json.loads(transfer.form["fsid_list"]))
    assert transfer.form["to_path"].startswith("/apps/intake/inbox/")
    assert setup.account.find("/apps/intake/inbox").children == []  # the copy is deleted again


def test_the_short_url_form_is_a_setting(fake_netdisk, tmp_path):
    fake_netdisk.apaas_short_url = "with_1"  # this Baidu wants the leading 1
    share = fake_netdisk.add_share({"a.mp4": b"video"}, "ab12")
    setup = Setup(fake_netdisk, tmp_path)
    setup.login()
    fetched = setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert codes(fetched) == ["link.unavailable"]  # as the default (without the 1) reads it: 13000
    setup = Setup(fake_netdisk, tmp_path / "full", INTAKE_BAIDU_SHORT_URL="full")
    setup.login()
    assert len(setup.route().fetch(link(share, "ab12"), tmp_path / "n", NO_RESERVE).files) == 1


def test_an_expired_token_is_refreshed_and_stored_before_use(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path, INTAKE_BAIDU_SHORT_URL="full")
    first, _ = setup.login()
    fake_netdisk.expire_access_token(first.access_token)  # Baidu answers 111 now
    share = fake_netdisk.add_share({"a.mp4": b"video"}, "ab12")
    fetched = setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert len(fetched.files) == 1
    now = stored(setup)
    assert now["refresh_token"] != first.refresh_token and now["access_token"] != first.access_token
    used = {h.query.get("access_token") for h in fake_netdisk.requests_to("pan.baidu.com", "/apaas/")}
    assert used == {first.access_token, now["access_token"]}
    assert fake_netdisk.requests_to("pan.baidu.com", "/apaas/")[0].query["short_url"] == share.surl  # full: with 1


def test_a_second_process_uses_the_pair_another_one_stored(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    setup.login()
    share = fake_netdisk.add_share({"a.mp4": b"video"}, "ab12")
    one, two = setup.route(), setup.route()
    one.fetch(link(share, "ab12"), tmp_path / "m1", NO_RESERVE)  # loads the pair
    two.fetch(link(share, "ab12"), tmp_path / "m2", NO_RESERVE)
    fake_netdisk.expire_access_token(stored(setup)["access_token"])
    one.fetch(link(share, "ab12"), tmp_path / "m3", NO_RESERVE)  # refreshes: the old refresh token is spent
    fetched = two.fetch(link(share, "ab12"), tmp_path / "m4", NO_RESERVE)  # must not refresh with it again
    assert len(fetched.files) == 1
    refreshes = [h for h in fake_netdisk.requests_to("openapi.baidu.com", "/oauth/2.0/token")
                 if h.form.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1 and refreshes[0].status == 200


def test_a_token_near_its_end_is_refreshed_first(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    tokens, _ = setup.login()
    setup.store.save(Tokens(tokens.access_token, tokens.refresh_token, expires_at=0.0))
    share = fake_netdisk.add_share({"a.mp4": b"video"})
    setup.route().fetch(link(share), tmp_path / "m", NO_RESERVE)
    assert stored(setup)["expires_at"] > 1e9
    assert all(h.query["access_token"] == stored(setup)["access_token"]
               for h in fake_netdisk.requests_to("pan.baidu.com", "/apaas/"))


def test_no_tokens_and_a_spent_refresh_token(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    share = fake_netdisk.add_share({"a.mp4": b"video"})
    with pytest.raises(ConfigError, match="intake netdisk login"):
        setup.route().fetch(link(share), tmp_path / "m", NO_RESERVE)
    tokens, _ = setup.login()
    fake_netdisk.refresh_tokens[tokens.refresh_token].valid = False
    fake_netdisk.expire_access_token(tokens.access_token)
    with pytest.raises(TransientError, match="intake netdisk login") as caught:
        setup.route().fetch(link(share), tmp_path / "m", NO_RESERVE)
    assert caught.value.retry_after >= 3600


def test_wrong_codes_and_the_text_code(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    setup.login()
    share = fake_netdisk.add_share({"a.mp4": b"video"}, "ab12")
    fetched = setup.route().fetch(link(share, "ab12", pwd="zz99"), tmp_path / "m", NO_RESERVE)
    assert len(fetched.files) == 1
    fetched = setup.route().fetch(link(share, "cd34", pwd="zz99"), tmp_path / "n", NO_RESERVE)
    assert codes(fetched) == ["link.code_wrong"] and "zz99、cd34" in fetched.findings[0].message


def test_over_the_limit_is_split(fake_netdisk, tmp_path):
    setup = Setup(fake_netdisk, tmp_path)
    setup.login()
    setup.account.transfer_limit = 2
    share = fake_netdisk.add_share({**{f"甲/{n}.jpg": b"a" for n in range(3)}, "表.xlsx": b"x"}, "ab12")
    fetched = setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
    assert len(fetched.files) == 4


def test_status_words_setting():
    assert status_words("0=running,2=success,3=failed") == {
        "running": "running", "pending": "running", "success": "success", "failed": "failed",
        "0": "running", "2": "success", "3": "failed"}
