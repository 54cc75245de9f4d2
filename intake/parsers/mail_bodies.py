"""Mail bodies as bytes: undoing the transfer encoding, however it is spelled.

Small bodies are decoded from the parsed part; large ones (cut out before parsing, see
intake.parsers.mail_large) are decoded straight from the raw message to a file.
"""

from __future__ import annotations

import base64
import email.message
import quopri
import re
from collections.abc import Callable
from pathlib import Path

from intake.parsers.mail_headers import b64_decode, raw_bytes, raw_header


def stored_payload(part: email.message.Message) -> object:
    """The parser's own copy of a part's payload: 8-bit bytes kept as surrogates."""
    return part._payload  # type: ignore[attr-defined]  # no public accessor leaves it undecoded


def raw_payload(part: email.message.Message) -> bytes | None:
    """The body bytes exactly as the message carried them.

    ``get_payload(decode=False)`` is no good here: for 8-bit parts it has already
    decoded the bytes with the declared charset (or ASCII with replacement
    characters), so Chinese text would be decoded twice or lost.
    """
    raw = stored_payload(part)
    if isinstance(raw, list):
        return None
    if isinstance(raw, bytes):
        return raw
    return raw_bytes(raw if isinstance(raw, str) else str(raw))


def transfer_encoding(part: email.message.Message) -> str:
    """The Content-Transfer-Encoding, lower case, without quotes; "" when there is none."""
    return (raw_header(part, "content-transfer-encoding") or "").strip().strip('"').lower()


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Bytes with a transfer encoding undone (``encoding`` as transfer_encoding gives it)."""
    if encoding in ("base64", "b"):
        return b64_decode(data)
    if encoding in ("quoted-printable", "q", "qp"):
        return quopri.decodestring(data)
    return data


def payload_bytes(part: email.message.Message) -> bytes:
    """The decoded body of a single part, whatever its transfer-encoding is spelled like."""
    data = raw_payload(part)
    if data is None:
        return b""
    return decode_transfer(data, transfer_encoding(part))


def write_body(view: memoryview, encoding: str, target: Path,
               release: Callable[[int, int], None] = lambda start, end: None) -> int:
    """Decode a body held in the raw message straight to a file, 1 MiB at a time."""
    size, carry = 0, b""
    step = 1 << 20
    with open(target, "wb") as out:
        if encoding in ("base64", "b"):
            for start in range(0, len(view), step):
                chunk = carry + re.sub(rb"[^A-Za-z0-9+/]", b"", bytes(view[start:start + step]))
                release(start, start + step)
                usable = len(chunk) - len(chunk) % 4
                carry = chunk[usable:]
                decoded = base64.b64decode(chunk[:usable]) if usable else b""
                out.write(decoded)
                size += len(decoded)
            if len(carry) > 1:
                decoded = base64.b64decode(carry + b"=" * (-len(carry) % 4))
                out.write(decoded)
                size += len(decoded)
        elif encoding in ("quoted-printable", "q", "qp"):
            decoded = quopri.decodestring(bytes(view))
            out.write(decoded)
            size = len(decoded)
        else:
            for start in range(0, len(view), step):
                out.write(view[start:start + step])
            size = len(view)
    return size


def write_base64(part: email.message.Message, target: Path) -> int | None:
    """Decode a (small: large ones are cut out before parsing) base64 part to a file."""
    payload = stored_payload(part)
    if transfer_encoding(part) not in ("base64", "b") or not isinstance(payload, str):
        return None
    return write_body(memoryview(raw_bytes(payload)), "base64", target)
