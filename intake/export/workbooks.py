"""The export's workbooks (openpyxl): 题库汇总.xlsx, every exported project's questions in
the 附件6 columns with unit and course; 项目索引.xlsx, one row per project (项目) and
each unit against its quota (单位汇总). Times are Beijing time."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

from intake.notifier.staff_sheet import beijing, write_table
from intake.parsers.layout import sheets_of
from intake.parsers.question_bank_header import COLUMN_NAMES, LETTERS, find_headers
from intake.parsers.spreadsheets import SheetError
from intake.parsers.text import clean

BANK_KEYS = ("type", "stem", *LETTERS, "answer", "analysis", "difficulty", "source")
BANK_HEADER = ("单位", "课程名称", *(COLUMN_NAMES[key] for key in BANK_KEYS))


@dataclass
class IndexRow:
    unit: str
    course: str
    completers: str
    folder: str  # relative to DIR
    files: str  # the names in the folder
    receipt: str
    received_at: datetime | None
    sizes: dict[str, int]  # kind -> bytes
    video_seconds: float | None


@dataclass
class UnitRow:
    unit: str
    quota: int | None
    exported: int


def questions(path: Path) -> list[tuple[str, ...]]:
    """The question rows of a bank in the 附件6 columns (every sheet with a full header;
    empty rows skipped); none when it cannot be read."""
    try:
        sheets = sheets_of(path)
    except (SheetError, OSError, ValueError):
        return []
    rows = []
    for header in find_headers(sheets):
        if header.missing:
            continue
        for _, cells in header.sheet.rows[header.row_index + 1:]:
            if not any(c.strip() for c in cells):
                continue
            rows.append(tuple(clean(cells[col]) if (col := header.columns.get(key)) is not None and col < len(cells)
                              else "" for key in BANK_KEYS))
    return rows


def merged_bank(banks: Iterable[tuple[str, str, list[tuple[str, ...]]]]) -> bytes:
    """(unit, course, question rows) -> the merged bank's bytes."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = "题库汇总"
    write_table(sheet, BANK_HEADER, ((unit, course, *row) for unit, course, rows in banks for row in rows),
           widths=(24, 30, 8, 50, *(18,) * len(LETTERS), 10, 30, 10, 12))
    return _bytes(book)


def index_workbook(rows: list[IndexRow], units: list[UnitRow]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "项目"
    write_table(sheet, ("单位", "课程名称", "完成人", "文件夹", "文件", "回执号", "收到时间（北京时间）",
                   "视频大小（字节）", "文档大小（字节）", "题库大小（字节）", "视频时长（秒）"),
           ((r.unit, r.course, r.completers, r.folder, r.files, r.receipt, beijing(r.received_at),
             r.sizes.get("video"), r.sizes.get("document"), r.sizes.get("question_bank"),
             round(r.video_seconds, 1) if r.video_seconds is not None else None) for r in rows),
           widths=(24, 30, 20, 40, 40, 16, 22, 14, 14, 14, 12))
    summary = book.create_sheet("单位汇总")
    write_table(summary, ("单位", "名额", "导出项目数", "情况"),
           ((u.unit, u.quota, u.exported, quota_status(u.quota, u.exported)) for u in units), widths=(30, 8, 12, 16))
    return _bytes(book)


def quota_status(quota: int | None, exported: int) -> str:
    if quota is None:
        return "未登记名额"
    if exported > quota:
        return f"超出名额 {exported - quota} 个"
    if exported < quota:
        return f"尚缺 {quota - exported} 个"
    return "已报满"








def _bytes(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
