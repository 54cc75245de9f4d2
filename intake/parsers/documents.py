"""Word documents as a flat sequence of paragraphs and tables, in reading order.

.docx is read by intake.parsers.word (a stream, within bounds); legacy .doc through
antiword's DocBook output. Everything else here works on that sequence: finding a
labelled section (导师简介) however the sender laid it out.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree

from intake.parsers.blocks import Block, Blocks, DocumentError, Paragraph, Table, read_partly
from intake.parsers.text import clean, squash
from intake.parsers.word import read_docx

__all__ = ["Block", "Blocks", "DocumentError", "Paragraph", "Table", "all_text", "find_section",
           "read_blocks", "read_partly"]


def read_blocks(path: Path) -> Blocks:
    """The document's blocks; ``Blocks.partly`` when reading stopped at a bound."""
    suffix = path.suffix.lower()
    if suffix in (".docx", ".docm", ".dotx"):
        return read_docx(path)
    if suffix in (".doc", ".wps", ".dot"):
        return _read_doc(path)
    raise DocumentError(f"unsupported document type {suffix}")


def _read_doc(path: Path) -> Blocks:
    """Legacy .doc through antiword's DocBook output.

    Its plain-text mode wraps table cells at a fixed width and loses CJK characters
    at the cut; the DocBook XML keeps every cell whole and marks headings as titles.
    """
    try:
        proc = subprocess.run(
            ["antiword", "-x", "db", str(path)],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DocumentError(f"antiword failed: {err}") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise DocumentError(proc.stderr.decode("utf-8", "replace").strip() or "antiword failed")
    xml = re.sub(rb"<!DOCTYPE[^>]*>", b"", proc.stdout, count=1)
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as err:
        raise DocumentError(f"antiword output unreadable: {err}") from None
    blocks = Blocks()
    _walk_docbook(root, blocks)
    return blocks


def _walk_docbook(element, blocks: list[Block]) -> None:
    for child in element:
        tag = child.tag
        if tag in ("bookinfo",):
            continue
        if tag == "title":
            blocks.append(Paragraph("".join(child.itertext()).strip(), heading=True))
        elif tag in ("informaltable", "table"):
            rows = tuple(
                tuple("".join(entry.itertext()).strip() for entry in row.iter("entry"))
                for row in child.iter("row")
            )
            blocks.append(Table(rows))
        elif tag == "para":
            text = (child.text or "").strip()
            for line in text.splitlines():
                if line.strip():
                    blocks.append(Paragraph(line.strip()))
            _walk_docbook(child, blocks)
        else:
            _walk_docbook(child, blocks)
        if child.tail and child.tail.strip() and element.tag == "para":
            for line in child.tail.strip().splitlines():
                if line.strip():
                    blocks.append(Paragraph(line.strip()))


# ---------------------------------------------------------------- sections

_COLON = "：:"
_CN_HEADING = re.compile(r"^\s*(?:[一二三四五六七八九十]+\s*[、.．]|[(（][一二三四五六七八九十]+[)）]|第[一二三四五六七八九十\d]+[部章节])")
_HEADING_NUMBER = re.compile(r"^\s*(?:[一二三四五六七八九十]+\s*[、.．]|\d+\s*[、.．]|[(（][一二三四五六七八九十\d]+[)）]|第[一二三四五六七八九十\d]+[部章节])")


def _label_key(text: str) -> str:
    return squash(_HEADING_NUMBER.sub("", text, count=1))


def _inline(text: str, label: str) -> str | None:
    """'导师简介：张三……' -> '张三……' (also with numbering and a space before the colon).

    The label is matched loosely, but the text returned is the sender's own, not
    normalised: NFKC would turn full-width commas into half-width ones and change
    the 字 count.
    """
    body = _HEADING_NUMBER.sub("", text.strip(), count=1).lstrip(" \t\u3000")
    if not body.startswith(label):
        return None
    rest = body[len(label):].lstrip(" \t\u3000")
    if rest[:1] in "（(":
        # '导师简介（200字以内）：…' : skip a parenthesised hint before the colon
        close = re.search(r"[)）]", rest)
        if not close:
            return None
        rest = rest[close.end():].lstrip(" \t\u3000")
        if rest[:1] not in _COLON:
            return rest
    if rest[:1] in _COLON:
        return rest[1:].strip()
    return None


def find_section(blocks: list[Block], label: str, other_labels: tuple[str, ...] = ()) -> str | None:
    """The text under ``label``, or None when the document has no such section.

    Understood layouts: a table row ``label | text`` (or the label alone in a row,
    the text in the next); an inline ``label：text`` paragraph, continued by the
    paragraphs after it; a heading ``label`` followed by paragraphs up to the next
    heading or known label.
    """
    key = squash(label)
    labels = {squash(x) for x in other_labels} | {key}

    for block in blocks:
        if isinstance(block, Table):
            found = _from_table(block, label, key, labels)
            if found is not None:
                return found

    for index, block in enumerate(blocks):
        if not isinstance(block, Paragraph):
            continue
        inline = _inline(block.text, label)
        heading_match = _label_key(block.text) in (key,) or _is_label_with_hint(block.text, key)
        if inline is None and not heading_match:
            continue
        parts = [inline] if inline else []
        for following in blocks[index + 1:]:
            if isinstance(following, Table):
                if not parts:
                    # a heading whose text sits in a (1×1) box below it
                    parts.extend(cell.strip() for row in following.rows for cell in _unique(row))
                break
            if _starts_section(following, labels, other_labels):
                break
            parts.append(following.text.strip())
        return "\n".join(p for p in parts if p)
    return None


def _is_label_with_hint(text: str, key: str) -> bool:
    # '导师简介（不超过200字）' as a heading
    stripped = re.sub(r"[(（][^)）]*[)）]\s*[:：]?\s*$", "", clean(text))
    return _label_key(stripped) == key and stripped != clean(text)


def _starts_section(paragraph: Paragraph, labels: set[str], other_labels: tuple[str, ...]) -> bool:
    if paragraph.heading and paragraph.text.strip():
        return True
    key = _label_key(paragraph.text)
    if key in labels:
        return True
    if any(_inline(paragraph.text, other) is not None for other in other_labels):
        return True
    text = clean(paragraph.text)
    # '应用效果：…', '联系电话：…': a short label and a colon start another field
    if re.match(r"^[\u4e00-\u9fff（）()]{2,8}\s*[:：]", text):
        return True
    # A short line numbered with a Chinese numeral ('二、工作业绩') is the next heading;
    # '1. 主持革新十二项' or '2008.07 获全国技术能手' are lines of the profile itself.
    return bool(_CN_HEADING.match(text)) and len(text) <= 20


def _unique(row: tuple[str, ...]) -> list[str]:
    """A row's cells without the repeats of a horizontally merged cell."""
    return [cell for i, cell in enumerate(row) if i == 0 or cell != row[i - 1]]


def _is_label_cell(cell: str, labels: set[str]) -> bool:
    return _label_key(cell) in labels or any(_is_label_with_hint(cell, k) for k in labels)


def _from_table(table: Table, label: str, key: str, labels: set[str]) -> str | None:
    rows = table.rows
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            inline = _inline(cell, label)
            if _label_key(cell) == key or _is_label_with_hint(cell, key):
                rest = []
                # a label cell merged down over several rows: each row adds its text
                span = [row]
                for below in rows[r + 1:]:
                    if c < len(below) and below[c] == cell:
                        span.append(below)
                    else:
                        break
                for spanned in span:
                    for other in spanned[c + 1:]:
                        if _is_label_cell(other, labels):
                            break  # 导师简介 | text | 视频简介 | text
                        if other.strip() and other not in rest:
                            rest.append(other)
                if rest:
                    return "\n".join(x.strip() for x in rest)
                # label alone in its row: the text is in the row below
                if r + 1 < len(rows):
                    below = rows[r + 1]
                    value = below[c] if c < len(below) else " ".join(below)
                    return value.strip()
                return ""
            if inline is not None:
                return inline
    return None


def all_text(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Paragraph):
            parts.append(block.text)
        else:
            parts.extend("\t".join(row) for row in block.rows)
    return "\n".join(parts)
