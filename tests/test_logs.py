"""The daemon's log (issue #14 §5): one line per event on stderr, text or JSON
(INTAKE_LOG_FORMAT), each event with its receipt and Message-ID; and never a secret.

The last test runs `intake poll --once` and `intake digest --send` as subprocesses
against real Dovecot, real aiosmtpd and the loopback Baidu fakes, with every secret set
to a distinctive value, in both formats, with --debug off and on and with a refused
SMTP password, and looks for the secrets in every line, the database and the data folder.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from intake import log_config, logs
from intake.fetchers.tokens import Tokens, TokenStore
from intake.kernel.errors import ConfigError
from intake.settings import Settings, load_settings
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.imap_server import USER, Dovecot, Proxy163
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
IMAP_SECRET = "imapSecret-Q7x9Lw2"
SMTP_SECRET = "smtpSecret-K3v8Pz5"
WRONG_SMTP_SECRET = "smtpWrong-R6m2Tq4"  # a wrong password is a secret too
APP_SECRET = "baiduSecretKey-H5n1Zc8"
ACCESS_TOKEN, REFRESH_TOKEN = "accessTok-J2w7Yd3", "refreshTok-B9e4Xs6"
DB_SECRET = "dbSecret-U4k8Fm1"


@pytest.fixture(autouse=True)
def restore_logging():
    """setup() changes the root logger: put it back for the tests that follow."""
    root, intake = logging.getLogger(), logging.getLogger("intake")
    handlers, levels = list(root.handlers), (root.level, intake.level)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(levels[0])
    intake.setLevel(levels[1])
    logging.captureWarnings(False)


def lines_logged(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def fail_with(text: str) -> None:
    try:
        raise RuntimeError(text)
    except RuntimeError:
        logging.getLogger("intake.test").exception("it failed", extra=logs.about("WX2024-000007", "<a@b>"))


# ------------------------------------------------------------------ formats


def test_text_keeps_an_event_with_its_traceback_on_one_line(capsys):
    logs.setup("text")
    logging.getLogger("intake").info("message 7: received -> fetching",
                                     extra=logs.about("WX2024-000007", "<evil\nINFO forged line@x>"))
    fail_with("first line\nsecond line")
    first, second = lines_logged(capsys)
    assert first.endswith("INFO message 7: received -> fetching "
                          "[receipt=WX2024-000007 message_id=<evil\\nINFO forged line@x>]")
    assert first.startswith(datetime.now(timezone.utc).astimezone(logs.BEIJING).strftime("%Y-%m-%dT"))
    assert "+08:00 " in first  # Beijing time
    assert "ERROR it failed [receipt=WX2024-000007 message_id=<a@b>] | Traceback (most recent call last):" in second
    assert second.endswith("RuntimeError: first line\\nsecond line")


def test_json_is_one_object_per_line_with_the_message_fields(capsys, monkeypatch):
    logs.setup("json")
    fail_with("boom")
    logging.getLogger("intake").info("poll of imap:x: 2 new")
    failed, polled = (json.loads(line) for line in lines_logged(capsys))
    assert set(failed) == {"time", "level", "event", "receipt", "message_id", "logger", "exc"}
    assert (failed["level"], failed["event"], failed["receipt"], failed["message_id"]) == (
        "error", "it failed", "WX2024-000007", "<a@b>")
    assert failed["exc"].startswith("Traceback") and failed["exc"].endswith("RuntimeError: boom")
    assert failed["time"].endswith("+08:00")
    assert polled["receipt"] is None and polled["exc"] is None and polled["event"] == "poll of imap:x: 2 new"


@pytest.mark.parametrize("log_format", logs.FORMATS)
def test_a_hostile_message_id_stays_inside_its_event(capsys, log_format):
    hostile = "<a\rb\nc\x00d\x0be\x85f\u2028g\u2029h\x1bi@x>" + "j" * 10_000
    logs.setup(log_format)
    logging.getLogger("intake").info("message 1 received", extra=logs.about("WX2024-000001", hostile))
    (line,) = capsys.readouterr().err.splitlines()  # str.splitlines breaks at \x85 and \u2028 too
    assert len(line) < 1000  # a sender's Message-ID is cut short
    if log_format == "json":
        assert json.loads(line)["message_id"] == hostile[:logs.FIELD_LIMIT]
    else:
        assert "message_id=<a\\rb\\nc\\x00d\\u000be\\u0085f\\u2028g\\u2029h\\x1bi@x>jjj" in line


@pytest.mark.parametrize("log_format", logs.FORMATS)
def test_a_sender_s_huge_link_keeps_its_event_one_journal_line(capsys, log_format):
    """A link is the sender's to make 100 000 characters long, and the daemon logs the
    link it fetches; journald splits a line over 48 KiB (LineMax) into two entries, the
    second without the priority. The event is cut in its middle: its start and end stay."""
    from intake.parsers.links import links_in_text

    (link,) = links_in_text("https://pan.baidu.com/share/link?shareid=1&uk=2&x=" + "A" * 50_000 + "B" * 50_000)
    logs.setup(log_format)
    log = logging.getLogger("intake")
    log.info("%s: fetching %s link %s", "WX2024-000001", link.provider, link.url, extra=logs.about("WX2024-000001"))
    fail_with("中" * 30_000 + "\x01" * 30_000 + "the end")  # a traceback of hostile text, escaped 4x
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(len(line.encode("utf-8")) < 48 * 1024 for line in lines), [len(line.encode()) for line in lines]
    fetched, failed = lines
    if log_format == "json":
        fetched, failed = json.loads(fetched)["event"], json.loads(failed)["exc"]
    assert "fetching baidu link https://pan.baidu.com/share/link?shareid=1&uk=2&x=AAA" in fetched
    assert fetched.endswith("BBBB") or "BBBB [receipt=WX2024-000001" in fetched
    assert "characters cut" in fetched
    assert failed.rstrip("]").endswith("the end")  # the exception's own line survives the cut


def test_under_journald_the_line_carries_the_priority_and_no_time(tmp_path, monkeypatch):
    journal = (tmp_path / "journal").open("w+")
    status = os.fstat(journal.fileno())
    monkeypatch.setattr(sys, "stderr", journal)
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
    logs.setup("text")
    logging.getLogger("intake").warning("mailbox connection lost")
    fail_with("x")
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino + 1}")  # another stream's
    logs.setup("text")
    logging.getLogger("intake").info("round: 0 new")
    journal.seek(0)
    warning, error, elsewhere = journal.read().splitlines()
    assert warning == "<4>WARNING mailbox connection lost"
    assert error.startswith("<3>ERROR it failed")
    assert elsewhere.endswith(" INFO round: 0 new") and not elsewhere.startswith("<")


def test_json_under_journald_carries_the_priority_journald_takes_off(tmp_path, monkeypatch):
    """journald reads the leading <N> as the entry's priority and keeps the rest, the JSON
    object, as its MESSAGE: `journalctl -p err` finds the errors in either format."""
    journal = (tmp_path / "journal").open("w+")
    status = os.fstat(journal.fileno())
    monkeypatch.setattr(sys, "stderr", journal)
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
    logs.setup("json")
    fail_with("x")
    logging.getLogger("intake").info("round: 0 new")
    journal.seek(0)
    error, info = journal.read().splitlines()
    assert error.startswith("<3>{") and info.startswith("<6>{")
    assert json.loads(error[3:])["level"] == "error" and json.loads(info[3:])["event"] == "round: 0 new"


def test_debug_shows_intakes_debug_events_only(capsys):
    logs.setup("text", debug=True)
    logging.getLogger("intake.fetchers").debug("trying the share")
    logging.getLogger("imapclient.imaplib").debug("> b'LOGIN collect@163.com secret'")  # imaplib's wire log
    logging.getLogger("urllib3.connectionpool").debug("GET /rest?access_token=x")
    (line,) = lines_logged(capsys)
    assert line.endswith("DEBUG trying the share")
    logs.setup("text")
    logging.getLogger("intake").debug("hidden")
    assert lines_logged(capsys) == []


# ------------------------------------------------------------------ settings


def test_a_bad_log_format_names_the_setting():
    assert load_settings(environ={"INTAKE_LOG_FORMAT": "JSON"}).log_format == "json"
    assert load_settings(environ={}).log_format == "text"
    with pytest.raises(ConfigError, match=r"^INTAKE_LOG_FORMAT: must be text or json, got 'xml'$"):
        load_settings(environ={"INTAKE_LOG_FORMAT": "xml"})


def test_a_bad_log_format_is_one_line_from_the_command(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}, "PYTHONPATH": str(ROOT),
           "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_LOG_FORMAT": "syslog"}
    done = subprocess.run([sys.executable, "-m", "intake.cli", "status"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert done.stderr == "intake: INTAKE_LOG_FORMAT: must be text or json, got 'syslog'\n"


def secret_settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", imap_user=USER, imap_password=IMAP_SECRET,
                        smtp_password=SMTP_SECRET, baidu_cookie="BDUSS=bdussValue-W3r5; STOKEN=stokenValue-P8q2",
                        baidu_secret_key=APP_SECRET,
                        database_url=f"postgresql://intake:{DB_SECRET}@127.0.0.1:5432/intake")
    TokenStore.in_data_dir(settings.data_dir).save(Tokens(ACCESS_TOKEN, REFRESH_TOKEN, 2e9))
    return settings


SECRETS = (IMAP_SECRET, SMTP_SECRET, APP_SECRET, DB_SECRET, ACCESS_TOKEN, REFRESH_TOKEN, "bdussValue-W3r5",
           "stokenValue-P8q2")


def test_the_settings_in_force_say_which_secrets_are_set_never_their_values(tmp_path):
    shown = log_config.settings_in_force(secret_settings(tmp_path))
    assert "imap_password=(set)" in shown and "baidu_cookie=(set)" in shown and "smtp_password=(set)" in shown
    assert f"imap_user={USER}" in shown and "database=postgresql://intake:***@127.0.0.1:5432/intake" in shown
    assert "log_format=text" in shown and "\n" not in shown
    assert not [secret for secret in SECRETS if secret in shown]
    assert not [secret for secret in SECRETS if secret in repr(secret_settings(tmp_path))]


@pytest.mark.parametrize("log_format", logs.FORMATS)
def test_the_redactor_masks_a_secret_whatever_logged_it(tmp_path, capsys, log_format):
    """Defence in depth: were a secret logged by mistake (ours, a library's), it is masked."""
    def log_every_secret() -> None:
        for secret in SECRETS:
            logging.getLogger("intake").warning("login with %s", secret)
            logging.getLogger("urllib3").warning(f"url /x?y={secret}&z=1")
            logging.getLogger("intake").info("about", extra=logs.about("WX1", f"<{secret}@x>"))
            fail_with(f"the server said {secret}")
        logging.getLogger("requests").warning("GET /rest/2.0/xpan?access_token=refreshedToken-T1&method=list")
        logging.getLogger("intake").warning("Cookie: BDUSS=freshBduss-V6; STOKEN=freshStoken-N9")

    # the test can fail: with no secrets known, the same calls leak every one of them
    logs.setup(log_format)
    log_every_secret()
    unguarded = capsys.readouterr().err
    assert all(secret in unguarded for secret in SECRETS)

    logs.setup(log_format, log_config.secret_values(secret_settings(tmp_path)))
    log_every_secret()
    guarded = capsys.readouterr().err
    leaked = [s for s in (*SECRETS, "refreshedToken-T1", "freshBduss-V6", "freshStoken-N9") if s in guarded]
    assert leaked == [] and guarded.count(logs.MASK) >= 4 * len(SECRETS) + 2
    assert len(guarded.splitlines()) == 4 * len(SECRETS) + 2  # still one line per event
    assert logs.clean(f"intake: rejected {SMTP_SECRET}") == "intake: rejected ***"


@pytest.mark.parametrize("log_format", logs.FORMATS)
def test_credentials_in_json_a_dict_or_quotes_are_masked_whole(capsys, log_format):
    """Tokens a refresh wrote after start-up are known to no list: an answer body or a
    dict that holds them is masked by their names, quoted keys and quoted values too."""
    logs.setup(log_format)
    log = logging.getLogger("intake")
    log.warning('openapi answered {"access_token": "freshAccess-A1", "refresh_token":"freshRefresh-B2"}')
    log.warning("token store %s", {"access_token": "freshAccess-C3", "expires": 2e9})
    log.warning('libpq: password="two words-D4" user=intake')
    log.warning(r'"password": "esc\"aped-E5"')
    out = capsys.readouterr().err
    assert [word for word in ("freshAccess-A1", "freshRefresh-B2", "freshAccess-C3", "two", "words-D4", "aped-E5")
            if word in out] == []
    assert out.count(logs.MASK) == 5 and len(out.splitlines()) == 4
    assert "'expires': 2000000000.0" in out  # what is no credential stays


# ------------------------------------------------------------------ the whole daemon, with secrets set


@pytest.fixture
def dovecot_with_secret():
    """Dovecot whose account has a distinctive password, behind the 163-like proxy."""
    import shutil

    if not shutil.which("dovecot"):
        pytest.skip("dovecot is not installed (deploy/bootstrap.sh --test installs it)")
    server = Dovecot()
    (server.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{IMAP_SECRET}::::::\n")
    server.start()
    proxy = Proxy163(server.port)
    try:
        yield server, proxy
    finally:
        proxy.close()
        server.remove()


def submission(n: int, link: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = f"unit{n}@163.com", USER
    message["Subject"], message["Message-ID"] = f"湖北省总工会路演项目 {n}", f"<logs{n}@test.example.cn>"
    message.set_content(f"链接: {link} 提取码: ab12 复制这段内容后打开百度网盘手机App")
    return message.as_bytes()


def append(server: Dovecot, raw: bytes) -> None:
    from imapclient import IMAPClient

    client = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=30)
    client.login(USER, IMAP_SECRET)
    client.append("INBOX", raw, msg_time=ON_TIME)
    client.logout()


def check_lines(stderr: str, log_format: str) -> list[dict]:
    """Every stderr line is one event (or the command's last `intake:` line): parsed."""
    events = []
    for line in stderr.splitlines():
        if line.startswith("intake: "):
            continue
        if log_format == "json":
            event = json.loads(line)
            assert set(event) == {"time", "level", "event", "receipt", "message_id", "logger", "exc"}, line
        else:
            time, level, text = line.split(" ", 2)
            assert datetime.fromisoformat(time).utcoffset() is not None, line
            assert level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
            receipt = text.split("[receipt=", 1)[1].split(" ", 1)[0].rstrip("]") if "[receipt=" in text else None
            event = {"level": level.lower(), "event": text, "receipt": receipt,
                     "exc": text.split(" | ", 1)[1] if " | Traceback" in text else None}
        events.append(event)
    return events


def test_no_secret_in_any_log_line_the_database_or_the_data_folder(tmp_path, dovecot_with_secret, smtp_server,
                                                                    fake_netdisk):
    dovecot, proxy = dovecot_with_secret
    server = smtp_server("ssl", password=SMTP_SECRET)
    account, app = fake_netdisk.add_account(), fake_netdisk.add_app()
    share = fake_netdisk.add_share({"路演作品/申报书.txt": "申报书"}, "ab12")
    data = tmp_path / "data"
    tokens = TokenStore.in_data_dir(data)
    access, refresh = fake_netdisk.issue_tokens(app, account)
    tokens.save(Tokens(access, refresh, 2e9))
    secrets = [IMAP_SECRET, SMTP_SECRET, WRONG_SMTP_SECRET, app.secret_key, access, refresh,
               account.cookie, account.bduss, account.stoken]
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_") and key != "JOURNAL_STREAM"}
    env.update(server.environment(), PYTHONPATH=str(ROOT), INTAKE_DATA_DIR=str(data),
               INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(proxy.port), INTAKE_IMAP_SSL="false",
               INTAKE_IMAP_USER=USER, INTAKE_IMAP_PASSWORD=IMAP_SECRET, INTAKE_STAFF_EMAILS="staff@acftu.org",
               INTAKE_NETDISK_ROUTE="cookie", INTAKE_BAIDU_COOKIE=account.cookie, INTAKE_BAIDU_APP_KEY=app.app_key,
               INTAKE_BAIDU_APP_ID=app.app_id, INTAKE_BAIDU_SECRET_KEY=app.secret_key, INTAKE_HOST_MAP=fake_netdisk.host_map, INTAKE_DISK_RESERVE_GB="0")
    outputs: list[str] = []

    def intake(*args: str, expect: int = 0, **extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "intake.cli", *args], env={**env, **extra}, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == expect, done.stderr
        return done.stderr

    runs = 0
    for log_format in logs.FORMATS:
        for debug in ((), ("--debug",)):
            runs += 1
            append(dovecot, submission(runs, share.url))
            polled = check_lines(intake(*debug, "poll", "--once", INTAKE_LOG_FORMAT=log_format), log_format)
            events = [e["event"] for e in polled]
            assert any("settings in force" in e and "imap_password=(set)" in e for e in events)
            assert any(e.startswith(f"poll of imap:{USER}@127.0.0.1/INBOX: 1 new") for e in events)
            assert [e for e in polled if e["receipt"] and "-> done (reply_queued)" in e["event"]]
            assert [e for e in polled if e["receipt"] and e["event"].startswith("reply (outbox")
                    and " sent" in e["event"]]
            check_lines(intake(*debug, "digest", "--send", "--force", INTAKE_LOG_FORMAT=log_format), log_format)
    for log_format in logs.FORMATS:  # a refused SMTP password: the error is logged with its traceback
        append(dovecot, submission(runs := runs + 1, share.url))
        failed = check_lines(intake("--debug", "poll", "--once", expect=2, INTAKE_LOG_FORMAT=log_format,
                                    INTAKE_SMTP_PASSWORD=WRONG_SMTP_SECRET), log_format)
        assert [e for e in failed if e["exc"] and "LoginRejected" in e["exc"] and "Traceback" in e["exc"]]
        assert outputs[-1].splitlines()[-1].startswith("intake: INTAKE_SMTP_PASSWORD: localhost rejected the login")

    for log_format in logs.FORMATS:  # the openapi route, its downloads failing (the token travels in their URL)
        append(dovecot, submission(runs := runs + 1, share.url))
        fake_netdisk.fail_http("d.pcs.baidu.com", 503, times=100)
        deferred = check_lines(intake("--debug", "poll", "--once", INTAKE_LOG_FORMAT=log_format,
                                      INTAKE_NETDISK_ROUTE="openapi"), log_format)
        assert [e for e in deferred if e["receipt"] and "fetch_deferred" in e["event"]]
        assert [e for e in deferred if e["receipt"] and "fetching failed" in e["event"] and "HTTP 503" in e["event"]
                and "Traceback" in (e["exc"] or "")]
        fake_netdisk.clear_faults()

    # the secrets were in use: the mailbox, the SMTP login and the Baidu account all served us
    assert sum(m.message["To"] == "staff@acftu.org" for m in server.messages) >= 4  # a round may queue one too
    assert len([m for m in server.messages if m.message["To"] != "staff@acftu.org"]) == 6  # 2 once mended
    assert {c.login for c in server.connections if c.login} == {USER}
    assert fake_netdisk.requests_to("pan.baidu.com", "/share/transfer")

    if os.environ.get("LOGS_TEST_DUMP"):
        Path(os.environ["LOGS_TEST_DUMP"]).write_text("\n=====\n".join(outputs))

    def leaks(text: str) -> list[str]:
        return [secret for secret in secrets if secret in text]

    assert fake_netdisk.requests_to("pan.baidu.com", "/apaas/1.0/share/transfer")
    assert leaks(tokens.path.read_text()) == [access, refresh]  # the search finds what is there
    assert [(n, leaks(output)) for n, output in enumerate(outputs) if leaks(output)] == []
    with sqlite3.connect(data / "intake.sqlite3") as database:
        dump = "\n".join(database.iterdump())
    assert "WX2024-000006" in dump and leaks(dump) == []
    files = [path for path in data.rglob("*") if path.is_file() and path != tokens.path]
    assert [(str(path), leaks(path.read_bytes().decode("utf-8", "replace"))) for path in files
            if leaks(path.read_bytes().decode("utf-8", "replace"))] == []
