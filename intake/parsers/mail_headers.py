"""Mail headers as text: charsets, RFC 2047 words, parameters, the sender and dates.

Decoding is done here rather than by mail-parser or the standard library, which lose
Chinese text in the ways real 163/126/QQ/Foxmail/Outlook/Coremail mail needs: gb2312
labels on GBK text, raw 8-bit headers, RFC 2047 words inside quoted parameters,
RFC 2231 continuations. Nothing here raises for bad input: what cannot be decoded is
decoded with replacement characters.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.message
import email.utils
import re
from datetime import datetime, timedelta, timezone
from typing import TypeVar, overload

_T = TypeVar("_T")

# Labels that mean "some Chinese GB encoding": decode with the superset GB18030.
_GB_LABELS = {"gb2312", "gbk", "cp936", "x-gbk", "gb_2312-80", "euc-cn", "x-euc-cn", "csgb2312",
              "euccn", "chinese", "gb18030", "ms936", "windows-936", "936", "gb2312-80", "eucgb2312_cn"}
_BIG5_LABELS = {"big5", "big5-hkscs", "big5hkscs", "cp950", "x-x-big5", "csbig5", "windows-950"}


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


def raw_bytes(text: str) -> bytes:
    """The bytes the parser read: it keeps 8-bit header and body bytes as surrogates."""
    return text.encode("utf-8", "surrogateescape")


def recover(text: str) -> str:
    """A header or parameter string with raw 8-bit bytes turned back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(raw_bytes(text))


def b64_decode(data: bytes | str) -> bytes:
    """Lenient base64: characters outside the alphabet skipped, padding mended, b"" when
    nothing can be decoded."""
    if isinstance(data, str):
        data = data.encode("ascii", "ignore")  # what is not ASCII is not base64 either
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return b""


# ---------------------------------------------------------------- RFC 2047

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _q(data: str) -> bytes:
    raw = data.replace("_", " ").encode("latin-1", "replace")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words anywhere in ``text`` (quoted parameters too).

    Adjacent words in the same charset are joined before decoding, so a character
    split across two words survives; white space between encoded words is dropped.
    """
    pieces: list[str | tuple[str, bytearray]] = []  # literal text, or (charset, bytes) of encoded words
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        literal = text[position:match.start()]
        if literal and not (literal.isspace() and pieces and isinstance(pieces[-1], tuple)):
            pieces.append(literal)
        charset, kind, payload = match.groups()
        data = b64_decode(payload) if kind in "bB" else _q(payload)
        last = pieces[-1] if pieces else None
        if isinstance(last, tuple) and codec_for(last[0]) == codec_for(charset):
            last[1].extend(data)  # in place: joining by copies was quadratic in the words' count
        else:
            pieces.append((charset, bytearray(data)))
        position = match.end()
    pieces.append(text[position:])
    return "".join(piece if isinstance(piece, str) else decode_bytes(bytes(piece[1]), piece[0]) for piece in pieces)


# NUL and lone surrogates cannot be stored or encoded; other control characters (a lone
# CR, ESC, the C1 CSI) would break a reply's headers or rewrite a staff member's terminal
# line, and NEL, LS and PS end a line for str.splitlines(), so the email package refuses
# a header holding one as it refuses a CR
_UNSTORABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def decode_header(value: object) -> str:
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


def raw_header(part: email.message.Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def header(part: email.message.Message, name: str) -> str:
    return decode_header(raw_header(part, name.lower()))


# ---------------------------------------------------------------- the sender

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
    for pattern in (r'"(?:[^"\\]|\\.)*"', r"\([^()]*\)", r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", r"<[^<>]*>"):
        text = re.sub(pattern, " ", text)
    return ":" in text


def sender_of(message: email.message.Message) -> tuple[str | None, str | None]:
    """``sender()`` of the message's From field; a message with several From fields
    has no one sender (RFC 5322 allows exactly one)."""
    fields = [value for key, value in message.raw_items() if key.lower() == "from"]
    if len(fields) != 1:
        return None, None
    return sender(fields[0] if isinstance(fields[0], str) else str(fields[0]))


# ---------------------------------------------------------------- parameters

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


def content_charset(part: email.message.Message) -> str | None:
    """``part.get_content_charset()``, where an RFC 2231 charset the standard library
    cannot decode with (a NUL in it, idna, punycode: it catches only LookupError) is
    one it does not know, as an unknown label is, rather than an exception."""
    try:
        return email.message.Message.get_content_charset(part)
    except ValueError:  # UnicodeError included
        value = part.get_param("charset")
        text = value[2] if isinstance(value, tuple) else value
        return text.lower() if isinstance(text, str) and text.isascii() else None


def boundary_of(part: email.message.Message) -> str | None:
    """``part.get_boundary()``, tolerant in the same way (feedparser calls it: its
    exception stopped the whole parse)."""
    try:
        return email.message.Message.get_boundary(part)
    except ValueError:
        value = part.get_param("boundary")
        return email.utils.unquote(value[2]).rstrip() if isinstance(value, tuple) else None


class TolerantMessage(email.message.Message):
    """The standard library's Message with the two tolerant readers above: the class to
    parse with, so that the parser's own get_boundary() cannot raise."""

    @overload
    def get_boundary(self, failobj: None = None) -> str | None: ...
    @overload
    def get_boundary(self, failobj: _T) -> str | _T: ...

    def get_boundary(self, failobj: object = None) -> object:
        found = boundary_of(self)
        return failobj if found is None else found

    @overload
    def get_content_charset(self) -> str | None: ...
    @overload
    def get_content_charset(self, failobj: _T) -> str | _T: ...

    def get_content_charset(self, failobj: object = None) -> object:
        found = content_charset(self)
        return failobj if found is None else found


def attachment_name(part: email.message.Message) -> str | None:
    for header_name, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = _param(part, header_name, param)
        if value and value.strip():
            return value.strip()
    return None


# ---------------------------------------------------------------- dates

# A day inside datetime's range at each end: any time zone's view of such a moment exists
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc) + timedelta(days=1)
_LATEST = datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=1)


def parse_date(text: str) -> datetime | None:
    """An RFC 5322 date, or None when it cannot be read or lies outside what datetime
    holds once converted (``31 Dec 9999 23:59:59 -1200`` is past year 9999 in UTC):
    such a date is treated as missing."""
    try:
        moment = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment if _EARLIEST <= moment.astimezone(timezone.utc) <= _LATEST else None
    except OverflowError:
        return None


def newest_received(message: email.message.Message) -> datetime | None:
    """The time in the topmost Received: header that can be read (the receiving server's)."""
    for key, value in message.raw_items():
        if key.lower() != "received":
            continue
        text = re.sub(r"\s+", " ", recover(str(value)))
        if ";" in text:
            moment = parse_date(text.rsplit(";", 1)[1])
            if moment:
                return moment
    return None
