""".docx documents read as a stream, within bounds.

python-docx parses a document's whole XML at once: a 1.1 MB .docx holding 120 MiB of
empty ``<w:p/>`` took 4.3 GiB and more than five minutes. Here word/document.xml is
read by intake.parsers.ooxml's pull parser, each top-level paragraph or table turned
into a block when it ends and then forgotten, and reading stops at the bounds below;
what was read is judged, marked ``partly`` (document.read_partly tells the sender).
A 200-字 profile, a declaration or a form is a few hundred paragraphs.

The text is what python-docx gives: a paragraph's runs and hyperlinks (tabs, breaks,
non-breaking hyphens included); a table row's cells, a cell merged across columns
once, a cell merged down repeated in every row it spans.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections import OrderedDict
from pathlib import Path

from lxml import etree

from intake.parsers.blocks import Block, Blocks, DocumentError, Paragraph, Table
from intake.parsers.ooxml import (
    PackageError, XmlBudget, check_opc, elements, forget, main_part, related, root_tag,
)

MAX_PARAGRAPHS = 20_000  # every w:p, in the body and in table cells
MAX_TABLE_CELLS = 40_000  # a question bank kept as a Word table: 12 cells a question
MAX_TEXT_CHARS = 2_000_000  # a thousand pages
MAX_XML_ELEMENTS = 1_000_000  # about 2.5 s of parsing; memory stays small (see _Reader)
MAX_XML_BYTES = 64 << 20
MAX_GRID_SPAN = 64  # Word allows 63 columns
MAX_STYLES_BYTES = 2 << 20  # Word writes ~50 KB, python-docx's template 350 KB

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_P, _TBL, _TR, _TC, _R, _T = (f"{W}{t}" for t in ("p", "tbl", "tr", "tc", "r", "t"))
_BODY, _HYPERLINK, _PPR = f"{W}body", f"{W}hyperlink", f"{W}pPr"
_RUN_TEXT = {f"{W}tab": "\t", f"{W}ptab": "\t", f"{W}cr": "\n", f"{W}noBreakHyphen": "-"}


def read_docx(path: Path) -> Blocks:
    try:
        check_opc(path)
        with zipfile.ZipFile(path) as package:
            return _Reader(package, main_part(package, "word/document.xml")).read()
    except (PackageError, DocumentError) as err:
        raise DocumentError(str(err)) from None
    except Exception as err:  # a sender's broken package: zipfile, zlib, lxml raise many kinds
        raise DocumentError(f"{type(err).__name__}: {err}") from None


class _Reader:
    """Reads word/document.xml as it streams by. Run text is taken as each piece of it
    ends (a w:t, a tab, a break) and the piece dropped, so a paragraph of a million runs
    holds no more in memory than its text; a top-level paragraph or table becomes a block
    when it ends and is then dropped too."""

    def __init__(self, package: zipfile.ZipFile, main: str) -> None:
        self.package, self.main = package, main
        self.style_names: dict[str, str] | None = None  # read when a paragraph first names a style
        self.styles_read = False
        self.paragraphs = self.cells = self.chars = 0
        self.pieces: dict[etree._Element, list[str]] = {}  # paragraph being read -> its text so far
        self.texts: dict[etree._Element, str] = {}  # paragraph in a table cell -> its text

    def read(self) -> Blocks:
        blocks = Blocks()
        budget = XmlBudget(MAX_XML_ELEMENTS, MAX_XML_BYTES)
        last = None
        for element in elements(self.package, self.main, budget):
            if last is None and root_tag(element) != f"{W}document":
                raise DocumentError("not a Word document (no w:document in its main part)")
            last = element
            if self._over():
                blocks.partly = True
                break
            self._take(element, blocks)
        if budget.spent:
            blocks.partly = True
        if blocks.partly and last is not None:
            # the paragraph or table being read when reading stopped: what of it was read
            body = last.getroottree().getroot().find(_BODY)
            if body is not None and len(body) and len(body[-1]):
                self._add(body[-1], blocks)
        return blocks

    def _take(self, element: etree._Element, blocks: Blocks) -> None:
        tag, parent = element.tag, element.getparent()
        if parent is None:
            return
        if parent.tag == _R:  # a piece of a run: its text goes to the paragraph the run is in
            paragraph = _paragraph_of(parent)
            if paragraph is not None:
                self.pieces.setdefault(paragraph, []).append(_piece(element))
            _drop(element, keep=None)
        elif parent.tag in (_P, _HYPERLINK) and tag != _PPR:
            _drop(element, keep=_PPR)  # runs, bookmarks, proofing marks: their text is taken
        elif tag == _P:
            self.paragraphs += 1
            text = "".join(self.pieces.pop(element, ()))
            if parent.tag in (_TC, _BODY):
                self.texts[element] = text
        elif tag == _TC:
            self.cells += 1
        if parent.tag == _BODY:
            self._add(element, blocks)
            forget(element)

    def _over(self) -> bool:
        return (self.paragraphs > MAX_PARAGRAPHS or self.cells > MAX_TABLE_CELLS
                or self.chars > MAX_TEXT_CHARS)

    def _add(self, element: etree._Element, blocks: Blocks) -> None:
        block: Block
        if element.tag == _P:
            text = self.texts.pop(element, None)
            if text is None:  # a paragraph cut short by a bound: its pieces so far
                text = "".join(self.pieces.pop(element, ()))
            block = Paragraph(text, self._is_heading(element))
            self.chars += len(block.text)
        elif element.tag == _TBL:
            block = Table(_rows(element, self.texts))
            self.texts.clear()  # what is left belonged to tables nested in its cells, never read
            self.chars += sum(len(cell) for row in block.rows for cell in row)
        else:
            return  # section properties, bookmarks, content controls: python-docx skips them too
        blocks.append(block)
    def _is_heading(self, p: etree._Element) -> bool:
        properties = p.find(_PPR)
        if properties is None:
            return False
        if properties.find(f"{W}outlineLvl") is not None:
            return True
        style = properties.find(f"{W}pStyle")
        if style is None:
            return False
        style_id = style.get(f"{W}val") or ""
        if not self.styles_read:
            self.style_names, self.styles_read = _style_names(self.package, self.main), True
        # Chinese Word names its heading styles by number ids ("1", "2"): the name
        # ("heading 1") is what tells. Without a styles part, python-docx's default
        # styles name "Heading1" "heading 1".
        name = style_id.lower() if self.style_names is None else self.style_names.get(style_id, "")
        return name.startswith("heading") or name.startswith("标题") or name == "title"


def _paragraph_of(run: etree._Element) -> etree._Element | None:
    """The paragraph whose text a run is part of: python-docx reads a paragraph's own runs
    and those of its hyperlinks, nothing wrapped otherwise (revisions, fields, text boxes)."""
    parent = run.getparent()
    if parent is not None and parent.tag == _HYPERLINK:
        parent = parent.getparent()
    return parent if parent is not None and parent.tag == _P else None


def _piece(element: etree._Element) -> str:
    """The text of one piece of a run, as python-docx reads it."""
    tag = element.tag
    if tag == _T:
        return element.text or ""
    if tag == f"{W}br":
        return "\n" if element.get(f"{W}type", "textWrapping") == "textWrapping" else ""
    return _RUN_TEXT.get(tag, "")


def _drop(element: etree._Element, keep: str | None) -> None:
    """Forget an element whose text has been taken, and its earlier siblings but ``keep``."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    previous = element.getprevious()
    while parent is not None and previous is not None:
        before = previous.getprevious()
        if previous.tag != keep:
            parent.remove(previous)
        previous = before


def _style_names(package: zipfile.ZipFile, main: str) -> dict[str, str] | None:
    """styleId -> lower-case style name; None without a styles part, none at all from one
    over MAX_STYLES_BYTES (its headings are then known by their outline level only)."""
    part = related(package, main, "styles")
    if part is None:
        return None
    if package.getinfo(part).file_size > MAX_STYLES_BYTES:
        return {}
    try:
        data = package.read(part)  # at most the declared size; zipfile checks the CRC
    except Exception:  # a damaged part only loses heading styles; the text is still read
        return {}
    # documents made from one template share its styles part (python-docx's is 350 KB,
    # 20-40 ms to parse): parsed once per process, known by the SHA-256 of its bytes
    # (a CRC the sender can forge, and a forged one would give another sender's names)
    key = hashlib.sha256(data).digest() if len(data) <= STYLES_CACHED_BYTES else None
    if key is not None and key in _STYLES_SEEN:
        _STYLES_SEEN.move_to_end(key)
        return _STYLES_SEEN[key]
    names = _parse_style_names(data)
    if names is not None and key is not None:  # a part that did not parse is not kept
        _STYLES_SEEN[key] = names
        while len(_STYLES_SEEN) > STYLES_CACHED:
            _STYLES_SEEN.popitem(last=False)  # the least recently used
    return names or {}


STYLES_CACHED = 16  # styles parts remembered (most recently used); a few templates in practice
STYLES_CACHED_BYTES = 512 << 10  # larger parts are parsed each time, never kept
_STYLES_SEEN: OrderedDict[bytes, dict[str, str]] = OrderedDict()


def _parse_style_names(data: bytes) -> dict[str, str] | None:
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
        root = etree.fromstring(data, parser)
    except Exception:  # broken styles only lose heading styles; the text is still read
        return None
    names = {}
    for style in root.iterchildren(f"{W}style"):
        name = style.find(f"{W}name")
        if name is not None:
            names[style.get(f"{W}styleId") or ""] = (name.get(f"{W}val") or "").lower()
    return names


def _number(element: etree._Element | None, default: int) -> int:
    if element is None:
        return default
    try:
        return int(element.get(f"{W}val") or default)
    except ValueError:
        raise DocumentError(f"a table has a bad number: {element.get(f'{W}val')!r}") from None


def _rows(table: etree._Element, texts: dict[etree._Element, str]) -> tuple[tuple[str, ...], ...]:
    """The text of each row's cells, a cell merged down giving its top cell's text.
    ``texts``: the text of each paragraph in the cells, taken (and dropped) as they ended."""
    rows = []
    above: dict[int, str] = {}  # grid column where a cell of the row above starts -> its text
    for tr in table.iterchildren(_TR):
        here: dict[int, str] = {}
        cells = []
        column = _number(tr.find(f"{W}trPr/{W}gridBefore"), 0)
        for tc in tr.iterchildren(_TC):
            properties = tc.find(f"{W}tcPr")
            span = _number(None if properties is None else properties.find(f"{W}gridSpan"), 1)
            if span > MAX_GRID_SPAN:
                raise DocumentError(f"a table cell spans {span} columns")
            merge = None if properties is None else properties.find(f"{W}vMerge")
            if merge is not None and merge.get(f"{W}val", "continue") == "continue":
                if column not in above:
                    raise DocumentError("a table cell continues a merged cell that does not exist")
                text = above[column]
            else:
                text = "\n".join(texts.pop(p, "") for p in tc.iterchildren(_P))
            here[column] = text
            cells.append(text)
            column += max(span, 1)
        above = here
        rows.append(tuple(cells))
    return tuple(rows)
