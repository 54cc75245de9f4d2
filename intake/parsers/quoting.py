"""Quoted text in a message body: what a reply carries of the mail it answers.

A link found there is marked ``quoted`` (the wiring does not fetch it again when the
unit's earlier message with the same link is already recorded). Conservative: only
what mail clients mark as a quote, never a guess from prose.

Plain text (and the visible text of HTML):
- a line starting with ``>`` (the line only);
- from a separator line to the end of the part: ``-----原始邮件-----`` (QQ, Foxmail,
  139 also write ``&nbsp;`` into their text part), ``-----Original Message-----``,
  ``---- 回复的原邮件 ----`` / ``---- Replied Message ----`` (网易邮箱大师);
- from an attribution line to the end: ``在 … 写道：``, ``… 于… 写道：`` (Gmail),
  ``On/At … wrote:`` (163 in English), when the line also holds a digit or an ``@``;
- from a ``发件人:``/``From:`` line to the end, when one of the next lines is another
  header (发送时间, 日期, 收件人, 抄送, 主题, Date, Sent, Sent Time, To, Cc, Subject):
  Outlook's and QQ's header block, and a forward's.

HTML, besides its visible text: inside a ``<blockquote>`` (not Gmail's indent, a
blockquote styled ``border:none`` with no quote id or class), or inside an element
whose class names a quote (``gmail_quote``, ``ntes-mailmaster-quote``, ``yahoo_quoted``…)
or whose id is one of 163's and QQ's (``isReplyContent``, ``isForwardContent``,
``reply139content``, ``origbody``, ``ntes-…mail-quote``; also with the ``x_`` or
``gmail-m_…`` prefix a forward adds). 163's ``divNeteaseMailCard`` is an empty
signature placeholder, not a quote: it is ignored (the attribution line after it counts).
"""

from __future__ import annotations

import bisect
import re
from typing import Any

OPEN, CLOSE = "\ue000", "\ue001"  # private-use marks put around a quote container's text
HEADER_LOOKAHEAD = 6  # lines after 发件人:/From: in which another header must appear

_SPACE = r"(?:[ \t]|&nbsp;)*"
_QUOTE_LINE = re.compile(r"^[ \t]*>", re.M)
_SEPARATOR = re.compile(
    rf"^{_SPACE}-{{2,}}{_SPACE}(?:原始邮件|回复的原邮件|Original Message|Replied Message|Original){_SPACE}-{{2,}}{_SPACE}$",
    re.M | re.I)
_ATTRIBUTION = re.compile(r"^[^\n]{0,300}?(?:写道|wrote)[ \t]*:[ \t]*$", re.M | re.I)
_FROM = re.compile(r"^[ \t*|]*(?:发件人|From)[ \t*|]*:", re.M | re.I)
_HEADER = re.compile(r"^[ \t*|]*(?:发送时间|发件时间|日期|时间|收件人|抄送人?|主题|Date|Sent Time|Sent|To|Cc|Subject)"
                     r"[ \t*|]*:", re.M | re.I)
_QUOTE_ID = re.compile(r"(?:isReplyContent|isForwardContent|reply139content|origbody)$", re.I)
HEADER_WINDOW = 2000  # characters after 发件人:/From: read for the next headers (bounded work)


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of ``text`` that quote another mail, merged and in order."""
    spans = [(m.start(), _line_end(text, m.start())) for m in _QUOTE_LINE.finditer(text)]
    rest = _rest_starts(text)
    if rest is not None:
        spans.append((rest, len(text)))
    return merge(spans)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end + 1


def _rest_starts(text: str) -> int | None:
    """Where the quoted rest of the part begins: the first separator, attribution or
    header block."""
    starts = [m.start() for m in (_SEPARATOR.search(text),) if m]
    starts += [m.start() for m in _ATTRIBUTION.finditer(text) if re.search(r"[\d@]", m.group(0))][:1]
    headers = [m.start() for m in _HEADER.finditer(text)]
    for found in _FROM.finditer(text):
        after = _line_end(text, found.start())
        index = bisect.bisect_left(headers, after)  # the first other header after the From line
        if index < len(headers) and headers[index] - after <= HEADER_WINDOW \
                and text.count("\n", after, headers[index]) < HEADER_LOOKAHEAD:
            starts.append(found.start())
            break
    return min(starts) if starts else None


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def inside(offset: int, spans: list[tuple[int, int]]) -> bool:
    """Whether ``offset`` is in one of the merged, ordered ``spans``."""
    index = bisect.bisect_right(spans, (offset, float("inf"))) - 1
    return index >= 0 and spans[index][0] <= offset < spans[index][1]


def strip_marks(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` without the marks, and the spans that were between them (nested
    containers count once; a stray close mark is ignored)."""
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    depth = length = opened = 0
    for part in re.split(f"([{OPEN}{CLOSE}])", text):
        if part == OPEN:
            depth += 1
            if depth == 1:
                opened = length
        elif part == CLOSE:
            if depth == 1:
                spans.append((opened, length))
            depth = max(depth - 1, 0)
        else:
            pieces.append(part)
            length += len(part)
    if depth:
        spans.append((opened, length))
    return "".join(pieces), merge(spans)


def is_quote_container(tag: Any) -> bool:
    """A BeautifulSoup tag that holds quoted mail (see the module's docstring)."""
    classes = tag.get("class") or []
    classes = classes.split() if isinstance(classes, str) else classes
    ident = str(tag.get("id") or "")
    if any("quote" in name.lower() for name in classes) or _QUOTE_ID.search(ident) or "quote" in ident.lower():
        return True
    if tag.name != "blockquote":
        return False
    style = re.sub(r"\s+", "", str(tag.get("style") or "")).lower()
    return "border:none" not in style or tag.get("type") == "cite"


def mark_quotes(soup: Any) -> None:
    """Put OPEN and CLOSE around the text of every quote container in ``soup``."""
    for tag in soup.find_all(["blockquote", "div", "article", "section", "td", "table", "span", "p"]):
        if is_quote_container(tag):
            tag.insert(0, OPEN)
            tag.append(CLOSE)
