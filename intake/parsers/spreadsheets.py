"""Spreadsheets (.xlsx, .xls) and Word tables as rows of text, with row numbers.

Merged cells are filled with the value of their top-left cell, so a merged 题型
column still says 单选 on every row it spans. Row numbers are the ones the sender
sees in Excel (1-based), or the table row in Word.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import xlrd

from intake.parsers.ooxml import PackageError, PackageTooLarge, check_opc
from intake.parsers.xlsx import MAX_COLUMNS, MAX_ROWS, Grid, read_grids


class SheetError(Exception):
    """The file cannot be read as a spreadsheet."""


class SheetTooLarge(SheetError):
    """The spreadsheet is beyond what is read of one (intake.parsers.ooxml, .xlsx)."""


@dataclass(frozen=True)
class Sheet:
    name: str
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (row number, cells)
    partly: bool = False  # rows past the bounds (intake.parsers.xlsx) were not read


SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls"}


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value).strip()


def read_sheets(path: Path) -> list[Sheet]:
    """An Excel workbook's sheets (a Word file's tables are read as sheets by
    intake.parsers.layout.sheets_of, from the document's blocks read once)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix == ".xls":
        return _read_xls(path)
    raise SheetError(f"unsupported spreadsheet type {suffix}")


def _read_xlsx(path: Path) -> list[Sheet]:
    try:
        merges = check_opc(path)  # refuses merged ranges that would cover a whole sheet
        grids = read_grids(path, merges)
    except PackageTooLarge as err:
        raise SheetTooLarge(str(err)) from None
    except PackageError as err:
        raise SheetError(str(err)) from None
    except Exception as err:  # a sender's broken package: zipfile, zlib, lxml raise many kinds
        raise SheetError(f"{type(err).__name__}: {err}") from None
    return [_grid_sheet(grid) for grid in grids]


def _grid_sheet(grid: Grid) -> Sheet:
    if not grid.height:
        return Sheet(grid.name, (), grid.partly)
    rows = tuple(
        (r, tuple(cell_text(grid.values.get((r, c))) for c in range(1, grid.width + 1)))
        for r in range(1, grid.height + 1)
    )
    return Sheet(grid.name, rows, grid.partly)


def _read_xls(path: Path) -> list[Sheet]:
    try:
        try:
            book = xlrd.open_workbook(str(path), formatting_info=True)
        except NotImplementedError:
            book = xlrd.open_workbook(str(path))
        return _xls_sheets(book)
    except Exception as err:  # xlrd raises XLRDError, CompDocError, struct errors…
        raise SheetError(f"{type(err).__name__}: {err}") from None


def _xls_sheets(book) -> list[Sheet]:
    sheets = []
    for sheet in book.sheets():
        height, width = min(sheet.nrows, MAX_ROWS), min(sheet.ncols, MAX_COLUMNS)
        fill = {}
        for row_lo, row_hi, col_lo, col_hi in getattr(sheet, "merged_cells", []):
            if row_lo >= height or col_lo >= width:
                continue
            top_left = sheet.cell_value(row_lo, col_lo)
            # clipped to the cells read: a merge over the whole sheet is cheap
            for r in range(row_lo, min(row_hi, height)):
                for c in range(col_lo, min(col_hi, width)):
                    fill[(r, c)] = top_left
        rows = []
        for r in range(height):
            cells = tuple(cell_text(fill.get((r, c), sheet.cell_value(r, c))) for c in range(width))
            rows.append((r + 1, cells))
        sheets.append(Sheet(sheet.name, tuple(rows), sheet.nrows > MAX_ROWS))
    return sheets
