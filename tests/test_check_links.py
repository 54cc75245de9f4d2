"""`intake check FILE.eml` fetches the message's links as the daemon does, against the
loopback fakes: with the cookie route the package is downloaded and judged; with the
probe route each Baidu link and code is checked; a progress bar only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from tests.conftest import run_cli
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetching_support import ROOT, build_package, mail, share_files

CONTRACT_KEYS = {"verdict", "policy", "received_at", "message", "unit", "projects", "findings"}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_package(tmp_path_factory.mktemp("package"))


def eml(tmp_path, text, name="m.eml"):
    path = tmp_path / name
    path.write_bytes(mail(1, text))
    return path


def check(monkeypatch, fake, *args, **environ):
    monkeypatch.setenv("INTAKE_HOST_MAP", fake.host_map)
    monkeypatch.setenv("INTAKE_DISK_RESERVE_GB", "0")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return run_cli("check", *args)


def test_check_downloads_and_judges_a_linked_package(fake_netdisk, tmp_path, monkeypatch, package):
    share = fake_netdisk.add_share(share_files(package), "ab12")
    account = fake_netdisk.add_account()
    path = eml(tmp_path, f"链接: {share.url} 提取码: ab12")
    proc = check(monkeypatch, fake_netdisk, "--json", "--received-at", "2024-07-30T12:00:00+08:00", path,
                 INTAKE_NETDISK_ROUTE="cookie", INTAKE_BAIDU_COOKIE=account.cookie)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "accepted" and set(report) == CONTRACT_KEYS  # the contract's object, no more
    assert proc.stderr == ""  # piped: no progress bar, nothing extra


def test_check_with_the_probe_route_tells_a_wrong_code(fake_netdisk, tmp_path, monkeypatch):
    share = fake_netdisk.add_share({"作品/视频.mp4": 1000}, "ab12")
    proc = check(monkeypatch, fake_netdisk, "--json", eml(tmp_path, f"{share.url} 提取码：zz99"))
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["verdict"] == "rejected"
    assert [f["code"] for f in report["findings"]] == ["link.code_wrong"]


def test_check_with_the_probe_route_lists_a_valid_link_for_staff(fake_netdisk, tmp_path, monkeypatch):
    share = fake_netdisk.add_share({"作品/视频.mp4": 2 * 1024 * 1024}, "ab12")
    proc = check(monkeypatch, fake_netdisk, eml(tmp_path, f"{share.url}?pwd=ab12"))
    assert proc.returncode == 1, proc.stderr
    assert "需人工复核" in proc.stdout and "未配置百度网盘账号" in proc.stdout
    assert "作品/视频.mp4（2.0 MB）" in proc.stdout  # the listing, for the person checking


def test_check_names_a_missing_cookie_in_one_line(fake_netdisk, tmp_path, monkeypatch):
    share = fake_netdisk.add_share({"a.mp4": 10}, "ab12")
    monkeypatch.delenv("INTAKE_BAIDU_COOKIE", raising=False)
    proc = check(monkeypatch, fake_netdisk, eml(tmp_path, f"{share.url}?pwd=ab12"), INTAKE_NETDISK_ROUTE="cookie")
    assert proc.returncode == 2 and "INTAKE_BAIDU_COOKIE" in proc.stderr and "Traceback" not in proc.stderr


def test_check_draws_a_progress_bar_on_a_terminal(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share({"作品/视频.mp4": 3 * 1024 * 1024}, "ab12")
    account = fake_netdisk.add_account()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTAKE_HOST_MAP": fake_netdisk.host_map,
           "INTAKE_DISK_RESERVE_GB": "0", "INTAKE_NETDISK_ROUTE": "cookie", "INTAKE_BAIDU_COOKIE": account.cookie,
           "COLUMNS": "120"}
    leader, follower = pty.openpty()
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "intake.cli", "check", "--json",
                                 str(eml(tmp_path, f"{share.url}?pwd=ab12"))], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            drawn += chunk
        out, _ = proc.communicate(timeout=300)
    finally:
        os.close(leader)
        if proc is not None and proc.poll() is None:
            proc.kill()
    assert json.loads(out)["message"]["links"][0]["url"] == share.url  # stdout stays the JSON alone
    text = drawn.decode("utf-8", "replace")
    assert "视频.mp4" in text and "3.1" in text  # the file's bar, with its size in MB


def test_check_tells_a_wrong_code_beside_a_baidu_link_that_failed_on_our_side(fake_netdisk, tmp_path, monkeypatch):
    first = fake_netdisk.add_share({"作品一/视频.mp4": 1000}, "ab12")
    second = fake_netdisk.add_share({"作品二/视频.mp4": 1000}, "cd34")
    account = fake_netdisk.add_account()
    fake_netdisk.rate_limit(path="/share/transfer", times=-1)
    proc = check(monkeypatch, fake_netdisk, "--json", eml(tmp_path, f"{first.url} 提取码：ab12\n{second.url} 提取码：zz99"),
                 INTAKE_NETDISK_ROUTE="cookie", INTAKE_BAIDU_COOKIE=account.cookie)
    report = json.loads(proc.stdout)
    # the second link is probed though Baidu refused the first's transfer: the sender's problem is told
    assert report["verdict"] == "rejected" and [f["code"] for f in report["findings"]] == ["link.code_wrong",
                                                                                         "link.fetch_failed"]
    assert len(fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")) == 1
