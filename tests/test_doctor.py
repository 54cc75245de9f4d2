"""`intake doctor` against real servers: Dovecot behind the 163-like proxy (ID before
SELECT), aiosmtpd with AUTH over TLS, SQLite and PostgreSQL, the loopback Baidu; and each
way one of them can be wrong (a refused password, a closed port, an old schema, a tool
off the PATH, a disk reserve larger than the disk, a clock the server contradicts)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from intake import store
from intake.doctor import run_checks
from intake.fetchers.tokens import Tokens, TokenStore
from tests.conftest import run_cli, simple_mail
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import OpenApiSetup
from tests.imap_server import PASSWORD as IMAP_PASSWORD, USER as IMAP_USER
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """A clean INTAKE_* environment (this process's and its children's); ``set(**values)``."""
    for name in list(os.environ):
        if name.startswith("INTAKE_"):
            monkeypatch.delenv(name)
    # no request leaves the machine: Baidu is a closed loopback port unless a test maps it
    monkeypatch.setenv("INTAKE_HOST_MAP", f"pan.baidu.com=http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("INTAKE_DATA_DIR", str(tmp_path / "data"))

    def set_(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_


@pytest.fixture
def working(environment, mailbox_163, smtp_server, tmp_path, monkeypatch):
    """Every part up and configured, SQLite; returns (proxy, smtp)."""
    return start_all(environment, mailbox_163, smtp_server, f"sqlite:///{tmp_path / 'db.sqlite3'}", monkeypatch)


@pytest.fixture
def working_on_each_database(environment, mailbox_163, smtp_server, database_url, monkeypatch):
    """The same on SQLite and on PostgreSQL (INTAKE_TEST_DATABASE_URL)."""
    return start_all(environment, mailbox_163, smtp_server, database_url, monkeypatch)


def start_all(environment, mailbox_163, smtp_server, database_url, monkeypatch):
    dovecot, proxy = mailbox_163
    client = dovecot.client()
    client.append("INBOX", simple_mail(1), msg_time=datetime.now(timezone.utc) - timedelta(minutes=3))
    client.logout()
    smtp = smtp_server("ssl")
    smtp.trust(monkeypatch)
    store.upgrade(store.make_engine(database_url))
    environment(INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(proxy.port), INTAKE_IMAP_SSL="false",
                INTAKE_IMAP_USER=IMAP_USER, INTAKE_IMAP_PASSWORD=IMAP_PASSWORD, INTAKE_DATABASE_URL=database_url,
                INTAKE_DISK_RESERVE_GB="0", INTAKE_DOWNLOAD_MAX_GB="0.001",
                **{k: v for k, v in smtp.environment().items() if k.startswith("INTAKE_")})
    return proxy, smtp


def by_name(checks) -> dict:
    return {check.name: check for check in checks}


def failing(checks) -> list[str]:
    return [check.name for check in checks if check.required and not check.ok]


def test_all_fine_against_dovecot_aiosmtpd_and_the_database(working_on_each_database, fake_netdisk, environment):
    proxy, smtp = working_on_each_database
    account = fake_netdisk.add_account()
    environment(INTAKE_NETDISK_ROUTE="cookie", INTAKE_BAIDU_COOKIE=account.cookie,
                INTAKE_HOST_MAP=fake_netdisk.host_map)
    proc = run_cli("doctor", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    checks = {check["name"]: check for check in report["checks"]}
    assert set(checks) == {"settings", "imap", "smtp", "database", "netdisk", "disk", "clock", "tool.unar",
                           "tool.7zz", "tool.file", "tool.antiword", "tool.mediainfo"}
    assert all(check["ok"] and check["required"] for check in checks.values()), checks
    assert set(report["checks"][0]) == {"name", "ok", "required", "detail"}
    assert "已发送 ID 命令" in checks["imap"]["detail"] and "共 1 封邮件" in checks["imap"]["detail"]
    session = proxy.sessions[-1]  # ID before the (read-only) EXAMINE, which 163 therefore allows
    assert session["commands"].index("ID") < session["commands"].index("EXAMINE") and session["refused_select"] == 0
    assert smtp.connections[-1].login == smtp.user and smtp.messages == []  # logged in, sent nothing
    assert "最新版本" in checks["database"]["detail"]
    assert fake_netdisk.requests_to("pan.baidu.com", "/api/user/getinfo")
    # two servers' clocks were compared: the newest message's INTERNALDATE and Baidu's Date
    assert "INTERNALDATE" in checks["clock"]["detail"] and "HTTP Date" in checks["clock"]["detail"]
    for secret in (IMAP_PASSWORD, smtp.password, account.bduss, account.stoken):
        assert secret not in proc.stdout


def test_starttls_and_the_text_report(working, smtp_server, environment, monkeypatch):
    smtp = smtp_server("starttls")
    environment(**{k: v for k, v in smtp.environment().items() if k.startswith("INTAKE_")})
    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "结论：全部正常。"
    assert any(line.startswith("[正常] 发信（SMTP 登录）") for line in lines)
    assert any(line.startswith("[不需要] 百度网盘") for line in lines)  # the probe route needs no account
    assert smtp.connections[-1].starttls and smtp.connections[-1].login == smtp.user
    assert IMAP_PASSWORD not in proc.stdout and smtp.password not in proc.stdout


def test_a_wrong_imap_password_fails_its_line_only(working, environment):
    environment(INTAKE_IMAP_PASSWORD="not-the-code")
    proc = run_cli("doctor")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    imap = next(line for line in proc.stdout.splitlines() if "收件邮箱" in line)
    assert imap.startswith("[需处理]") and "INTAKE_IMAP_PASSWORD" in imap and "客户端授权码" in imap
    assert "not-the-code" not in proc.stdout
    assert "Traceback" not in proc.stderr
    assert failing(run_checks(None)) == ["imap"]


def test_smtp_down_fails_clearly(working, environment):
    environment(INTAKE_SMTP_PORT=str(free_port()))  # nothing listens there
    checks = run_checks(None)
    assert failing(checks) == ["smtp"]
    detail = by_name(checks)["smtp"].detail
    assert "无法连接发信服务器" in detail and "INTAKE_SMTP_PORT" in detail


def test_a_wrong_smtp_password_names_it(working, environment):
    environment(INTAKE_SMTP_PASSWORD="wrong-code")
    checks = run_checks(None)
    assert failing(checks) == ["smtp"]
    assert "INTAKE_SMTP_PASSWORD" in by_name(checks)["smtp"].detail
    assert "wrong-code" not in by_name(checks)["smtp"].detail


def test_imap_down_fails_clearly(environment, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    store.upgrade(store.make_engine(database_url))
    environment(INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(free_port()), INTAKE_IMAP_SSL="false",
                INTAKE_IMAP_USER=IMAP_USER, INTAKE_IMAP_PASSWORD=IMAP_PASSWORD, INTAKE_DATABASE_URL=database_url,
                INTAKE_DISK_RESERVE_GB="0")
    checks = run_checks(None)
    assert failing(checks) == ["imap"]
    assert "无法连接收件服务器" in by_name(checks)["imap"].detail


def test_a_missing_folder_names_the_setting(working, environment):
    environment(INTAKE_IMAP_FOLDER="没有这个文件夹")
    checks = run_checks(None)
    assert failing(checks) == ["imap"] and "INTAKE_IMAP_FOLDER" in by_name(checks)["imap"].detail


def test_a_database_not_migrated(environment, database_url):
    engine = store.make_engine(database_url)
    with engine.begin() as connection:  # reachable, but no schema (SQLite: the file exists, empty)
        connection.exec_driver_sql("CREATE TABLE unrelated (x integer)")
    engine.dispose()
    environment(INTAKE_DATABASE_URL=database_url)
    check = by_name(run_checks(None))["database"]
    assert not check.ok and "intake db upgrade" in check.detail and "尚未建立表结构" in check.detail


def test_a_database_behind_the_head(environment, database_url):
    from alembic import command
    from alembic.config import Config

    engine = store.make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")  # one revision short of the head
    engine.dispose()
    environment(INTAKE_DATABASE_URL=database_url)
    check = by_name(run_checks(None))["database"]
    assert not check.ok and "不是最新的" in check.detail and "intake db upgrade" in check.detail


def test_a_database_not_reachable(environment):
    environment(INTAKE_DATABASE_URL=f"postgresql://intake:secret-pw@127.0.0.1:{free_port()}/intake")
    check = by_name(run_checks(None))["database"]
    assert not check.ok and "无法连接数据库" in check.detail and "INTAKE_DATABASE_URL" in check.detail
    assert "secret-pw" not in check.detail


def test_no_sqlite_file_yet(environment, tmp_path):
    check = by_name(run_checks(None))["database"]
    assert not check.ok and "intake db upgrade" in check.detail
    assert not (tmp_path / "data" / "intake.sqlite3").exists()  # the doctor created nothing


def test_a_tool_off_the_path(environment, tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    for program in ("unar", "lsar", "7zz", "file"):  # every tool but antiword
        found = shutil.which(program)
        if found is None:
            pytest.skip(f"{program} is not installed (deploy/bootstrap.sh installs it)")
        (tools / program).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    checks = by_name(run_checks(None))
    assert not checks["tool.antiword"].ok and "antiword" in checks["tool.antiword"].detail
    assert "apt-get install antiword" in checks["tool.antiword"].detail
    assert all(checks[f"tool.{name}"].ok for name in ("unar", "7zz", "file"))


def test_a_disk_reserve_larger_than_the_free_space(environment, tmp_path):
    free = shutil.disk_usage(tmp_path).free / 1024 ** 3
    environment(INTAKE_DISK_RESERVE_GB=str(round(free * 2 + 1)))
    check = by_name(run_checks(None))["disk"]
    assert not check.ok and "INTAKE_DISK_RESERVE_GB" in check.detail


def test_a_bad_setting_is_the_first_line_and_the_rest_waits(environment):
    environment(INTAKE_IMAP_PORT="not-a-port", INTAKE_IMAP_PASSWORD="pw-that-must-not-show")
    proc = run_cli("doctor", "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    first = report["checks"][0]
    assert first["name"] == "settings" and not first["ok"] and "INTAKE_IMAP_PORT" in first["detail"]
    waiting = [c for c in report["checks"] if c["detail"].startswith("未检查")]
    assert {c["name"] for c in waiting} == {"imap", "smtp", "database", "netdisk", "disk"}
    assert "pw-that-must-not-show" not in proc.stdout


def test_a_usage_error_exits_2(environment):
    proc = run_cli("doctor", "--no-such-option")
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_a_dead_cookie_and_an_incomplete_one(environment, fake_netdisk):
    environment(INTAKE_NETDISK_ROUTE="cookie", INTAKE_HOST_MAP=fake_netdisk.host_map,
                INTAKE_BAIDU_COOKIE="BDUSS=logged-out-session; STOKEN=old-stoken-value")
    check = by_name(run_checks(None))["netdisk"]
    assert not check.ok and "已失效" in check.detail and "INTAKE_BAIDU_COOKIE" in check.detail
    assert "logged-out-session" not in check.detail
    environment(INTAKE_BAIDU_COOKIE="BDUSS=only-half-of-it")
    check = by_name(run_checks(None))["netdisk"]
    assert not check.ok and "缺少 STOKEN" in check.detail and "only-half-of-it" not in check.detail


def test_openapi_tokens_near_their_end_are_refreshed_and_stored(environment, fake_netdisk, tmp_path):
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    tokens, _ = setup.login()
    setup.store.save(Tokens(tokens.access_token, tokens.refresh_token, expires_at=0.0))
    environment(INTAKE_NETDISK_ROUTE="openapi", INTAKE_HOST_MAP=fake_netdisk.host_map,
                **{k: v for k, v in setup.environ.items()})
    check = by_name(run_checks(None))["netdisk"]
    assert check.ok and "已刷新" in check.detail, check.detail
    stored = TokenStore.in_data_dir(setup.settings.data_dir).load()
    assert stored is not None and stored.refresh_token != tokens.refresh_token and stored.expires_at > 1e9
    uinfo = fake_netdisk.requests_to("pan.baidu.com", "/rest/2.0/xpan/nas")
    assert uinfo and uinfo[-1].query["access_token"] == stored.access_token
    assert stored.access_token not in check.detail and stored.refresh_token not in check.detail
    # a second doctor run finds the fresh pair and leaves it alone
    again = by_name(run_checks(None))["netdisk"]
    assert again.ok and "已刷新" not in again.detail
    assert TokenStore.in_data_dir(setup.settings.data_dir).load() == stored


def test_openapi_a_refused_access_token_is_refreshed_once(environment, fake_netdisk, tmp_path):
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    tokens, _ = setup.login()
    fake_netdisk.expire_access_token(tokens.access_token)  # Baidu answers 111 although it has not expired
    environment(INTAKE_NETDISK_ROUTE="openapi", INTAKE_HOST_MAP=fake_netdisk.host_map, **setup.environ)
    check = by_name(run_checks(None))["netdisk"]
    assert check.ok and "不再认可原访问令牌，已刷新" in check.detail, check.detail
    assert setup.store.load().refresh_token != tokens.refresh_token


def test_openapi_without_the_app_id_or_tokens_or_with_a_spent_refresh_token(environment, fake_netdisk, tmp_path):
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    environment(INTAKE_NETDISK_ROUTE="openapi", INTAKE_HOST_MAP=fake_netdisk.host_map,
                **{**setup.environ, "INTAKE_BAIDU_APP_ID": ""})
    check = by_name(run_checks(None))["netdisk"]
    assert not check.ok and "请设置 INTAKE_BAIDU_APP_ID" in check.detail
    environment(INTAKE_BAIDU_APP_ID=setup.environ["INTAKE_BAIDU_APP_ID"])
    check = by_name(run_checks(None))["netdisk"]
    assert not check.ok and "intake netdisk login" in check.detail and "尚未授权" in check.detail
    tokens, _ = setup.login()
    fake_netdisk.refresh_tokens[tokens.refresh_token].valid = False
    fake_netdisk.expire_access_token(tokens.access_token)
    check = by_name(run_checks(None))["netdisk"]
    assert not check.ok and "intake netdisk login" in check.detail


class _SkewedDate(BaseHTTPRequestHandler):
    """Answers anything with a Date an hour ahead of ours: a server whose clock disagrees."""

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.end_headers()

    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def skewed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SkewedDate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_clock_a_server_contradicts(environment, skewed_server):
    environment(INTAKE_HOST_MAP=f"pan.baidu.com={skewed_server}")
    check = by_name(run_checks(None))["clock"]
    assert not check.ok and check.detail.startswith("本机时钟比 pan.baidu.com 的 HTTP Date 慢约 60 分钟")
    assert "NTP" in check.detail


def test_a_message_received_in_our_future_means_our_clock_is_slow(working, mailbox_163, environment):
    client = mailbox_163[0].client()
    client.append("INBOX", simple_mail(2), msg_time=datetime.now(timezone.utc) + timedelta(hours=2))
    client.logout()
    check = by_name(run_checks(None))["clock"]
    assert not check.ok and "INTERNALDATE" in check.detail and "慢" in check.detail


def test_no_server_time_is_said_not_claimed(environment):
    check = by_name(run_checks(None))["clock"]
    assert check.ok and "未核对本机时钟是否准确" in check.detail and "北京时间" in check.detail


def test_the_settings_file_is_read_as_the_daemon_reads_it(environment, tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('disk_reserve_gb = 0\nimap_pasword = "typo"\n', encoding="utf-8")
    proc = run_cli("doctor", "--config", str(config))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("[需处理] 设置") and "imap_pasword" in first
    config.write_text("disk_reserve_gb = 0\n", encoding="utf-8")
    checks = by_name(run_checks(str(config)))
    assert checks["settings"].ok and "保留空间 INTAKE_DISK_RESERVE_GB=0 GB" in checks["disk"].detail


def test_what_the_configuration_does_not_need_is_not_a_failure(environment, tmp_path):
    maildir = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    store.upgrade(store.make_engine(f"sqlite:///{tmp_path / 'data' / 'intake.sqlite3'}"))
    environment(INTAKE_MAILDIR=str(maildir), INTAKE_DISK_RESERVE_GB="0")
    checks = run_checks(None)
    assert failing(checks) == []
    unneeded = {check.name for check in checks if not check.required}
    assert unneeded == {"imap", "smtp", "netdisk"}  # a Maildir, the outbox folder, the probe route
    assert "outbox" in by_name(checks)["smtp"].detail
    environment(INTAKE_MAILDIR=str(tmp_path))  # not a Maildir
    check = by_name(run_checks(None))["imap"]
    assert check.required and not check.ok and "INTAKE_MAILDIR" in check.detail


def _not_owned_by(owner: int, folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.lstat().st_uid != owner)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can write in another user's data folder")
def test_doctor_run_by_another_user_leaves_the_services_files_alone(environment, fake_netdisk, tmp_path):
    """`sudo intake doctor` (root) over the service user's data folder: a token refresh
    would store the new pair (the old refresh token is then spent) in a file the
    service cannot read, and a lock file it cannot open. The netdisk check says to run
    as the folder's owner instead, and nothing in the folder changes hands."""
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    tokens, _ = setup.login()
    setup.store.save(Tokens(tokens.access_token, tokens.refresh_token, expires_at=0.0))  # due for a refresh
    service_user = 65534  # nobody: the folder is the service's
    data = setup.settings.data_dir
    for path in [data, *data.rglob("*")]:
        os.chown(path, service_user, service_user)
    environment(INTAKE_NETDISK_ROUTE="openapi", INTAKE_HOST_MAP=fake_netdisk.host_map,
                INTAKE_DATA_DIR=str(data), **setup.environ)
    check = by_name(run_checks(None))["netdisk"]
    assert not check.ok and "sudo -u" in check.detail and "intake doctor" in check.detail, check.detail
    assert _not_owned_by(service_user, data) == []
    assert setup.store.load().refresh_token == tokens.refresh_token  # not spent behind the service's back
