"""Word documents as a flat sequence of paragraphs and tables, in reading order.

.docx is read with python-docx; legacy .doc through antiword's DocBook output. Everything else here works on that
sequence: finding a labelled section (导师简介) however the sender laid it out.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from intake.parsers.text import clean, squash

if TYPE_CHECKING:  # typing only: python-docx is imported when a .docx is read
    from docx.document import Document as DocxDocument


class DocumentError(Exception):
    """The file cannot be read as a Word document."""


@dataclass(frozen=True)
class Paragraph:
    text: str
    heading: bool = False  # a Word heading style or an outline level


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]


Block = Paragraph | Table

# OPC packages are zips too: refuse ones that would unpack absurdly large, and the
# few-byte constructs that make python-docx or openpyxl expand them cell by cell
# (a merged range A1:XFD1048576, a cell spanning 10^7 grid columns).
MAX_OPC_UNPACKED = 512 << 20
MAX_MERGED_CELLS = 100_000  # ~1.4 s in openpyxl; a real sheet merges a few thousand
MAX_GRID_SPAN = 64  # Word allows 63 columns

_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*\bref=\"([A-Z]+)(\d+):([A-Z]+)(\d+)\"")
_GRID_SPAN = re.compile(rb"<w:gridSpan\b[^>]*\bw:val=\"(\d+)\"")


def check_opc(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as package:
            infos = package.infolist()
            if sum(info.file_size for info in infos) > MAX_OPC_UNPACKED:
                raise DocumentError("package unpacks to more than 512 MiB")
            for info in infos:
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    _check_merges(package, info.filename)
                elif info.filename == "word/document.xml":
                    _check_spans(package, info.filename)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise DocumentError(f"not an Office Open XML package: {err}") from None


def _scan(package: zipfile.ZipFile, member: str, pattern: re.Pattern):
    """Matches of ``pattern`` in a package member, read in chunks (members can be large)."""
    overlap = b""
    with package.open(member) as stream:
        while chunk := stream.read(1 << 20):
            data = overlap + chunk
            last_end = 0
            for match in pattern.finditer(data):
                last_end = match.end()
                yield match
            overlap = data[max(last_end, len(data) - 256):]


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ch - 64
    return number


def _check_merges(package: zipfile.ZipFile, member: str) -> None:
    total = 0
    for match in _scan(package, member, _MERGE_REF):
        c1, r1, c2, r2 = match.groups()
        rows = abs(int(r2) - int(r1)) + 1
        cols = abs(_column_number(c2) - _column_number(c1)) + 1
        total += rows * cols
        if total > MAX_MERGED_CELLS:
            raise DocumentError("merged cell ranges cover more than 100,000 cells")


def _check_spans(package: zipfile.ZipFile, member: str) -> None:
    for match in _scan(package, member, _GRID_SPAN):
        if int(match.group(1)) > MAX_GRID_SPAN:
            raise DocumentError(f"a table cell spans {int(match.group(1))} columns")


def read_blocks(path: Path) -> list[Block]:
    suffix = path.suffix.lower()
    if suffix in (".docx", ".docm", ".dotx"):
        return _read_docx(path)
    if suffix in (".doc", ".wps", ".dot"):
        return _read_doc(path)
    raise DocumentError(f"unsupported document type {suffix}")


def _read_docx(path: Path) -> list[Block]:
    import docx  # ~50 ms to import: paid only when a .docx is read
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table as DocxTable
    from docx.text.paragraph import Paragraph as DocxParagraph

    check_opc(path)
    try:
        document = docx.Document(str(path))
        return _docx_blocks(document, DocxParagraph, DocxTable)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise DocumentError(str(err)) from None
    except Exception as err:  # lxml and python-docx raise many kinds on broken XML
        raise DocumentError(f"{type(err).__name__}: {err}") from None


def _docx_blocks(document, DocxParagraph, DocxTable) -> list[Block]:
    blocks: list[Block] = []
    style_names = _StyleNames(document)
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = DocxParagraph(element, document)
            blocks.append(Paragraph(paragraph.text, _is_heading(element, style_names)))
        elif tag == "tbl":
            blocks.append(Table(_docx_rows(DocxTable(element, document))))
    return blocks


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class _StyleNames:
    """styleId -> lower-case style name, looked up lazily in styles.xml.

    Chinese Word names its heading styles by number ids ("1", "2"); the name
    ("heading 1") is what tells. python-docx's per-paragraph style lookup is the
    slowest part of reading a document; a document uses a handful of styles, so
    only those are looked up, once each.
    """

    def __init__(self, document: DocxDocument) -> None:
        try:
            self.root = document.part.styles.element
        except (KeyError, NotImplementedError):
            self.root = None
        self.names: dict[str, str] = {}

    def get(self, style_id: str | None, default: str = "") -> str:
        if style_id is None or self.root is None:
            return default
        if style_id not in self.names:
            name = ""
            for style in self.root.iterchildren(f"{_W}style"):
                if style.get(f"{_W}styleId") == style_id:
                    element = style.find(f"{_W}name")
                    name = (element.get(f"{_W}val") or "").lower() if element is not None else ""
                    break
            self.names[style_id] = name
        return self.names[style_id]


def _is_heading(p_element, style_names: _StyleNames) -> bool:
    properties = p_element.find(f"{_W}pPr")
    if properties is None:
        return False
    if properties.find(f"{_W}outlineLvl") is not None:
        return True
    style = properties.find(f"{_W}pStyle")
    if style is None:
        return False
    name = style_names.get(style.get(f"{_W}val"), "")
    return name.startswith("heading") or name.startswith("标题") or name == "title"


def _docx_rows(table) -> tuple[tuple[str, ...], ...]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            # A cell merged across columns is returned once per grid column.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text)
        rows.append(tuple(cells))
    return tuple(rows)


def _read_doc(path: Path) -> list[Block]:
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
    blocks: list[Block] = []
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
