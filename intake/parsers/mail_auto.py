"""Mail no person wrote: auto-replies, bounces, read receipts and mailing lists."""

from __future__ import annotations

import email.message
import re

from intake.parsers.mail_headers import header, raw_header

_DAEMON_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)


def ignored_reason(message: email.message.Message, from_address: str | None) -> str | None:
    """Why this message is not a submission (auto-reply, bounce, receipt, list), or None."""
    auto = header(message, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-AutoReply-From"):
        value = raw_header(message, name.lower())
        if value is not None and value.strip().lower() not in ("no", "false", "0", "off"):
            return f"{name} header"
    precedence = (header(message, "Precedence") or header(message, "X-Precedence")).lower()
    if precedence in ("bulk", "junk", "list", "auto_reply", "auto-reply"):
        return f"Precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe"):
        if raw_header(message, name.lower()) is not None:
            return f"{name} header"
    if from_address and _DAEMON_SENDER.match(from_address):
        return f"sender {from_address}"
    return_path = raw_header(message, "return-path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "Return-Path: <>"
    if message.get_content_type() == "multipart/report":
        param = message.get_param("report-type") or ""
        # typed str or (RFC 2231) tuple; the stdlib decodes no hyphenated name so
        report = (param if isinstance(param, str) else str(param)).lower()
        return f"multipart/report ({report or 'report'})"
    if raw_header(message, "x-failed-recipients") is not None:
        return "X-Failed-Recipients header"
    return None


def is_auto_submitted(message: email.message.Message) -> bool:
    auto = header(message, "Auto-Submitted").lower()
    return bool(auto and not auto.startswith("no")) or any(
        (raw_header(message, name) or "no").strip().lower() not in ("no", "false", "0", "off")
        for name in ("x-autoreply", "x-autorespond")
    )
