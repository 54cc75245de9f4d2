"""Runs the checks in order and prints them: one line each, or the JSON for monitoring.
A check that raises something unforeseen is reported as failed with what it raised: the
doctor itself never stops half-way."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from intake.doctor.database import NAME as DATABASE, TITLE as DATABASE_TITLE, check_database
from intake.doctor.local import (CLOCK, CLOCK_TITLE, DISK, DISK_TITLE, check_clock, check_disk, check_settings,
                                 check_tools, http_date)
from intake.doctor.mail import IMAP, IMAP_TITLE, SMTP, SMTP_TITLE, check_imap, check_smtp
from intake.doctor.model import Check, Context, ServerTime, failed
from intake.doctor.netdisk import NAME as NETDISK, TITLE as NETDISK_TITLE, check_netdisk
from intake.fetchers.tokens import TokenStore
from intake.kernel.errors import IntakeError
from intake.settings import Settings

# the checks that need the settings, in the order they are printed (tools come after them)
NEED_SETTINGS: tuple[tuple[str, str, Callable[[Context], Check]], ...] = (
    (IMAP, IMAP_TITLE, check_imap),
    (SMTP, SMTP_TITLE, check_smtp),
    (DATABASE, DATABASE_TITLE, check_database),
    (NETDISK, NETDISK_TITLE, check_netdisk),
    (DISK, DISK_TITLE, check_disk),
)


def run_checks(config_file: str | None) -> list[Check]:
    settings_check, settings = check_settings(config_file)
    context = Context(settings)
    checks = [settings_check]
    for name, title, check in NEED_SETTINGS:
        if settings is None:
            checks.append(failed(name, title, "未检查：请先修正上面的设置"))
        else:
            checks.append(_guarded(name, title, lambda: check(context)))
    checks += check_tools()
    if settings is not None:
        seen = _guarded_time(settings)
        if seen is not None:
            context.server_times.append(seen)
    checks.append(_guarded(CLOCK, CLOCK_TITLE, lambda: check_clock(context)))
    return _redacted(checks, settings)


def _guarded(name: str, title: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as err:  # reported on its line, so that every other check still runs
        said = " ".join(str(err).split())[:300]
        return failed(name, title, f"检查时发生意外错误（{type(err).__name__}: {said}）：请把这一行告知维护人员")


def _guarded_time(settings: Settings) -> ServerTime | None:
    try:
        return http_date(settings)
    except Exception:  # the clock check then says that no server time was had
        return None


def _redacted(checks: list[Check], settings: Settings | None) -> list[Check]:
    """Every detail with each configured secret blotted out: a server may echo what it
    was sent, and no password, cookie, key or token is ever printed."""
    secrets = _secrets(settings)
    if not secrets:
        return checks
    cleaned = []
    for check in checks:
        detail = check.detail
        for secret in secrets:
            detail = detail.replace(secret, "***")
        cleaned.append(replace(check, detail=detail))
    return cleaned


def _secrets(settings: Settings | None) -> list[str]:
    if settings is None:
        return []
    values = [settings.imap_password, settings.smtp_password, settings.baidu_secret_key, settings.baidu_cookie]
    cookie = settings.baidu_cookie or ""
    values += [pair.partition("=")[2].strip() for pair in cookie.replace("\n", ";").split(";")]
    try:
        tokens = TokenStore.in_data_dir(settings.data_dir).load()
    except IntakeError:
        tokens = None
    if tokens is not None:
        values += [tokens.access_token, tokens.refresh_token]
    # longest first, so that a secret holding another is blotted whole; short ones would
    # blot ordinary words ("1", "on") and are not secrets worth the name
    return sorted({value for value in values if value and len(value) >= 4}, key=len, reverse=True)


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        if not check.required:
            state = "不需要"
        else:
            state = "正常" if check.ok else "需处理"
        lines.append(f"[{state}] {check.title}：{check.detail}")
    failing = [check for check in checks if check.required and not check.ok]
    lines.append("结论：全部正常。" if not failing else f"结论：{len(failing)} 项需要处理（见上面标为“需处理”的行）。")
    return "\n".join(lines) + "\n"


def report_json(checks: list[Check]) -> dict[str, object]:
    return {"ok": all_fine(checks), "checks": [check.to_json() for check in checks]}


def all_fine(checks: list[Check]) -> bool:
    return all(check.ok for check in checks if check.required)


def run_doctor(config_file: str | None, as_json: bool, out: TextIO | None = None) -> int:
    """Exit 0 when everything needed is fine, else 1."""
    out = out or sys.stdout
    checks = run_checks(config_file)
    if as_json:
        json.dump(report_json(checks), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        out.write(render(checks))
    return 0 if all_fine(checks) else 1
