"""The daemon commands' log, set up from the settings: its format (INTAKE_LOG_FORMAT),
the secret values it must never show, and the start-up line with the settings in force
(secrets shown as set or unset, never their value)."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from intake import logs
from intake.fetchers.tokens import TokenStore
from intake.kernel.errors import ConfigError
from intake.settings import Settings, is_secret

log = logging.getLogger("intake")
SHOWN_APART = frozenset({"database_url", "policy_overrides"})  # shown by settings_in_force in their own way


def secret_values(settings: Settings) -> list[str]:
    """Every secret value the process knows: the passwords, the Baidu cookie (whole and
    each value), the app's secret key, the database URL's password, the stored openapi
    tokens (a refresh writes new ones: the redactor's patterns cover those)."""
    values: list[str] = []
    for field in fields(Settings):
        value = getattr(settings, field.name)
        if is_secret(field.name) and isinstance(value, str):
            values.extend(logs.cookie_values(value) if field.name == "baidu_cookie" else [value])
    values.extend(filter(None, [_database_password(settings.database_url)]))
    values.extend(_stored_tokens(settings.data_dir))
    return values


def _database_password(url: str | None) -> str | None:
    try:
        return make_url(url).password if url else None
    except (ArgumentError, ValueError):
        return None


def _stored_tokens(data_dir: Path) -> list[str]:
    try:
        tokens = TokenStore.in_data_dir(data_dir).load()
    except ConfigError:  # unreadable: whoever uses it says so
        return []
    return [tokens.access_token, tokens.refresh_token] if tokens else []


def settings_in_force(settings: Settings) -> str:
    """``name=value`` for every setting, in one line; a secret shows as set or unset."""
    shown = []
    for field in fields(Settings):
        if field.name in SHOWN_APART:
            continue
        value = getattr(settings, field.name)
        if is_secret(field.name):
            value = "(set)" if value else "(unset)"
        elif isinstance(value, list):
            value = ",".join(map(str, value))
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        shown.append(f"{field.name}={value}")
    shown.append(f"database={make_url(settings.url).render_as_string(hide_password=True)}")
    if settings.policy_overrides:
        shown.append(f"policy_overrides={','.join(sorted(settings.policy_overrides))}")
    return " ".join(shown)


def configure(settings: Settings, debug: bool = False) -> None:
    """The log as the settings want it, before any other work."""
    logs.setup(settings.log_format, secret_values(settings), debug)


def say_start(command: str, settings: Settings, loud: bool) -> None:
    """The start-up line: the command and the settings in force (INFO for the commands
    that do the daemon's work, DEBUG for staff's queries, which print their own)."""
    log.log(logging.INFO if loud else logging.DEBUG, "intake %s starting; settings in force: %s",
            command, settings_in_force(settings))
