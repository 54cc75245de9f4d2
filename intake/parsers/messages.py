"""Email messages as a person reads them in their mail client.

mail-parser gives the parsed message; decoding is done here, because mail-parser
(and the standard library) lose Chinese text in the ways real 163/126/QQ/Foxmail/
Outlook/Coremail mail needs: gb2312 labels on GBK text, raw 8-bit headers, RFC 2047
words inside quoted parameters, RFC 2231 continuations, odd transfer encodings.

``parse_message(raw, attachments_dir)`` never raises for bad input: what cannot be
decoded is decoded with replacement characters, and a part that cannot be read is
skipped and noted in ``problems``. Structure past a bound (parts nested deeper than
intake.parsers.mail_depth allows, messages forwarded more than MAX_NESTING deep) is
not read and is recorded in ``too_deep``, for the report to name.

This module walks the MIME tree and saves the attachments; the pieces it stands on:
intake.parsers.mail_headers (charsets, encoded words, the sender, dates),
intake.parsers.mail_bodies (transfer encodings), intake.parsers.mail_large (large
bodies cut out before parsing), intake.parsers.mail_depth (the depth bound) and
intake.parsers.mail_auto (auto-replies, bounces).
"""

from __future__ import annotations

import email
import email.message
import email.parser
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import mailparser
from tnefparse import TNEF, properties

from intake.parsers.mail_auto import ignored_reason, is_auto_submitted
from intake.parsers.mail_bodies import (
    decode_transfer, payload_bytes, raw_payload, stored_payload, transfer_encoding, write_base64, write_body,
)
from intake.parsers.mail_headers import (
    TolerantMessage, attachment_name, content_charset, decode_bytes, decode_header, header, newest_received,
    parse_date, raw_header, sender_of,
)
from intake.parsers.mail_depth import MAX_MIME_DEPTH, TooDeep, bound_depth
from intake.parsers.mail_large import LARGE_BODY, MAX_NESTING, BigBody, RawMessage, release, slim

# Importable from here: the entry point and what it returns, and the header helpers
# other modules imported from here before they moved to intake.parsers.mail_headers.
__all__ = [
    "Attachment", "LoadedMessage", "ParsedMessage", "TooDeep", "load_message", "parse_message", "safe_name",
    "decode_header", "raw_header", "sender_of",
]

SIGNATURE_IMAGE_MAX = 100 * 1024  # inline images smaller than this are signatures and logos


@dataclass
class Attachment:
    name: str  # decoded, as the sender's mail client shows it
    path: Path  # where the decoded bytes were written
    size: int
    content_type: str


@dataclass
class ParsedMessage:
    from_address: str | None = None
    from_name: str | None = None
    subject: str = ""
    message_id: str | None = None
    date: datetime | None = None
    received: datetime | None = None  # from the newest (topmost) parsable Received: header
    auto_submitted: bool = False
    ignored_reason: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # attachment names as a mail client lists them
    texts: list[str] = field(default_factory=list)  # text/plain bodies, forwarded ones included
    htmls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    too_deep: list[TooDeep] = field(default_factory=list)  # structure past a bound, not read (a finding)


# ---------------------------------------------------------------- file names

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_name(name: str, fallback: str = "附件") -> str:
    """A file-system-safe version of a decoded name: no separators, no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE_NAME.sub("_", name).strip().lstrip(".")
    if not name:
        return fallback
    encoded = name.encode("utf-8")
    if len(encoded) > 200:  # keep the extension; file systems allow 255 bytes
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        budget = 200 - len(ext.encode("utf-8")) - 1
        stem = (stem or name).encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = f"{stem}.{ext}" if ext else stem
    return name


# ---------------------------------------------------------------- the walk

class _Walker:
    def __init__(self, result: ParsedMessage, attachments_dir: Path | None, raw: RawMessage = b"", marker: str = "",
                 bodies: dict[int, BigBody] | None = None) -> None:
        self.result = result
        self.dir = attachments_dir  # None: the bodies only, attachments are not written
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.names: set[str] = set()
        self.raw = raw
        self.marker = marker
        self.bodies = bodies or {}

    def big_body(self, part: email.message.Message) -> BigBody | None:
        if not self.marker:
            return None
        value = raw_header(part, self.marker)
        try:
            return self.bodies.get(int(value)) if value is not None else None
        except ValueError:
            return None

    def body_size(self, part: email.message.Message) -> int:
        big = self.big_body(part)
        if big is not None:
            return big.end - big.start
        raw = stored_payload(part)
        return len(raw) * 3 // 4 if isinstance(raw, str) else 0

    def walk(self, part: email.message.Message, depth: int = 0) -> None:
        content_type = part.get_content_type()
        name = attachment_name(part)
        if part.is_multipart() and content_type != "message/rfc822":
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, email.message.Message):
                    self.walk(sub, depth)
            return
        disposition = (part.get_content_disposition() or "").lower()
        if content_type == "message/rfc822" or (name or "").lower().endswith(".eml"):
            position = len(self.result.shown)
            if self.forwarded(part, depth):
                if name:  # listed where the client lists it: before what it holds
                    self.result.shown.insert(position, name)
                return
        if content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or (name or "").lower() == "winmail.dat":
            if self.dir is None or self.tnef(part):
                return
        if content_type in ("text/plain", "text/html") and not name and disposition != "attachment":
            big = self.big_body(part)
            data = (decode_transfer(bytes(memoryview(self.raw)[big.start:big.end]), transfer_encoding(part))
                    if big is not None else payload_bytes(part))
            text = decode_bytes(data, content_charset(part))
            (self.result.texts if content_type == "text/plain" else self.result.htmls).append(text)
            return
        if content_type.startswith("multipart/") or content_type in ("message/delivery-status",
                                                                      "message/disposition-notification"):
            return
        if self.is_signature_image(part, content_type, disposition):
            return
        if not name and disposition != "attachment" and content_type.startswith("text/"):
            return
        self.save(part, name, content_type)

    def forwarded(self, part: email.message.Message, depth: int) -> bool:
        """A forwarded message contributes its own attachments and text."""
        if depth >= MAX_NESTING:  # not read, but named: the sender must hear what was left out
            self.result.too_deep.append(TooDeep("forwarded", depth + 1, MAX_NESTING, _names_inside(part)))
            return True
        inner = part.get_payload()
        messages = [m for m in inner if isinstance(m, email.message.Message)] if isinstance(inner, list) else []
        encoding = (raw_header(part, "content-transfer-encoding") or "").strip().lower()
        if messages and encoding in ("base64", "b", "quoted-printable", "q"):
            # the stdlib parses an encoded forwarded message as a headerless one
            # whose body is the encoded text: decode it and parse the real message
            decoded = []
            for wrapper in messages:
                body = raw_payload(wrapper) or b""
                data = decode_transfer(body, encoding)
                if data.strip():
                    decoded.append(self.parse(data))
            messages = decoded
        if not messages:
            data = payload_bytes(part)
            if not data.strip():
                return False
            messages = [self.parse(data)]
        for message in messages:
            self.walk(message, depth + 1)
        return True

    def parse(self, data: bytes) -> email.message.Message:
        """A forwarded message's decoded bytes, parsed under the depth bound."""
        message, too_deep = _parse_bounded(data, lambda raw: email.message_from_bytes(raw, _class=TolerantMessage))
        if too_deep is not None:
            self.result.too_deep.append(too_deep)
        return message

    def tnef(self, part: email.message.Message) -> bool:
        """winmail.dat from Outlook: the attachments inside it are the real ones."""
        try:
            container = TNEF(payload_bytes(part), do_checksum=False)
            found = []
            for attachment in container.attachments:
                long_names = [a.data for a in attachment.mapi_attrs
                              if a.name == properties.MAPI_ATTACH_LONG_FILENAME]
                # the title is in the sender's ANSI code page (GBK on Chinese Windows);
                # tnefparse's .name decodes it as UTF-8 and fails, so decode it here
                filename = long_names[0] if long_names else attachment._name
                if isinstance(filename, bytes):
                    filename = decode_bytes(filename.rstrip(b"\x00"))
                found.append((filename.strip("\x00"), attachment.data))
        except Exception as err:  # tnefparse raises plain exceptions on bad input
            self.result.problems.append(f"winmail.dat could not be read: {err}")
            return False
        for filename, data in found:
            self.store(filename or "附件", data or b"", "application/octet-stream")
        return True

    def is_signature_image(self, part: email.message.Message, content_type: str, disposition: str) -> bool:
        if not content_type.startswith("image/"):
            return False
        if disposition == "attachment":
            return False
        if raw_header(part, "content-id") is None and (disposition != "inline" or attachment_name(part)):
            return False  # Apple Mail sends real attachments as inline images with a name
        return self.body_size(part) < SIGNATURE_IMAGE_MAX

    def unique(self, name: str) -> str:
        candidate, n = name, 1
        stem, dot, ext = name.rpartition(".")
        while candidate.lower() in self.names:
            n += 1
            candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
        self.names.add(candidate.lower())
        return candidate

    def save(self, part: email.message.Message, name: str | None, content_type: str) -> None:
        decoded_name = name or f"附件{len(self.result.attachments) + 1}{_extension(content_type)}"
        file_name = self.unique(safe_name(decoded_name))
        if self.dir is None:  # bodies only: the attachment is listed, never decoded
            self.result.shown.append(file_name)
            return
        target = self.dir / file_name
        big = self.big_body(part)
        size: int | None
        if big is not None:
            size = write_body(memoryview(self.raw)[big.start:big.end], transfer_encoding(part), target,
                              lambda a, b: release(self.raw, big.start + a, big.start + b))
        else:
            size = write_base64(part, target)
        if size is None:
            data = payload_bytes(part)
            target.write_bytes(data)
            size = len(data)
        self.result.attachments.append(Attachment(file_name, target, size, content_type))
        self.result.shown.append(file_name)

    def store(self, name: str, data: bytes, content_type: str) -> None:
        file_name = self.unique(safe_name(name))
        if self.dir is None:
            self.result.shown.append(file_name)
            return
        target = self.dir / file_name
        target.write_bytes(data)
        self.result.attachments.append(Attachment(file_name, target, len(data), content_type))
        self.result.shown.append(file_name)


def _extension(content_type: str) -> str:
    return {
        "application/zip": ".zip", "application/x-zip-compressed": ".zip",
        "application/x-rar-compressed": ".rar", "application/vnd.rar": ".rar",
        "application/x-7z-compressed": ".7z", "video/mp4": ".mp4", "application/pdf": ".pdf",
        "application/msword": ".doc", "application/vnd.ms-excel": ".xls",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
        "image/jpeg": ".jpg", "image/png": ".png",
    }.get(content_type, ".bin")



def _names_inside(part: email.message.Message) -> tuple[str, ...]:
    """The attachments in a part that is not read, by name (the parse is depth-bounded)."""
    return tuple(dict.fromkeys(name for sub in part.walk() if not sub.is_multipart()
                               and (name := attachment_name(sub)) is not None))


def _load(raw: bytes) -> email.message.Message:
    try:
        return mailparser.parse_from_bytes(raw).message
    except Exception:  # mail-parser gives up on some broken mail the stdlib still reads
        return email.message_from_bytes(raw, _class=TolerantMessage)


def _parse_bounded(raw: bytes, parse: Callable[[bytes], email.message.Message],
                   ) -> tuple[email.message.Message, TooDeep | None]:
    """``parse(raw)`` with parts deeper than MAX_MIME_DEPTH emptied first (the parsers
    recurse once per level); should a parser still recurse too deeply, the headers alone."""
    bounded, too_deep = bound_depth(raw)
    try:
        return parse(bounded), too_deep
    except RecursionError:
        headers = email.parser.BytesParser(_class=TolerantMessage).parsebytes(raw, headersonly=True)
        return headers, too_deep or TooDeep("mime", MAX_MIME_DEPTH + 1, MAX_MIME_DEPTH)


@dataclass(frozen=True)
class LoadedMessage:
    """A message's structure as parsed, before the walk: what a second walk of the same
    stored message (links first, the judgement next) can reuse. Large bodies stay in the
    raw bytes, at their offsets: walk it again over the same bytes only."""
    message: email.message.Message
    too_deep: TooDeep | None
    marker: str
    bodies: dict[int, BigBody]
    size: int  # of the raw message it was loaded from


def load_message(raw: RawMessage) -> LoadedMessage:
    """Parse the structure of ``raw`` (large leaf bodies cut out, the depth bounded)."""
    slim_raw, marker, bodies = slim(raw) if len(raw) > LARGE_BODY else (bytes(raw), "", {})
    message, too_deep = _parse_bounded(slim_raw, _load)
    return LoadedMessage(message, too_deep, marker, bodies, len(raw))


def parse_message(raw: RawMessage, attachments_dir: Path | None, loaded: LoadedMessage | None = None) -> ParsedMessage:
    """``raw``: the message's bytes (bytes, or an mmap of the stored file). With
    ``attachments_dir`` None only the headers and the text bodies are read (the links):
    attachments are listed in ``shown`` but neither decoded nor written. ``loaded``:
    ``load_message`` of these same bytes, done before (the walk never changes it)."""
    if loaded is None or loaded.size != len(raw):
        loaded = load_message(raw)
    message = loaded.message
    result = ParsedMessage(too_deep=[loaded.too_deep] if loaded.too_deep else [])
    result.from_name, result.from_address = sender_of(message)
    result.subject = header(message, "Subject")
    result.message_id = header(message, "Message-ID") or None
    result.date = parse_date(header(message, "Date")) if header(message, "Date") else None
    result.received = newest_received(message)
    result.auto_submitted = is_auto_submitted(message)
    result.ignored_reason = ignored_reason(message, result.from_address)
    if result.ignored_reason is None:
        try:
            folder = Path(attachments_dir) if attachments_dir is not None else None
            _Walker(result, folder, raw, loaded.marker, loaded.bodies).walk(message)
        except RecursionError:  # the bound makes this unreachable; a crash it must never be
            result.too_deep.append(TooDeep("mime", MAX_MIME_DEPTH + 1, MAX_MIME_DEPTH))
    return result
