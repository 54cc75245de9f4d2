"""Email messages as a person reads them in their mail client.

mail-parser gives the parsed message; decoding is done here, because mail-parser
(and the standard library) lose Chinese text in the ways real 163/126/QQ/Foxmail/
Outlook/Coremail mail needs: gb2312 labels on GBK text, raw 8-bit headers, RFC 2047
words inside quoted parameters, RFC 2231 continuations, odd transfer encodings.

``parse_message(raw, attachments_dir)`` never raises for bad input: what cannot be
decoded is decoded with replacement characters, and a part that cannot be read is
skipped and noted in ``problems``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.message
import email.parser
import email.utils
import quopri
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

# Labels that mean "some Chinese GB encoding": decode with the superset GB18030.
_GB_LABELS = {"gb2312", "gbk", "cp936", "x-gbk", "gb_2312-80", "euc-cn", "x-euc-cn", "csgb2312",
              "euccn", "chinese", "gb18030", "ms936", "windows-936", "936", "gb2312-80", "eucgb2312_cn"}
_BIG5_LABELS = {"big5", "big5-hkscs", "big5hkscs", "cp950", "x-x-big5", "csbig5", "windows-950"}
SIGNATURE_IMAGE_MAX = 100 * 1024  # inline images smaller than this are signatures and logos
MAX_NESTING = 5  # forwarded messages inside forwarded messages


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


# ---------------------------------------------------------------- charsets

def codec_for(label: str | None) -> str | None:
    """The Python codec to decode a MIME charset label with, or None to guess."""
    if not label:
        return None
    name = label.strip().strip('"').lower().split("*", 1)[0]
    if name in _GB_LABELS:
        return "gb18030"
    if name in _BIG5_LABELS:
        return "big5hkscs"
    if name in ("unknown-8bit", "x-unknown", "unknown", "default", "us-ascii", "ascii", "x-user-defined"):
        return None  # ASCII labels on 8-bit text are common: guess instead
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a label holding a NUL
        return None
    # base64, hex, zlib, rot13 … are codecs too, but not text encodings
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Bytes as text: the labelled charset, else UTF-8, else GB18030 (never raises)."""
    codec = codec_for(label)
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError):  # punycode raises UnicodeError, not …DecodeError
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec and codec not in ("utf-8", "gb18030"):
        try:
            return data.decode(codec, errors="replace")
        except (UnicodeError, LookupError):
            pass
    return data.decode("gb18030", errors="replace")


def _raw_bytes(text: str) -> bytes:
    """The bytes the parser read: it keeps 8-bit header and body bytes as surrogates."""
    return text.encode("utf-8", "surrogateescape")


def recover(text: str) -> str:
    """A header or parameter string with raw 8-bit bytes turned back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(_raw_bytes(text))


# ---------------------------------------------------------------- RFC 2047

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _b64(data: str) -> bytes:
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", data)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return b""


def _q(data: str) -> bytes:
    raw = data.replace("_", " ").encode("latin-1", "replace")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words anywhere in ``text`` (quoted parameters too).

    Adjacent words in the same charset are joined before decoding, so a character
    split across two words survives; white space between encoded words is dropped.
    """
    pieces: list[tuple[str | None, bytes | str]] = []  # (charset, bytes) or (None, literal)
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        literal = text[position:match.start()]
        if literal and not (literal.isspace() and pieces and pieces[-1][0] is not None):
            pieces.append((None, literal))
        charset, kind, payload = match.groups()
        data = _b64(payload) if kind in "bB" else _q(payload)
        if pieces and pieces[-1][0] is not None and codec_for(pieces[-1][0]) == codec_for(charset):
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + data)
        else:
            pieces.append((charset, data))
        position = match.end()
    pieces.append((None, text[position:]))
    return "".join(
        decode_bytes(value, charset) if charset is not None else value
        for charset, value in pieces
    )


def decode_header(value) -> str:
    """A header value as text: raw 8-bit bytes recovered, encoded words decoded, unfolded."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    text = decode_words(recover(value))
    text = re.sub(r"\r?\n[ \t]*", " ", text)  # unfolded first: a fold is not a control
    # a lone surrogate (UTF-7 can decode to one), a NUL or another control character
    # cannot be printed, stored or put in a reply's headers: shown as U+FFFD instead
    return _UNSTORABLE.sub("\ufffd", text).strip()


# NUL and lone surrogates cannot be stored or encoded; other control characters (a lone
# CR, ESC) would break a reply's headers or rewrite a staff member's terminal line
_UNSTORABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


_MAILBOX = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")


def sender(raw_from: str | None) -> tuple[str | None, str | None]:
    """(display name, address) of a raw From header.

    Split before decoding: a decoded name may hold ``,``, ``<`` or an address of its
    own (``=?utf-8?b?...?= <attacker@evil.example>`` whose name reads
    ``hbzgh@126.com``), so the address comes only from the header's addr-spec. A
    header with several mailboxes, or none that parses, gives no address: it is
    answered nowhere, never to a guess.
    """
    if not raw_from:
        return None, None
    text = re.sub(r"\r?\n[ \t]*", " ", recover(raw_from))
    if _is_group(text):
        return None, None  # "Team: a@b.cn;" names a group, not the one who sent it
    mailboxes = [(name, address) for name, address in email.utils.getaddresses([text]) if name or address]
    if len(mailboxes) != 1:
        return None, None
    name, address = mailboxes[0]
    address = address.strip().lower()
    return decode_words(name).strip() or None, address if _MAILBOX.fullmatch(address) else None


def _is_group(text: str) -> bool:
    """RFC 5322 group syntax (``name: addresses;``), read outside quoted strings,
    comments, encoded words and angle brackets."""
    for pattern in (r'"(?:[^"\\]|\\.)*"', r"\([^()]*\)", r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", r"<[^>]*>"):
        text = re.sub(pattern, " ", text)
    return ":" in text


def sender_of(message: email.message.Message) -> tuple[str | None, str | None]:
    """``sender()`` of the message's From field; a message with several From fields
    has no one sender (RFC 5322 allows exactly one)."""
    fields = [value for key, value in message.raw_items() if key.lower() == "from"]
    if len(fields) != 1:
        return None, None
    return sender(fields[0] if isinstance(fields[0], str) else str(fields[0]))


def raw_header(part: email.message.Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def header(part: email.message.Message, name: str) -> str:
    return decode_header(raw_header(part, name.lower()))


# ---------------------------------------------------------------- parameters and names

def _param(part: email.message.Message, header_name: str, param: str) -> str | None:
    raw = raw_header(part, header_name)
    if raw is None:
        return None
    holder = email.message.Message()
    holder[header_name] = re.sub(r"\r?\n[ \t]*", " ", recover(raw))
    try:
        value = holder.get_param(param, header=header_name)
    except Exception:  # a parameter list the stdlib cannot split
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded latin-1)
        charset, _, text = value
        return decode_bytes(text.encode("latin-1", "replace"), charset or None)
    return decode_words(email.utils.unquote(value))


def attachment_name(part: email.message.Message) -> str | None:
    for header_name, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = _param(part, header_name, param)
        if value and value.strip():
            return value.strip()
    return None


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


# ---------------------------------------------------------------- payloads

def raw_payload(part: email.message.Message) -> bytes | None:
    """The body bytes exactly as the message carried them.

    ``get_payload(decode=False)`` is no good here: for 8-bit parts it has already
    decoded the bytes with the declared charset (or ASCII with replacement
    characters), so Chinese text would be decoded twice or lost.
    """
    raw = part._payload  # the parser's own copy: 8-bit bytes kept as surrogates
    if isinstance(raw, list):
        return None
    if isinstance(raw, bytes):
        return raw
    return _raw_bytes(raw if isinstance(raw, str) else str(raw))


def payload_bytes(part: email.message.Message) -> bytes:
    """The decoded body of a single part, whatever its transfer-encoding is spelled like."""
    data = raw_payload(part)
    if data is None:
        return b""
    encoding = (raw_header(part, "content-transfer-encoding") or "").strip().strip('"').lower()
    if encoding in ("base64", "b"):
        return _b64_bytes(data)
    if encoding in ("quoted-printable", "q", "qp"):
        return quopri.decodestring(data)
    return data


def _b64_bytes(data: bytes) -> bytes:
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return b""


def _encoding(part: email.message.Message) -> str:
    return (raw_header(part, "content-transfer-encoding") or "").strip().strip('"').lower()


def _decode_transfer(data: bytes, encoding: str) -> bytes:
    if encoding in ("base64", "b"):
        return _b64_bytes(data)
    if encoding in ("quoted-printable", "q", "qp"):
        return quopri.decodestring(data)
    return data


def write_body(view: memoryview, encoding: str, target: Path, release=lambda start, end: None) -> int:
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
    if _encoding(part) not in ("base64", "b") or not isinstance(part._payload, str):
        return None
    return write_body(memoryview(_raw_bytes(part._payload)), "base64", target)


# ---------------------------------------------------------------- kinds of message

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
        report = (message.get_param("report-type") or "").lower()
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


# ---------------------------------------------------------------- dates

def _parse_date(text: str) -> datetime | None:
    try:
        moment = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def newest_received(message: email.message.Message) -> datetime | None:
    """The time in the topmost Received: header that can be read (the receiving server's)."""
    for key, value in message.raw_items():
        if key.lower() != "received":
            continue
        text = re.sub(r"\s+", " ", recover(str(value)))
        if ";" in text:
            moment = _parse_date(text.rsplit(";", 1)[1])
            if moment:
                return moment
    return None


# ---------------------------------------------------------------- the walk

class _Walker:
    def __init__(self, result: ParsedMessage, attachments_dir: Path, raw=b"", marker: str = "",
                 bodies: dict | None = None):
        self.result = result
        self.dir = attachments_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.names: set[str] = set()
        self.raw = raw
        self.marker = marker
        self.bodies = bodies or {}

    def big_body(self, part: email.message.Message) -> _BigBody | None:
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
        raw = part._payload
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
            if self.tnef(part):
                return
        if content_type in ("text/plain", "text/html") and not name and disposition != "attachment":
            big = self.big_body(part)
            data = (_decode_transfer(bytes(memoryview(self.raw)[big.start:big.end]), _encoding(part))
                    if big is not None else payload_bytes(part))
            text = decode_bytes(data, part.get_content_charset())
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
        if depth >= MAX_NESTING:
            self.result.problems.append("forwarded messages nested too deeply")
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
                data = _b64_bytes(body) if encoding in ("base64", "b") else quopri.decodestring(body)
                if data.strip():
                    decoded.append(email.message_from_bytes(data))
            messages = decoded
        if not messages:
            data = payload_bytes(part)
            if not data.strip():
                return False
            messages = [email.message_from_bytes(data)]
        for message in messages:
            self.walk(message, depth + 1)
        return True

    def tnef(self, part: email.message.Message) -> bool:
        """winmail.dat from Outlook: the attachments inside it are the real ones."""
        try:
            from tnefparse import TNEF, properties

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
        target = self.dir / file_name
        big = self.big_body(part)
        if big is not None:
            size = write_body(memoryview(self.raw)[big.start:big.end], _encoding(part), target,
                              lambda a, b: _release(self.raw, big.start + a, big.start + b))
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


# ---------------------------------------------------------------- large messages

LARGE_BODY = 1 << 20  # leaf bodies above this are decoded from the raw bytes, not parsed


@dataclass
class _BigBody:
    start: int  # body offsets in the raw message
    end: int


def _header_end(buf, start: int, end: int) -> tuple[int, int] | None:
    """Where the header block starting at ``start`` ends: (end of headers, body start)."""
    candidates = [(buf.find(sep, start, end), len(sep)) for sep in (b"\r\n\r\n", b"\n\n")]
    found = [(at, size) for at, size in candidates if at != -1]
    if not found:
        return None
    at, size = min(found)
    return at, at + size


def _release(buf, start: int, end: int) -> None:
    """Drop pages of a mapped message already read from this process's resident set
    (they stay in the page cache); a no-op for bytes."""
    import mmap

    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        page = mmap.PAGESIZE
        first = (start + page - 1) // page * page
        last = end // page * page
        if last > first:
            try:
                buf.madvise(mmap.MADV_DONTNEED, first, last - first)
            except (OSError, ValueError):
                pass


def _find(buf, needle: bytes, start: int, end: int) -> int:
    """bytes.find in 4 MiB windows, releasing mapped pages behind the search."""
    window = 4 << 20
    position = start
    while position < end:
        stop = min(end, position + window + len(needle))
        at = buf.find(needle, position, stop)
        if at != -1:
            return at
        _release(buf, position, min(end, position + window))
        position += window
    return -1


def _big_leaves(buf, start: int, end: int, out: list, depth: int = 0) -> None:
    """Offsets of every large leaf body, found by following the MIME boundaries only:
    the standard library's parser holds a payload as lines and strings, five to ten
    times its size, which a 45 MB attachment cannot afford."""
    bounds = _header_end(buf, start, end)
    if bounds is None or depth > MAX_NESTING * 2:
        return
    header_end, body_start = bounds
    headers = email.parser.BytesHeaderParser().parsebytes(bytes(buf[start:header_end]) + b"\r\n\r\n")
    content_type = headers.get_content_type()
    boundary = headers.get_boundary() if content_type.startswith("multipart/") else None
    if boundary:
        delimiter = b"--" + boundary.encode("latin-1", "replace")
        marks = []
        at = _find(buf, delimiter, body_start, end)
        while at != -1:
            if at == body_start or buf[at - 1:at] == b"\n":
                line_end = buf.find(b"\n", at, end)
                closing = buf[at + len(delimiter):at + len(delimiter) + 2] == b"--"
                marks.append((at, end if line_end == -1 else line_end + 1, closing))
            at = _find(buf, delimiter, at + len(delimiter), end)
        for (_, part_start, closing), (next_at, _, _) in zip(marks, marks[1:]):
            if closing:
                break
            part_end = next_at - 2 if buf[next_at - 2:next_at] == b"\r\n" else next_at - 1
            _big_leaves(buf, part_start, max(part_start, part_end), out, depth + 1)
    elif content_type == "message/rfc822":
        _big_leaves(buf, body_start, end, out, depth + 1)
    elif end - body_start > LARGE_BODY:
        out.append((start, body_start, end))


def _slim(raw) -> tuple[bytes, str, dict[int, _BigBody]]:
    """The message with every large leaf body cut out and its place marked in a header
    only this parse knows (a sender cannot forge it)."""
    leaves: list = []
    _big_leaves(raw, 0, len(raw), leaves)
    if not leaves:
        return bytes(raw), "", {}
    marker = f"X-Intake-Body-{secrets.token_hex(6)}"
    pieces, bodies, position = [], {}, 0
    for index, (part_start, body_start, body_end) in enumerate(sorted(leaves)):
        pieces.append(bytes(raw[position:part_start]))
        pieces.append(f"{marker}: {index}\r\n".encode("ascii"))
        pieces.append(bytes(raw[part_start:body_start]))
        bodies[index] = _BigBody(body_start, body_end)
        position = body_end
    pieces.append(bytes(raw[position:]))
    return b"".join(pieces), marker.lower(), bodies


def _load(raw: bytes) -> email.message.Message:
    try:
        import mailparser

        return mailparser.parse_from_bytes(raw).message
    except Exception:  # mail-parser gives up on some broken mail the stdlib still reads
        return email.message_from_bytes(raw)


def parse_message(raw, attachments_dir: Path) -> ParsedMessage:
    """``raw``: the message's bytes (bytes, or an mmap of the stored file)."""
    slim, marker, bodies = _slim(raw) if len(raw) > LARGE_BODY else (bytes(raw), "", {})
    message = _load(slim)
    result = ParsedMessage()
    result.from_name, result.from_address = sender_of(message)
    result.subject = header(message, "Subject")
    result.message_id = header(message, "Message-ID") or None
    result.date = _parse_date(header(message, "Date")) if header(message, "Date") else None
    result.received = newest_received(message)
    result.auto_submitted = is_auto_submitted(message)
    result.ignored_reason = ignored_reason(message, result.from_address)
    if result.ignored_reason is None:
        try:
            _Walker(result, Path(attachments_dir), raw, marker, bodies).walk(message)
        except RecursionError:
            result.problems.append("MIME structure nested too deeply")
    return result
