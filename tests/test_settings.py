"""intake.settings: TOML file, INTAKE_* environment overrides, *_PASSWORD_FILE."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from intake.kernel.errors import ConfigError
from intake.settings import load_settings


def test_defaults_are_the_contracts():
    settings = load_settings(environ={})
    assert (settings.imap_host, settings.imap_port, settings.imap_ssl, settings.imap_folder) == (
        "imap.163.com", 993, True, "INBOX")
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == ("smtp.163.com", 465, "ssl")
    assert settings.policy == "roadshow" and settings.url.startswith("sqlite:///")
    assert settings.url.endswith("intake-data/intake.sqlite3") and settings.data_dir.is_absolute()


def test_environment_overrides_the_file(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('imap_host = "imap.qiye.163.com"\nimap_port = 143\npoll_minutes = 2\n', encoding="utf-8")
    settings = load_settings(str(config), {"INTAKE_IMAP_PORT": "10993", "INTAKE_IMAP_SSL": "false",
                                           "INTAKE_IMAP_USER": "c@163.com",
                                           "INTAKE_STAFF_EMAILS": "a@acftu.org, b@acftu.org",
                                           "INTAKE_REPLY_SINCE": "2024-07-01T00:00:00+08:00"})
    assert settings.imap_host == "imap.qiye.163.com" and settings.imap_port == 10993 and not settings.imap_ssl
    assert settings.poll_minutes == 2 and settings.staff_emails == ["a@acftu.org", "b@acftu.org"]
    assert settings.smtp_user == "c@163.com" and settings.smtp_from == "c@163.com"
    assert settings.reply_since == datetime(2024, 6, 30, 16, 0, tzinfo=timezone.utc)


def test_password_file(tmp_path):
    secret = tmp_path / "code"
    secret.write_text("abcdEFGH1234\n")
    settings = load_settings(environ={"INTAKE_IMAP_PASSWORD_FILE": str(secret)})
    assert settings.imap_password == "abcdEFGH1234"
    with pytest.raises(ConfigError, match="INTAKE_SMTP_PASSWORD_FILE"):
        load_settings(environ={"INTAKE_SMTP_PASSWORD_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("environ,setting", [
    ({"INTAKE_IMAP_PORT": "nine"}, "INTAKE_IMAP_PORT"),
    ({"INTAKE_IMAP_SSL": "maybe"}, "INTAKE_IMAP_SSL"),
    ({"INTAKE_SMTP_SECURITY": "tls"}, "INTAKE_SMTP_SECURITY"),
    ({"INTAKE_REPLY_SINCE": "yesterday"}, "INTAKE_REPLY_SINCE"),
    ({"INTAKE_POLL_MINUTES": "0"}, "INTAKE_POLL_MINUTES"),
    ({"INTAKE_STAFF_EMAILS": "张三 <a@acftu.org>"}, "INTAKE_STAFF_EMAILS"),  # a display name is no recipient
    ({"INTAKE_STAFF_EMAILS": "a@acftu.org; b@acftu.org"}, "INTAKE_STAFF_EMAILS"),
])
def test_a_bad_value_names_the_setting(environ, setting):
    with pytest.raises(ConfigError, match=setting):
        load_settings(environ=environ)


def test_unknown_key_in_the_file(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('imap_hots = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="imap_hots"):
        load_settings(str(config), {})


def test_review_settings_edge_cases(tmp_path):
    with pytest.raises(ConfigError, match="INTAKE_POLL_MINUTES"):
        load_settings(environ={"INTAKE_POLL_MINUTES": "nan"})
    assert load_settings(environ={"INTAKE_IMAP_MOVE_TO": ""}).imap_move_to is None
    secret = tmp_path / "code"
    secret.write_text("s3cret")
    config = tmp_path / "intake.toml"
    config.write_text(f'IMAP_PASSWORD_FILE = "{secret}"\nIMAP_USER = "A@163.com"\n', encoding="utf-8")
    settings = load_settings(str(config), {})
    assert settings.imap_password == "s3cret"
    # the same mailbox whatever the case of the user's spelling: no second judging
    assert settings.mailbox_name == load_settings(environ={"INTAKE_IMAP_USER": "a@163.COM"}).mailbox_name
