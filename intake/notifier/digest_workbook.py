"""The digest's workbook (XLSX, openpyxl): 项目 (every project of the database), 问题
(one row per finding) and 单位 (units against their quotas), each with an autofilter
so staff can filter by unit, code or severity. Times are Beijing time."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from intake.kernel.report import BEIJING
from intake.notifier.digest_data import SEVERITY_NAMES, VERDICT_NAMES, Digest

FILE_NAMES = {"video": "视频", "document": "文档", "question_bank": "题库"}
HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")


def files_text(files: dict | None) -> str:
    """A project's files as one cell: 视频：path；文档：path；…"""
    return "；".join(f"{FILE_NAMES.get(kind, kind)}：{path}" for kind, path in (files or {}).items() if path)


def digest_workbook(digest: Digest) -> bytes:
    book = Workbook()
    projects = book.active
    assert projects is not None  # a new workbook has one sheet
    projects.title = "项目"
    _table(projects, ("单位", "课程名称", "审核结论", "状态", "回执号", "收到时间（北京时间）", "文件"),
           ((p.unit or "单位未识别", p.course, VERDICT_NAMES.get(p.verdict, p.verdict), p.standing, p.receipt,
             _beijing(p.received_at), files_text(p.files)) for p in digest.projects),
           widths=(24, 30, 10, 10, 16, 22, 60))
    findings = book.create_sheet("问题")
    _table(findings, ("回执号", "单位", "项目", "代码", "级别", "说明", "路径"),
           ((f.receipt, f.unit or "单位未识别", f.project or "（整封邮件）", f.code, SEVERITY_NAMES.get(f.severity, f.severity),
             f.message, f.path or "") for f in digest.findings),
           widths=(16, 24, 30, 30, 8, 70, 40))
    units = book.create_sheet("单位")
    _table(units, ("单位", "名额", "通过项目", "当前项目", "报送邮件", "情况"),
           ((u.name, u.quota, u.accepted, u.current, u.messages, u.status) for u in digest.units),
           widths=(30, 8, 10, 10, 10, 14))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _table(sheet: Worksheet, header: Sequence[str], rows: Iterable[Sequence[object]],
           widths: Sequence[int]) -> None:
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
    for row in rows:
        sheet.append([_cell(value) for value in row])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # a sender's text, never a formula
            elif isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            cell.alignment = Alignment(vertical="top", wrap_text=isinstance(cell.value, str) and len(cell.value) > 40)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(sheet.max_row, 2)}"  # staff filter by any column


def _beijing(moment: datetime | None) -> datetime | None:
    """A time as Excel keeps it (no zone): Beijing time, as the column header says."""
    return moment.astimezone(BEIJING).replace(tzinfo=None) if moment else None


def _cell(value: object) -> object:
    if isinstance(value, str):  # XLSX refuses control characters (a mangled header, say)
        return "".join(c for c in value if c in "\t\n\r" or ord(c) >= 32)
    return value
