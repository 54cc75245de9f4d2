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

from intake.parsers.documents import DocumentError, Table, check_opc, read_blocks


class SheetError(Exception):
    """The file cannot be read as a spreadsheet."""


@dataclass(frozen=True)
class Sheet:
    name: str
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (row number, cells)


SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
MAX_ROWS = 20000  # far more than any question bank; guards against huge sheets


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
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix == ".xls":
        return _read_xls(path)
    if suffix in (".docx", ".doc"):
        try:
            blocks = read_blocks(path)
        except DocumentError as err:
            raise SheetError(str(err)) from None
        return [
            Sheet(f"表格{n}", tuple((i + 1, row) for i, row in enumerate(block.rows)))
            for n, block in enumerate((b for b in blocks if isinstance(b, Table)), start=1)
        ]
    raise SheetError(f"unsupported spreadsheet type {suffix}")


def _read_xlsx(path: Path) -> list[Sheet]:
    import openpyxl  # ~100 ms to import: paid only when a .xlsx is read
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        check_opc(path)  # refuses merged ranges openpyxl would expand for hours
        workbook = openpyxl.load_workbook(str(path), data_only=True)
        return _xlsx_sheets(workbook)
    except (DocumentError, InvalidFileException, KeyError, ValueError, OSError) as err:
        raise SheetError(str(err)) from None
    except Exception as err:  # broken XML inside the package
        raise SheetError(f"{type(err).__name__}: {err}") from None


def _xlsx_sheets(workbook) -> list[Sheet]:
    sheets = []
    for worksheet in workbook.worksheets:
        fill = {}
        for merged in worksheet.merged_cells.ranges:
            top_left = worksheet.cell(merged.min_row, merged.min_col).value
            for row in range(merged.min_row, merged.max_row + 1):
                for col in range(merged.min_col, merged.max_col + 1):
                    fill[(row, col)] = top_left
        rows = []
        for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS:
                break
            cells = tuple(
                cell_text(fill.get((number, col), value))
                for col, value in enumerate(row, start=1)
            )
            rows.append((number, cells))
        sheets.append(Sheet(worksheet.title, tuple(rows)))
    workbook.close()
    return sheets


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
        fill = {}
        for row_lo, row_hi, col_lo, col_hi in getattr(sheet, "merged_cells", []):
            if row_lo >= sheet.nrows or col_lo >= sheet.ncols:
                continue
            top_left = sheet.cell_value(row_lo, col_lo)
            # clipped to the cells that exist: a merge over the whole sheet is cheap
            for r in range(row_lo, min(row_hi, sheet.nrows, MAX_ROWS)):
                for c in range(col_lo, min(col_hi, sheet.ncols)):
                    fill[(r, c)] = top_left
        rows = []
        for r in range(min(sheet.nrows, MAX_ROWS)):
            cells = tuple(cell_text(fill.get((r, c), sheet.cell_value(r, c))) for c in range(sheet.ncols))
            rows.append((r + 1, cells))
        sheets.append(Sheet(sheet.name, tuple(rows)))
    return sheets
