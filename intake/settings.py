"""Daemon settings: a TOML file (``--config`` or INTAKE_CONFIG), overridden by INTAKE_*
environment variables, so a deployment can be driven by environment alone.

Every ``*_PASSWORD`` may be given as ``*_PASSWORD_FILE`` (a path). A bad value stops
the program with a ConfigError naming the setting.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from intake.kernel.errors import ConfigError
from intake.kernel.policy import load_config_file, parse_instant


@dataclass
class Settings:
    data_dir: Path = Path("./intake-data")
    database_url: str | None = field(default=None, repr=False)  # SQLite in the data dir; its password is secret
    imap_host: str = "imap.163.com"
    imap_port: int = 993
    imap_ssl: bool = True
    imap_user: str | None = None
    imap_password: str | None = field(default=None, repr=False)
    imap_folder: str = "INBOX"
    imap_move_to: str | None = None  # move processed mail there (COPY + \Deleted + EXPUNGE)
    maildir: Path | None = None  # poll a Maildir instead of IMAP (demo, exported mailboxes)
    smtp_host: str = "smtp.163.com"
    smtp_port: int = 465
    smtp_security: str = "ssl"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    staff_emails: list[str] = field(default_factory=list)
    policy: str = "roadshow"
    reply_since: datetime | None = None
    reply_limit: int = 10  # replies to one address in 24 hours; the rest are held (recorded, not sent)
    contact: str | None = None  # INTAKE_CONTACT: closes every reply; None = the policy's contact
    poll_minutes: float = 5.0
    max_attempts: int = 5
    fetch_batch: int = 50
    digest_at: str = "08:30"  # the daily digest, Beijing time, HH:MM
    alert_after_minutes: int = 30  # polling failed this long: staff are mailed
    policy_overrides: dict = field(default_factory=dict)
    # linked packages (intake/fetchers): the Baidu route, its credentials, the host map
    netdisk_route: str = "probe"  # probe (no account) | cookie | openapi
    baidu_cookie: str | None = field(default=None, repr=False)  # BDUSS, STOKEN of a staff account
    baidu_app_key: str | None = None
    baidu_secret_key: str | None = field(default=None, repr=False)
    baidu_app_id: str | None = None
    baidu_inbox: str | None = None  # the account folder transfers go to (a folder per message below it)
    baidu_short_url: str = "surl"  # apaas short_url: surl (the ID without its leading 1) | full
    baidu_task_status: str = "0=running,1=running,2=success,3=failed"  # apaas numeric statuses
    host_map: dict[str, str] = field(default_factory=dict)  # host -> base URL (tests, a site's proxy)
    download_max_gb: float = 20.0
    disk_reserve_gb: float = 5.0
    fetch_links: bool = True  # false: linked files are not downloaded (needs_review); the demo's choice
    fetch_attempts: int = 10  # fetches that fail on our side before the message goes to staff
    log_format: str = "text"  # INTAKE_LOG_FORMAT: text (journald-friendly) | json (one object per line)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "intake.sqlite3"

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def mailbox_name(self) -> str:
        """The ledger's name for the mailbox polled (user and host are case-blind)."""
        if self.maildir is not None:
            return f"maildir:{Path(self.maildir).resolve()}"
        return f"imap:{(self.imap_user or '').lower()}@{self.imap_host.lower()}/{self.imap_folder}"


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}: must be true or false, got {value!r}")


def _int(name: str, value, minimum: int = 0) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}: must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {number}")
    return number


def _float(name: str, value, minimum: float = 0.0) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}: must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= minimum:
        raise ConfigError(f"{name}: must be a finite number above {minimum:g}, got {value!r}")
    return number


def _clock(name: str, value: object) -> str:
    """A time of day, HH:MM (24-hour), written back as HH:MM."""
    text = str(value).strip()
    hours, colon, minutes = text.partition(":")
    if not (colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2
            and int(hours) < 24 and int(minutes) < 60):
        raise ConfigError(f"{name}: must be a time of day HH:MM (Beijing time, e.g. 08:30), got {value!r}")
    return f"{int(hours):02d}:{minutes}"


def _database_url(name: str, value) -> str | None:
    text = str(value).strip()
    if not text:
        return None
    usage = "use postgresql://USER@HOST:PORT/DATABASE or sqlite:///PATH (or leave it unset for SQLite in the data folder)"
    try:
        url = make_url(text)
        backend, driver = url.get_backend_name(), url.get_driver_name()
    except (ArgumentError, ValueError):
        raise ConfigError(f"{name}: not a database URL; {usage}") from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"{name}: {backend} databases are not supported; {usage}")
    if driver not in ("pysqlite", "psycopg"):  # what is installed: the stdlib's sqlite3, psycopg 3
        raise ConfigError(f"{name}: the driver {driver} is not installed; write {backend}:// without "
                          f"'+{driver}' (psycopg 3 is used for PostgreSQL)")
    if backend == "sqlite" and not url.database:
        raise ConfigError(f"{name}: an SQLite URL needs a file, sqlite:///PATH; {usage}")
    return text


def _choice(*allowed: str) -> Callable[[str, Any], str]:
    def convert(name: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ConfigError(f"{name}: must be {' or '.join(allowed)}, got {value!r}")
        return text
    return convert


def _host_map(name: str, value: Any) -> dict[str, str]:
    """``host=base-URL`` pairs, comma-separated (a TOML table is taken as it is)."""
    pairs = value.items() if isinstance(value, dict) else (
        item.split("=", 1) if "=" in item else (item, "") for item in str(value).split(",") if item.strip())
    mapped: dict[str, str] = {}
    for host, base in pairs:
        host, base = str(host).strip().lower(), str(base).strip().rstrip("/")
        scheme, _, rest = base.partition("://")
        if not host or "/" in host or scheme not in ("http", "https") or not rest or "/" in rest:
            raise ConfigError(f"{name}: {host or '?'}={base or '?'} is not host=http(s)://host[:port] "
                              "(e.g. pan.baidu.com=http://127.0.0.1:8001)")
        mapped[host] = base
    return mapped


def _gigabytes(name: str, value: Any) -> float:
    """A size in GB that may be 0 (no reserve kept)."""
    return 0.0 if str(value).strip() in ("0", "0.0") else _float(name, value)


def _task_status(name: str, value: Any) -> str:
    for pair in str(value).split(","):
        number, _, word = pair.partition("=")
        if not number.strip().isdigit() or word.strip() not in ("running", "success", "failed"):
            raise ConfigError(f"{name}: {pair.strip()!r} is not NUMBER=running|success|failed")
    return str(value)


def _bare_addresses(name: str, value: Any) -> list[str]:
    """Comma-separated bare addresses: they are SMTP recipients and loop-safety keys, so
    a display name ("张三 <a@b.cn>") would be an address no server takes."""
    addresses = [x.strip() for x in (value.split(",") if isinstance(value, str) else value) if str(x).strip()]
    for address in addresses:
        if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", address):
            raise ConfigError(f"{name}: {address!r} is not a bare address; give addresses only, "
                              "separated by commas, e.g. a@acftu.org, b@acftu.org")
    return addresses


CONVERTERS: dict[str, Callable[[str, Any], object]] = {
    "data_dir": lambda n, v: Path(v), "maildir": lambda n, v: Path(v) if v else None,
    "imap_move_to": lambda n, v: str(v).strip() or None,  # empty means: leave the mail
    "imap_port": _int, "smtp_port": _int, "imap_ssl": _bool, "max_attempts": lambda n, v: _int(n, v, 1),
    "fetch_batch": lambda n, v: _int(n, v, 1), "poll_minutes": _float,
    "reply_limit": lambda n, v: _int(n, v, 1),
    "staff_emails": lambda n, v: _bare_addresses(n, v),
    "reply_since": lambda n, v: parse_instant(str(v), n) if v else None,
    "database_url": _database_url,
    "contact": lambda n, v: str(v).strip() or None,  # empty means: the policy's contact
    "digest_at": _clock, "alert_after_minutes": lambda n, v: _int(n, v, 1),
    "netdisk_route": _choice("probe", "cookie", "openapi"), "host_map": _host_map,
    "baidu_short_url": _choice("surl", "full"), "baidu_task_status": _task_status,
    "download_max_gb": _float, "disk_reserve_gb": _gigabytes,
    "fetch_links": _bool, "fetch_attempts": lambda n, v: _int(n, v, 1),
    "log_format": _choice("text", "json"),
}
SECRETS = frozenset({"baidu_cookie", "baidu_secret_key"})  # beside every *_password: NAME_FILE allowed


def is_secret(name: str) -> bool:
    """A setting whose value is never shown (logs, start-up line, error messages)."""
    return name.endswith("_password") or name in SECRETS


_secret = is_secret


def _secret_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text("utf-8").strip()
    except OSError as err:
        raise ConfigError(f"{name}: cannot read {path}: {err.strerror}") from None


KNOWN = frozenset(f.name for f in fields(Settings)) - {"policy_overrides"}


def read_config(config_file: str) -> tuple[dict, dict]:
    """The settings file as (settings, [policy] overrides); an unknown key stops here.
    ``intake check --config`` and the daemon commands read a file the same way."""
    data = {key.lower(): value for key, value in load_config_file(config_file).items()}  # keys are case-blind
    overrides = data.pop("policy", {}) if isinstance(data.get("policy"), dict) else {}
    for key in data:
        name = key[:-len("_file")] if key.endswith("_file") and _secret(key[:-len("_file")]) else key
        if name not in KNOWN:
            raise ConfigError(f"{config_file}: unknown setting {key!r}")
    return data, overrides


def load_settings(config_file: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("INTAKE_CONFIG")
    data, overrides = read_config(config_file) if config_file else ({}, {})
    settings = Settings()
    settings.policy_overrides = overrides
    known = KNOWN
    values: dict[str, tuple[str, object]] = {}
    for key, value in data.items():
        if not (key.endswith("_file") and _secret(key[:-len("_file")])):  # those are read below
            values[key] = (key, value)
    for name in known:  # a secret: INTAKE_*_FILE, then INTAKE_*, then the file's *_file, then its value
        env, secret = f"INTAKE_{name.upper()}", f"INTAKE_{name.upper()}_FILE"
        if _secret(name) and secret in environ:
            values[name] = (secret, _secret_file(secret, environ[secret]))
        elif env in environ:
            values[name] = (env, environ[env])
        elif _secret(name) and f"{name}_file" in data:
            values[name] = (f"{name}_file", _secret_file(f"{name}_file", data[f"{name}_file"]))
    for name, (setting, value) in values.items():
        converter = CONVERTERS.get(name)
        setattr(settings, name, converter(setting, value) if converter else (str(value) if value is not None else None))
    if settings.smtp_security not in ("ssl", "starttls", "none"):
        raise ConfigError(f"INTAKE_SMTP_SECURITY: must be ssl, starttls or none, got {settings.smtp_security!r}")
    settings.data_dir = Path(settings.data_dir).resolve()  # work happens in other folders too
    if settings.maildir is not None:
        settings.maildir = Path(settings.maildir).resolve()
    settings.smtp_user = settings.smtp_user or settings.imap_user
    settings.smtp_from = settings.smtp_from or settings.smtp_user
    return settings
