"""The daemon's log: one line per event on stderr, as text (journald-friendly) or as
one JSON object per line (INTAKE_LOG_FORMAT=json, for collectors).

Each event may name the message it is about (``extra=about(receipt, message_id)``):
both formats carry the receipt and the Message-ID as fields of their own. A traceback
stays inside its event: escaped into the text line, a field of the JSON object; a
journal entry is one line, so a multi-line event would be split apart.

Secrets are never logged on purpose; as a second line of defence every field of every
record, the libraries' records too, is cleaned of the secret values configured
(passwords, the Baidu cookie and its values, keys, tokens) and of anything that reads
like a credential (``access_token=…``, ``BDUSS=…``, ``Authorization: …``).

This module imports nothing from the project: every layer may log through it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

FORMATS = ("text", "json")
BEIJING = ZoneInfo("Asia/Shanghai")
MASK = "***"
MIN_SECRET = 4  # shorter values are not masked: every "a" in every line would be
FIELD_LIMIT = 500  # a sender's Message-ID is theirs to make as long as they like
# journald splits a line over LineMax (48 KiB by default) into entries of their own, the
# later ones without the priority; an event may hold a sender's value (a link they made
# 100 000 characters long), so the event and its traceback are cut in the middle to fit
EVENT_LIMIT, EXC_LIMIT = 4000, 12000  # characters
LINE_BYTES = 32 * 1024  # the line as written, in UTF-8
QUIET = ("alembic", "apscheduler", "imapclient", "urllib3", "requests", "matplotlib", "PIL", "sqlalchemy")
# name=value pairs and headers that carry credentials whoever logs them (a URL with
# access_token in its query, a Cookie header in a library's debug line, a JSON answer or
# a dict with "access_token": "…"); a quoted value is masked to its closing quote
CREDENTIAL = re.compile(
    r"(?i)\b(access_token|refresh_token|client_secret|secret_key|password|passwd|BDUSS|BDUSS_BFESS|STOKEN|BDCLND|PTOKEN)"
    r"(['\"]?\s*[=:]\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*'|['\"]?[^\s&;,'\"]+)")
HEADER = re.compile(r"(?i)\b(Authorization|Cookie|Set-Cookie)(:\s*)([^\r\n]+)")
# journald reads a leading <N> as the entry's priority (SyslogLevelPrefix=yes, its default)
PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def about(receipt: str | None, message_id: str | None = None) -> dict[str, str | None]:
    """The ``extra`` of a record about one message: its receipt and its Message-ID."""
    return {"receipt": receipt, "message_id": message_id}


class Redactor:
    """Masks known secret values and credential-like text in a string."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET}
        # longest first: a cookie is masked whole before its BDUSS alone is
        self.values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        text = HEADER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
        return CREDENTIAL.sub(_mask_credential, text)


def _mask_credential(match: re.Match[str]) -> str:
    """name=*** with the value's quotes kept: "access_token": "***"."""
    value = match[3]
    quote = value[0] if value[0] in "'\"" else ""
    closed = quote if len(value) > 1 and value.endswith(quote) and quote else ""
    return f"{match[1]}{match[2]}{quote}{MASK}{closed}"


def cookie_values(cookie: str | None) -> list[str]:
    """The cookie as given and each of its values: a log line may hold BDUSS alone."""
    if not cookie:
        return []
    values = [cookie]
    for pair in cookie.split(";"):
        name, _, value = pair.partition("=")
        if value.strip():
            values.append(value.strip())
    return values


def event_fields(record: logging.LogRecord, redact: Redactor, formatter: logging.Formatter) -> dict[str, str | None]:
    """The record as plain fields, every one cleaned: time, level, event, receipt,
    message_id, logger, exc (the traceback, if any)."""
    exc = None
    if record.exc_info:
        exc = formatter.formatException(record.exc_info)
    elif record.exc_text:
        exc = record.exc_text
    if record.stack_info:
        exc = f"{exc}\n{record.stack_info}" if exc else record.stack_info
    fields: dict[str, str | None] = {
        "time": datetime.fromtimestamp(record.created, BEIJING).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "event": record.getMessage(),
        "receipt": _field(getattr(record, "receipt", None)),
        "message_id": _field(getattr(record, "message_id", None)),
        "logger": record.name,
        "exc": exc,
    }
    cleaned = {key: redact(value) if value is not None else None for key, value in fields.items()}
    # cut after cleaning, so that no cut leaves half a secret; the traceback's end, the
    # exception's own line, stays
    cleaned["event"] = _shorten_field(cleaned["event"], EVENT_LIMIT)
    cleaned["exc"] = _shorten_field(cleaned["exc"], EXC_LIMIT)
    return cleaned


def _field(value: object) -> str | None:
    return None if value is None else str(value)[:FIELD_LIMIT]


def _shorten(text: str, limit: int) -> str:
    """`text` with its middle cut out when longer than `limit` characters."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}…[{len(text) - head - tail} characters cut]…{text[len(text) - tail:]}"


def _shorten_field(value: str | None, limit: int) -> str | None:
    return None if value is None else _shorten(value, limit)


def _fits(line: str) -> bool:
    return len(line.encode("utf-8", "surrogatepass")) <= LINE_BYTES


# what some readers take for a line break beyond \n and \r (str.splitlines does)
LINE_BREAKS = re.compile("[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """Control characters escaped (newlines as \\n): the event stays one line."""
    text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    text = LINE_BREAKS.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m[0]):02x}", text)


class TextFormatter(logging.Formatter):
    """``LEVEL event [receipt=… message_id=…] | traceback`` on one line; with a time in
    front (Beijing time) unless journald stamps it, then with journald's priority."""

    def __init__(self, redact: Redactor, journald: bool = False) -> None:
        super().__init__()
        self.redact, self.journald = redact, journald

    def format(self, record: logging.LogRecord) -> str:
        fields = {key: _one_line(value) if value is not None else None
                  for key, value in event_fields(record, self.redact, self).items()}
        line = self._line(fields)
        if not _fits(line):  # escapes grew it (\x01 is 4 bytes); now at most 4 bytes a character
            for key, limit in (("event", 2000), ("exc", 5000)):
                fields[key] = _shorten_field(fields[key], limit)
            line = self._line(fields)
        if self.journald:
            return f"<{PRIORITY.get(record.levelno, 6)}>{line}"
        return f"{fields['time']} {line}"

    @staticmethod
    def _line(fields: dict[str, str | None]) -> str:
        parts = [str(fields["level"]).upper(), str(fields["event"])]
        about = [f"{key}={fields[key]}" for key in ("receipt", "message_id") if fields[key] is not None]
        if about:
            parts.append(f"[{' '.join(about)}]")
        if fields["exc"]:
            parts.append(f"| {fields['exc']}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, receipt, message_id, logger, exc;
    under journald with its priority in front, which journald takes off (the entry's
    MESSAGE is the object)."""

    def __init__(self, redact: Redactor, journald: bool = False) -> None:
        super().__init__()
        self.redact, self.journald = redact, journald

    def format(self, record: logging.LogRecord) -> str:
        fields = event_fields(record, self.redact, self)
        line = json.dumps(fields, ensure_ascii=False)
        if not _fits(line):  # escapes grew it (\u0001 is 6 bytes): the long fields shortened again
            for key, limit in (("event", 1000), ("exc", 3000)):
                fields[key] = _shorten_field(fields[key], limit)
            line = json.dumps(fields, ensure_ascii=False)
        line = LINE_BREAKS.sub(lambda m: f"\\u{ord(m[0]):04x}", line)  # still the same JSON
        return f"<{PRIORITY.get(record.levelno, 6)}>{line}" if self.journald else line


class StderrHandler(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def under_journald(stream: TextIO | None = None, environ: dict[str, str] | None = None) -> bool:
    """stderr is the journal's stream (systemd sets JOURNAL_STREAM=device:inode of it)."""
    stream = stream or sys.stderr
    journal = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = journal.partition(":")
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{status.st_dev}:{status.st_ino}" == f"{device}:{inode}"


def setup(log_format: str = "text", secrets: Iterable[str | None] = (), debug: bool = False) -> logging.Handler:
    """Send every record to stderr in `log_format`, cleaned of `secrets`; replaces the
    handler an earlier call installed. Debug shows intake's own debug events only: the
    libraries' debug lines (imaplib's wire log, urllib3's URLs) stay off."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {FORMATS}")
    redact = Redactor(secrets)
    handler = StderrHandler()
    journald = under_journald()
    handler.setFormatter(JsonFormatter(redact, journald) if log_format == "json" else TextFormatter(redact, journald))
    handler.set_name("intake")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "intake"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("intake").setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # a library's warning is one event too, not two raw lines
    return handler


def _installed() -> logging.Handler | None:
    return next((h for h in logging.getLogger().handlers if h.get_name() == "intake"), None)


def clean(text: str) -> str:
    """`text` cleaned as the installed log cleans its lines (as it is when none is)."""
    handler = _installed()
    redact = getattr(handler.formatter, "redact", None) if handler else None
    return redact(text) if redact else text


def log_traceback(summary: str) -> bool:
    """The exception being handled, as one event of the installed log (cleaned, one
    line); False when no log is installed (the caller prints it itself)."""
    if _installed() is None:
        return False
    logging.getLogger("intake").error("%s", summary, exc_info=True)
    return True
