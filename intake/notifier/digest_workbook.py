"""The digest's workbook (XLSX, openpyxl): 项目 (every project of the database), 问题
(one row per finding) and 单位 (units against their quotas), each with an autofilter
so staff can filter by unit, code or severity. Times are Beijing time."""

from __future__ import annotations

import io

from openpyxl import Workbook

from intake.notifier.staff_sheet import beijing, write_table
from intake.notifier.digest_data import SEVERITY_NAMES, VERDICT_NAMES, Digest

FILE_NAMES = {"video": "视频", "document": "文档", "question_bank": "题库"}


def files_text(files: dict | None) -> str:
    """A project's files as one cell: 视频：path；文档：path；…"""
    return "；".join(f"{FILE_NAMES.get(kind, kind)}：{path}" for kind, path in (files or {}).items() if path)


def digest_workbook(digest: Digest) -> bytes:
    book = Workbook()
    projects = book.active
    assert projects is not None  # a new workbook has one sheet
    projects.title = "项目"
    write_table(projects, ("单位", "课程名称", "审核结论", "状态", "回执号", "收到时间（北京时间）", "文件"),
           ((p.unit or "单位未识别", p.course, VERDICT_NAMES.get(p.verdict, p.verdict), p.standing, p.receipt,
             beijing(p.received_at), files_text(p.files)) for p in digest.projects),
           widths=(24, 30, 10, 10, 16, 22, 60))
    findings = book.create_sheet("问题")
    write_table(findings, ("回执号", "单位", "项目", "代码", "级别", "说明", "路径"),
           ((f.receipt, f.unit or "单位未识别", f.project or "（整封邮件）", f.code, SEVERITY_NAMES.get(f.severity, f.severity),
             f.message, f.path or "") for f in digest.findings),
           widths=(16, 24, 30, 30, 8, 70, 40))
    units = book.create_sheet("单位")
    write_table(units, ("单位", "名额", "通过项目", "当前项目", "报送邮件", "情况"),
           ((u.name, u.quota, u.accepted, u.current, u.messages, u.status) for u in digest.units),
           widths=(30, 8, 10, 10, 10, 14))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()



