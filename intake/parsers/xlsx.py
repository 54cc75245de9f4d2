""".xlsx workbooks read as streams, within bounds.

openpyxl builds every cell of a sheet's extent: a 2 KB workbook holding cells A1, XFD1
and A1048576 grew to 4.4 GiB in a minute. Even read-only, it reads the whole
shared-strings table first (495 MB of it in an 11.6 MB file: 820 MiB) and builds each
row whole before it can skip it. Here the workbook, its shared strings and its sheets
are read by intake.parsers.ooxml's pull parser: only the first MAX_ROWS rows and
MAX_COLUMNS columns of the first MAX_SHEETS sheets, never what a sheet declares of its
own size, and every part under a budget of elements and bytes. A question bank is a
few hundred rows of 12 columns; a form or a declaration less.

Cell values are what openpyxl gives with data_only: numbers, text, booleans, the cached
value of a formula, dates where the cell's number format is a date (openpyxl's
stylesheet reader decides that, on a styles part of bounded size).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lxml import etree
from openpyxl.styles.stylesheet import Stylesheet
from openpyxl.utils.cell import coordinate_to_tuple
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel, from_ISO8601

from intake.parsers.ooxml import (
    Merge, PackageError, PackageTooLarge, XmlBudget, elements, forget, main_part, related, relationships, root_tag,
)

MAX_ROWS = 5_000  # ten times the largest real question bank
MAX_COLUMNS = 64  # the 附件6 template has 12
MAX_SHEETS = 32
MAX_SHARED_STRINGS = 200_000  # a 5,000-question bank needs about 60,000
MAX_SHARED_CHARS = 10_000_000
MAX_STRING_CHARS = 32_767  # what Excel holds in a cell
MAX_STYLES_BYTES = 4 << 20  # a bloated styles part beyond this only loses the dates
LOOK_BEYOND = 20_000  # elements read past MAX_ROWS to tell whether anything is left unread
SHEETS_ELEMENTS, SHEETS_BYTES = 1_000_000, 64 << 20  # all sheets of a workbook together
STRINGS_ELEMENTS, STRINGS_BYTES = 1_500_000, 64 << 20  # the shared strings (rich text: ~10 a string)

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_ROW, _C, _V, _IS, _T, _RUN, _SI = (f"{NS}{t}" for t in ("row", "c", "v", "is", "t", "r", "si"))


@dataclass
class Grid:
    """One sheet as read: values by (row, column), 1-based, within the bounds."""

    name: str
    values: dict[tuple[int, int], object] = field(default_factory=dict)
    height: int = 0
    width: int = 0
    partly: bool = False  # a value lies beyond MAX_ROWS, or the budget ran out


@dataclass
class _Strings:
    items: list[str]
    trimmed: bool


@dataclass
class _Book:
    strings: _Strings
    dates: set[int]
    durations: set[int]
    epoch: datetime


def read_grids(path: Path, merges: dict[str, list[Merge]]) -> list[Grid]:
    """The sheets of a workbook (chart sheets left out), in the workbook's order.

    ``merges``: the merged ranges of each sheet part (intake.parsers.ooxml.check_opc).
    """
    with zipfile.ZipFile(path) as package:
        main = main_part(package, "xl/workbook.xml")
        epoch, sheets = _workbook(package, main)
        targets = {r.id: r for r in relationships(package, main)}
        styles = related(package, main, "styles")
        dates, durations = _date_styles(package, styles) if styles else (set(), set())
        strings = related(package, main, "sharedStrings")
        book = _Book(_shared_strings(package, strings) if strings else _Strings([], False),
                     dates, durations, epoch)
        budget = XmlBudget(SHEETS_ELEMENTS, SHEETS_BYTES)  # all sheets together
        grids = []
        for name, rel_id in sheets:
            target = targets.get(rel_id)
            if target is None or not target.type.endswith("/worksheet") or target.target not in package.NameToInfo:
                continue  # a chart sheet, or a sheet whose part is missing
            grids.append(_sheet(package, target.target, name, book, budget, merges.get(target.target, [])))
    return grids


def _workbook(package: zipfile.ZipFile, main: str) -> tuple[datetime, list[tuple[str, str]]]:
    """The date system and (name, relationship id) of the first MAX_SHEETS sheets."""
    epoch, sheets = CALENDAR_WINDOWS_1900, []
    for element in elements(package, main, XmlBudget(100_000, 16 << 20)):
        if root_tag(element) != f"{NS}workbook":
            raise PackageError("not an Excel workbook (no workbook element in its main part)")
        tag = element.tag
        if tag == f"{NS}workbookPr" and element.get("date1904") in ("1", "true"):
            epoch = CALENDAR_MAC_1904
        elif tag == f"{NS}sheet":
            sheets.append((element.get("name") or "", element.get(_R_ID) or ""))
        if tag == f"{NS}sheets" or len(sheets) >= MAX_SHEETS:
            break  # what follows (defined names, pivot caches …) is not needed
        forget(element)
    return epoch, sheets


def _date_styles(package: zipfile.ZipFile, part: str) -> tuple[set[int], set[int]]:
    """The cell styles whose number format is a date, and those of them that are durations."""
    if package.getinfo(part).file_size > MAX_STYLES_BYTES:
        return set(), set()
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
        stylesheet = Stylesheet.from_tree(etree.fromstring(package.read(part), parser))
        return set(stylesheet.date_formats), set(stylesheet.timedelta_formats)
    except Exception:  # openpyxl's descriptors raise many kinds; a broken styles part only loses the dates
        return set(), set()


def _shared_strings(package: zipfile.ZipFile, part: str) -> _Strings:
    items: list[str] = []
    chars = 0
    budget = XmlBudget(STRINGS_ELEMENTS, STRINGS_BYTES)
    text = _Text()
    for element in elements(package, part, budget):
        if element.tag == _SI:
            items.append(text.take().replace("x005F_", ""))  # as openpyxl reads it
            chars += len(items[-1])
            forget(element)
            if len(items) >= MAX_SHARED_STRINGS or chars > MAX_SHARED_CHARS:
                return _Strings(items, True)
        elif not text.add(element):
            forget(element)
    return _Strings(items, budget.spent)


class _Text:
    """The text of the string being read (shared, or inline in a cell): its plain text and
    the text of its rich-text runs, taken as each ends and then dropped, so a string of a
    million runs holds no more than its text, cut at Excel's own 32,767 characters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def add(self, element: etree._Element) -> bool:
        """Take ``element`` if it is part of a string (dropping it); False if it is not."""
        parent = element.getparent()
        if parent is None:
            return False
        if parent.tag == _RUN:
            holder = parent.getparent()
            if holder is None or holder.tag not in (_SI, _IS):
                return False
            if element.tag == _T:
                self._append(element.text or "")
                forget(element)
            return True  # run properties stay until the run is dropped
        if parent.tag not in (_SI, _IS):
            return False
        if element.tag == _T:
            self._append(element.text or "")
        forget(element)  # a plain text, a run, a phonetic guide (not part of the text)
        return True

    def _append(self, piece: str) -> None:
        room = MAX_STRING_CHARS - self.size
        if room > 0:
            self.parts.append(piece[:room])
            self.size += min(len(piece), room)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text


def _sheet(package: zipfile.ZipFile, member: str, name: str, book: _Book, budget: XmlBudget,
           merges: list[Merge]) -> Grid:
    grid = Grid(name)
    text = _Text()
    row_element, row, column = None, 0, 0
    beyond = -1  # elements still to look at past MAX_ROWS; -1 while within it
    for element in elements(package, member, budget):
        tag = element.tag
        if tag == _C:
            parent = element.getparent()
            if parent is not row_element:
                row_element, row, column = parent, _row_number(parent, row), 0
            reference = element.get("r")
            cell_row, column = _coordinate(reference) if reference else (row, column + 1)
            inline = text.take() if element.find(_IS) is not None else None
            if cell_row > MAX_ROWS:
                if inline or element.findtext(_V):
                    grid.partly = True
                    break
                beyond = LOOK_BEYOND if beyond < 0 else beyond
            elif column <= MAX_COLUMNS:
                grid.values[(cell_row, column)] = _value(element, book, inline)
                grid.height, grid.width = max(grid.height, cell_row), max(grid.width, column)
            forget(element)
        elif tag == _ROW:
            if element is not row_element:
                row = _row_number(element, row)  # a row without cells
            row_element = None
            if row > MAX_ROWS and beyond < 0:
                beyond = LOOK_BEYOND
            forget(element)
        elif not text.add(element) and element.getparent() is not None and element.getparent().tag != _C:
            forget(element)  # column widths, views …: read past and dropped
        if beyond >= 0:
            beyond -= 1
            if beyond < 0:
                break  # nothing but empty rows so far past the bound: taken as the end
    grid.partly = grid.partly or budget.spent
    _fill_merges(grid, merges)
    return grid


def _row_number(row: etree._Element, previous: int) -> int:
    number = row.get("r")
    if not number:
        return previous + 1
    try:
        return int(float(number))
    except (ValueError, OverflowError):
        raise PackageError(f"a row is numbered {number[:40]!r}") from None


def _coordinate(reference: str) -> tuple[int, int]:
    try:
        return coordinate_to_tuple(reference)
    except (ValueError, TypeError):
        raise PackageError(f"a cell is named {reference[:40]!r}") from None


def _value(cell: etree._Element, book: _Book, inline: str | None) -> object:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return inline
    value = cell.findtext(_V) or None
    if value is None:
        return None
    try:
        if kind == "n":
            number = float(value) if any(x in value for x in ".Ee") else int(value)
            style = int(cell.get("s") or 0)
            if style not in book.dates:
                return number
            try:
                return from_excel(number, book.epoch, timedelta=style in book.durations)
            except (OverflowError, ValueError):
                return "#VALUE!"  # as openpyxl: a date outside what dates hold
        if kind == "s":
            return _shared(book.strings, int(value))
        if kind == "b":
            return bool(int(value))
        if kind == "d":
            return from_ISO8601(value)
    except (ValueError, OverflowError):
        raise PackageError(f"a cell holds {value[:40]!r} where a {kind[:10]!r} value belongs") from None
    return value  # "str" (a formula's text) and "e" (an error such as #N/A)


def _shared(strings: _Strings, index: int) -> str:
    if 0 <= index < len(strings.items):
        return strings.items[index]
    if strings.trimmed:
        raise PackageTooLarge(f"工作簿中的文字超过 {MAX_SHARED_STRINGS // 10_000} 万条或 "
                              f"{MAX_SHARED_CHARS // 10_000} 万字，超出系统的读取上限")
    raise PackageError(f"a cell refers to shared string {index}, which does not exist")


def _fill_merges(grid: Grid, merges: list[Merge]) -> None:
    """A merged range shows its top-left value in every cell (clipped to the bounds)."""
    for top, left, bottom, right in merges:
        if top > MAX_ROWS or left > MAX_COLUMNS:
            continue
        value = grid.values.get((top, left))
        bottom, right = min(bottom, MAX_ROWS), min(right, MAX_COLUMNS)
        for r in range(top, bottom + 1):
            for c in range(left, right + 1):
                grid.values[(r, c)] = value
        grid.height, grid.width = max(grid.height, bottom), max(grid.width, right)
