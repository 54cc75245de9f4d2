"""Large messages: leaf bodies above LARGE_BODY are cut out before parsing.

The standard library's parser holds a payload as lines and strings, five to ten times
its size, which a 45 MB attachment cannot afford. So the MIME boundaries alone are
followed over the raw bytes (an mmap of the stored file, usually), every large leaf
body is cut out and its place marked in a header only this parse knows, and the
bodies are later decoded straight from the raw bytes (intake.parsers.mail_bodies).
"""

from __future__ import annotations

import email.parser
import mmap
import secrets
from dataclasses import dataclass

from intake.parsers.mail_headers import boundary_of

LARGE_BODY = 1 << 20  # leaf bodies above this are decoded from the raw bytes, not parsed
MAX_NESTING = 5  # forwarded messages inside forwarded messages

RawMessage = bytes | mmap.mmap  # a message's bytes, or an mmap of the stored file


@dataclass
class BigBody:
    start: int  # body offsets in the raw message
    end: int


def _header_end(buf: RawMessage, start: int, end: int) -> tuple[int, int] | None:
    """Where the header block starting at ``start`` ends: (end of headers, body start).

    Searched in 64 KiB windows, releasing mapped pages behind: one whole-range find per
    separator would read a CRLF message to its end looking for the LF-only one (and the
    reverse), making all of a 400 MB mapped message resident in the judging child."""
    window = 1 << 16
    position = start
    while position < end:
        stop = min(end, position + window + 3)  # a separator across the window's edge is found in it
        candidates = [(buf.find(sep, position, stop), len(sep)) for sep in (b"\r\n\r\n", b"\n\n")]
        found = [(at, size) for at, size in candidates if at != -1]
        if found:
            at, size = min(found)
            return at, at + size
        release(buf, position, min(end, position + window))
        position += window
    return None


def release(buf: RawMessage, start: int, end: int) -> None:
    """Drop pages of a mapped message already read from this process's resident set
    (they stay in the page cache); a no-op for bytes."""
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        page = mmap.PAGESIZE
        first = (start + page - 1) // page * page
        last = end // page * page
        if last > first:
            try:
                buf.madvise(mmap.MADV_DONTNEED, first, last - first)
            except (OSError, ValueError):
                pass


def _find(buf: RawMessage, needle: bytes, start: int, end: int) -> int:
    """bytes.find in 4 MiB windows, releasing mapped pages behind the search."""
    window = 4 << 20
    position = start
    while position < end:
        stop = min(end, position + window + len(needle))
        at = buf.find(needle, position, stop)
        if at != -1:
            return at
        release(buf, position, min(end, position + window))
        position += window
    return -1


def _big_leaves(buf: RawMessage, start: int, end: int, out: list[tuple[int, int, int]], depth: int = 0) -> None:
    """Offsets (part start, body start, body end) of every large leaf body, found by
    following the MIME boundaries only."""
    bounds = _header_end(buf, start, end)
    if bounds is None or depth > MAX_NESTING * 2:
        return
    header_end, body_start = bounds
    headers = email.parser.BytesHeaderParser().parsebytes(bytes(buf[start:header_end]) + b"\r\n\r\n")
    content_type = headers.get_content_type()
    boundary = boundary_of(headers) if content_type.startswith("multipart/") else None
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


def slim(raw: RawMessage) -> tuple[bytes, str, dict[int, BigBody]]:
    """The message with every large leaf body cut out and its place marked in a header
    only this parse knows (a sender cannot forge it): (message, marker header name,
    body offsets by the marker's value)."""
    leaves: list[tuple[int, int, int]] = []
    _big_leaves(raw, 0, len(raw), leaves)
    if not leaves:
        return bytes(raw), "", {}
    marker = f"X-Intake-Body-{secrets.token_hex(6)}"
    pieces, bodies, position = [], {}, 0
    for index, (part_start, body_start, body_end) in enumerate(sorted(leaves)):
        pieces.append(bytes(raw[position:part_start]))
        pieces.append(f"{marker}: {index}\r\n".encode("ascii"))
        pieces.append(bytes(raw[part_start:body_start]))
        bodies[index] = BigBody(body_start, body_end)
        position = body_end
    pieces.append(bytes(raw[position:]))
    return b"".join(pieces), marker.lower(), bodies
