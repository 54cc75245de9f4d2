"""A bound of our own on how deeply a message's MIME parts nest, enforced before any
parser recurses.

The standard library's feedparser (and mail-parser over it) recurses once per nested
``multipart/*`` or ``message/*`` part: a message nested about 1,000 deep raises
RecursionError, whichever parser reads it. So the raw bytes are read first, the way
feedparser reads them (lines end at CR, LF or CRLF; a part ends at a delimiter line of
any enclosing boundary; a part of a multipart/digest is message/rfc822 unless it says
otherwise), and every container part deeper than MAX_MIME_DEPTH loses its body: the
parser then sees an empty part there and never goes deeper. What was cut, and how
deep the message went, is reported (``TooDeep``).

A message declaring few containers cannot nest deeply and is passed through after one
regular-expression count; only the others are walked, in one pass, with work linear
in their length.
"""

from __future__ import annotations

import email.parser
import re
from dataclasses import dataclass

from intake.parsers.mail_headers import TolerantMessage

MAX_MIME_DEPTH = 32  # real mail: 5 forwarded messages of 3–4 levels each, plus the outer 3

# Every way a part can become a container starts with one of these headers (a digest's
# part without a Content-Type is message/rfc822: at most two levels per declaration).
# Counted over the lower-cased bytes, each "content-type" found by bytes.find: the same
# matches as re.I with a look-behind, which sre cannot search by a literal prefix (it
# tried every position: 1.6 ms of CPU for a 120 KB message, against 0.07 ms).
_CONTAINER_REST = re.compile(rb"content-type[ \t]*:\s*(?:multipart|message)/")
# feedparser's own rules: a header line, and a header block (up to the first line that is not one)
_HEADER_LINES = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
_BLANK = re.compile(rb"\r\n|\r|\n")
_DASHES = re.compile(rb"(?:(?<=[\r\n])|\A)--")
_LINE_END = re.compile(rb"\r\n|\r|\n|\Z")
_HEADERS = email.parser.BytesHeaderParser(_class=TolerantMessage)


@dataclass(frozen=True)
class TooDeep:
    """Structure past a bound, not read: MIME parts nested deeper than MAX_MIME_DEPTH
    (``what="mime"``), or forwarded messages deeper than MAX_NESTING (``"forwarded"``)."""
    what: str
    depth: int  # how deep the message goes (as far as it was counted)
    limit: int
    names: tuple[str, ...] = ()  # attachments that were not read


def bound_depth(raw: bytes) -> tuple[bytes, TooDeep | None]:
    """``raw`` with every container part deeper than MAX_MIME_DEPTH emptied, and what
    was cut (None when nothing was)."""
    if 2 * _containers_declared(raw, MAX_MIME_DEPTH // 2 + 1) + 1 <= MAX_MIME_DEPTH:
        return raw, None
    deepest, cuts = _walk(raw)
    if not cuts:
        return raw, None
    kept, position = [], 0
    for start, end in cuts:
        kept.append(raw[position:start])
        position = end
    kept.append(raw[position:])
    return b"".join(kept), TooDeep("mime", deepest, MAX_MIME_DEPTH)


def _containers_declared(raw: bytes, most: int) -> int:
    """Header lines declaring a multipart/* or message/* part (counted up to ``most``):
    a "content-type" at the start of a line (after CR or LF, or at the very start)."""
    lowered = raw.lower()  # ASCII only, as re.I on bytes; a copy of what the parser expands 5-10x
    count, at = 0, lowered.find(b"content-type")
    while at != -1 and count < most:
        if (at == 0 or lowered[at - 1] in b"\r\n") and _CONTAINER_REST.match(lowered, at):
            count += 1
        at = lowered.find(b"content-type", at + 1)
    return count


class _Stack:
    """The open containers: (a multipart's boundary or None for a message/* part,
    whether it is a digest)."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes | None, bool]] = []
        self.where: dict[bytes, list[int]] = {}  # boundary -> its frames, innermost last

    def push(self, boundary: bytes | None, digest: bool) -> None:
        if boundary is not None:
            self.where.setdefault(boundary, []).append(len(self.frames))
        self.frames.append((boundary, digest))

    def pop_to(self, size: int) -> None:
        while len(self.frames) > size:
            boundary, _ = self.frames.pop()
            if boundary is not None:
                self.where[boundary].pop()
                if not self.where[boundary]:
                    del self.where[boundary]

    def delimiter(self, line: bytes) -> tuple[int, bool] | None:
        """(index of the innermost frame the line delimits, whether it closes it)."""
        text = line[2:].rstrip(b" \t")
        found = []
        if text in self.where:
            found.append((self.where[text][-1], False))
        if text.endswith(b"--") and text[:-2] in self.where:
            found.append((self.where[text[:-2]][-1], True))
        return max(found) if found else None


def _walk(raw: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(the deepest container level, the (start, end) spans to cut)."""
    stack = _Stack()
    cuts: list[tuple[int, int]] = []
    cut_start: int | None = None
    deepest, position, at_headers = 0, 0, True
    while True:
        if at_headers:
            header_end, body_start = _header_block(raw, position, stack)
            headers = _HEADERS.parsebytes(raw[position:header_end] + b"\n")
            if stack.frames and stack.frames[-1][1]:  # a part of a digest
                headers.set_default_type("message/rfc822")
            kind = headers.get_content_type()
            boundary = headers.get_boundary() if kind.startswith("multipart/") else None
            container = boundary is not None or (kind.startswith("message/") and kind != "message/delivery-status")
            position = body_start
            if container:
                deepest = max(deepest, len(stack.frames) + 1)
                if len(stack.frames) == MAX_MIME_DEPTH and cut_start is None:
                    cut_start = body_start
                stack.push(boundary.encode("utf-8", "surrogateescape") if boundary is not None else None,
                           kind == "multipart/digest")
                if boundary is None:
                    continue  # message/*: the inner message's headers start its body
        found = _next_delimiter(raw, position, stack)
        if found is None:
            break
        line_start, line_end, index, closes = found
        stack.pop_to(index if closes else index + 1)
        if cut_start is not None and len(stack.frames) <= MAX_MIME_DEPTH:
            cuts.append((cut_start, line_start))
            cut_start = None
        position, at_headers = line_end, not closes
    if cut_start is not None:
        cuts.append((cut_start, len(raw)))
    return deepest, cuts


def _header_block(raw: bytes, start: int, stack: _Stack) -> tuple[int, int]:
    """(end of the header lines, start of the body) of the part starting at ``start``;
    a delimiter line of an enclosing boundary ends the headers, as in feedparser."""
    end = _HEADER_LINES.match(raw, start).end()  # type: ignore[union-attr]  # matches the empty string
    for dashes in _DASHES.finditer(raw, start, end):
        line_end = _LINE_END.search(raw, dashes.start()).start()  # type: ignore[union-attr]
        if stack.delimiter(raw[dashes.start():line_end]) is not None:
            return dashes.start(), dashes.start()
    blank = _BLANK.match(raw, end)
    return end, blank.end() if blank else end


def _next_delimiter(raw: bytes, start: int, stack: _Stack) -> tuple[int, int, int, bool] | None:
    """The next delimiter line of an open boundary: (its start, the next line's start,
    the frame it delimits, whether it closes it)."""
    if not stack.where:
        return None  # only message/* frames are open: nothing ends them but the end
    for dashes in _DASHES.finditer(raw, start):
        line_end = _LINE_END.search(raw, dashes.start())
        assert line_end is not None  # \Z always matches
        found = stack.delimiter(raw[dashes.start():line_end.start()])
        if found is not None:
            return dashes.start(), line_end.end(), found[0], found[1]
    return None
