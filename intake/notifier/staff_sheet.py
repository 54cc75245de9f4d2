"""Workbooks staff open (the digest's, the export's index and question bank): one look for
every table, and cells that Excel accepts whatever a sender wrote."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from intake.kernel.report import BEIJING

HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")
CELL_MAX = 32767  # characters an XLSX cell holds


def write_table(sheet: Worksheet, header: Sequence[str], rows: Iterable[Sequence[object]],
                widths: Sequence[int]) -> None:
    """A bold header row, the rows below it (never a formula), frozen and filterable."""
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
    for row in rows:
        sheet.append([cell_value(value) for value in row])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # a sender's text, never a formula
            elif isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            cell.alignment = Alignment(vertical="top", wrap_text=isinstance(cell.value, str) and len(cell.value) > 40)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(sheet.max_row, 2)}"  # staff filter by any column


def cell_value(value: object) -> object:
    if isinstance(value, str):  # XLSX refuses control characters (a mangled header, say)
        return "".join(c for c in value if c in "\t\n\r" or ord(c) >= 32)[:CELL_MAX]
    return value


def beijing(moment: datetime | None) -> datetime | None:
    """A time as Excel keeps it (no zone): Beijing time, as the column header says."""
    return moment.astimezone(BEIJING).replace(tzinfo=None) if moment else None
