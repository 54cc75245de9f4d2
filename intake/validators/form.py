"""The report form (附件5): present, stamped, its unit and its course list matched."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from intake.kernel.findings import Finding
from intake.parsers.documents import DocumentError, Paragraph, Table, read_partly
from intake.parsers.layout import (
    Material, Project, _row_is_form_header, blocks_of, has_form_words, sheets_of,
)
from intake.parsers.spreadsheets import SheetError
from intake.parsers.text import clean, squash, strip_numbering
from intake.validators.document import read_partly_finding

_UNIT_LABEL = re.compile(r"上报单位\s*(?:[(（]\s*盖章\s*[)）])?\s*[:：]\s*(.*)")
_NEXT_LABEL = re.compile(r"\s{2,}|\s*(?:联系人|联系电话|填报日期|日期)\s*[:：]")
_SKIP_COURSES = {"合计", "总计", "小计", "以下空白", "空", "无"}


@dataclass
class FormInfo:
    unit: str | None = None
    courses: list[str] = field(default_factory=list)
    editable: list[str] = field(default_factory=list)  # rel paths of forms read
    partly: list[str] = field(default_factory=list)  # … of those read only up to the bounds


def _unit_from_text(text: str) -> str | None:
    match = _UNIT_LABEL.search(clean(text))
    if not match:
        return None
    value = _NEXT_LABEL.split(match.group(1), maxsplit=1)[0].strip()
    return value or None


def _unit_from_rows(rows) -> str | None:
    for cells in rows:
        for c, cell in enumerate(cells):
            inline = _unit_from_text(cell)
            if inline:
                return inline
            if squash(cell) in ("上报单位", "上报单位盖章"):
                rest = [x for x in cells[c + 1:] if x.strip() and squash(x) != squash(cell)]
                if rest:
                    return clean(rest[0])
    return None


_NOTE_PREFIXES = ("注", "备注", "说明", "填表说明", "填报说明", "附注")


def _is_note_row(cells, value: str) -> bool:
    """A footnote under the table: '注：…', or one text merged across the whole row."""
    if value.startswith(_NOTE_PREFIXES):
        return True
    filled = [clean(c) for c in cells if clean(c)]
    return len(filled) >= 3 and len(set(filled)) == 1


def _courses_from_rows(rows) -> list[str]:
    courses: list[str] = []
    column = None
    for cells in rows:
        if column is None:
            if _row_is_form_header(cells):
                keys = [squash(c) for c in cells]
                column = next(i for i, k in enumerate(keys) if k.startswith("课程名称"))
            continue
        if column >= len(cells):
            continue
        value = clean(cells[column])
        if _row_is_form_header(cells) or _is_note_row(cells, value):
            continue
        if value and squash(value) not in _SKIP_COURSES and value not in courses:
            courses.append(value)
    return courses


def read_form(material: Material) -> FormInfo:
    """Unit and courses of one editable form; empty for a scan or an unreadable file."""
    path = material.file.path
    suffix = path.suffix.lower()
    info = FormInfo()
    try:
        if suffix in (".docx", ".doc", ".docm", ".wps"):
            blocks = blocks_of(path)
            for block in blocks:
                if isinstance(block, Paragraph) and not info.unit:
                    info.unit = _unit_from_text(block.text)
            tables = [b.rows for b in blocks if isinstance(b, Table)]
            partly = read_partly(blocks)
        elif suffix in (".xlsx", ".xlsm", ".xls"):
            sheets = sheets_of(path)
            tables = [tuple(cells for _, cells in sheet.rows) for sheet in sheets]
            partly = any(sheet.partly for sheet in sheets)
        else:
            return info
    except (DocumentError, SheetError):
        return info
    for rows in tables:
        info.unit = info.unit or _unit_from_rows(rows)
        for course in _courses_from_rows(rows):
            if course not in info.courses:
                info.courses.append(course)
    info.editable.append(material.rel)
    if partly:
        info.partly.append(material.rel)
    return info


def form_findings(forms: list[Material], scans: list[Material]) -> tuple[FormInfo, list[Finding]]:
    """Read every editable form; form.missing when there is neither a form nor its scan.

    ``forms`` are editable forms (Word, Excel); ``scans`` are every PDF or image
    outside the projects. The stamped scan is one named like a form, or one lying
    beside the editable form.
    """
    beside = {str(PurePosixPath(m.rel).parent) for m in forms}
    stamped = [s for s in scans if has_form_words(s.name)] or [
        s for s in scans if str(PurePosixPath(s.rel).parent) in beside
    ]
    if not forms and not stamped:
        return FormInfo(), [Finding(
            "form.missing",
            "材料中没有找到报送表（附件5：上报单位、联系人及课程名称等）。"
            "请按附件5填写报送表，加盖单位公章后，将盖章扫描件（PDF 或图片）和可编辑版（Word 或 Excel）"
            "与项目材料一并发送。",
        )]
    merged = FormInfo()
    for material in forms:
        info = read_form(material)
        merged.unit = merged.unit or info.unit
        merged.editable += info.editable
        merged.partly += info.partly
        merged.courses += [c for c in info.courses if c not in merged.courses]
    findings = [read_partly_finding(rel, None) for rel in merged.partly]
    if forms and not stamped:
        findings.append(Finding(
            "form.scan_missing",
            f"没有找到加盖单位公章的报送表扫描件（PDF 或图片）。请将盖章后的报送表扫描件与可编辑版"
            f"“{forms[0].name}”放在一起发送。",
            None, forms[0].rel,
        ))
    return merged, findings


# ---------------------------------------------------------------- courses ↔ projects

def _stems(project: Project) -> list[str]:
    return [squash(strip_numbering(PurePosixPath(m.name).stem)) for m in project.materials]


def match_courses(projects: list[Project], courses: list[str]) -> dict[int, str]:
    """Project index -> the form's course name it carries.

    Tolerant of white space, full/half width and punctuation: exact key first, then
    one name containing the other, then a material's file name carrying the course.
    """
    matched: dict[int, str] = {}
    keys = {i: squash(p.name) for i, p in enumerate(projects)}

    def free(i: int) -> bool:
        return i not in matched

    for course in courses:
        key = squash(course)
        if not key:
            continue
        exact = [i for i, k in keys.items() if free(i) and k == key]
        if len(exact) >= 1:
            matched[exact[0]] = course
            continue
        contained = [i for i, k in keys.items() if free(i) and k and (key in k or k in key)]
        if len(contained) == 1:
            matched[contained[0]] = course
            continue
        by_file = [i for i, p in enumerate(projects) if free(i) and any(key in s or (s and s in key) for s in _stems(p))]
        if len(by_file) == 1:
            matched[by_file[0]] = course
    # A project at the package root has no folder name of its own (materials attached
    # straight to the mail): the form's one remaining course is its name.
    unmatched_courses = [c for c in courses if c not in matched.values() and squash(c)]
    unmatched_projects = [i for i in range(len(projects)) if free(i)]
    if (len(unmatched_courses) == 1 and len(unmatched_projects) == 1
            and projects[unmatched_projects[0]].folder == ""):
        matched[unmatched_projects[0]] = unmatched_courses[0]
    return matched


def course_findings(projects: list[Project], courses: list[str], form_rel: str | None) -> tuple[list[str], list[Finding]]:
    """Rename matched projects to their course names; report what does not match.

    Returns the courses the form lists that no project carries, and the findings.
    """
    matched = match_courses(projects, courses)
    for index, course in matched.items():
        projects[index].name = course
    missing = [c for c in courses if c not in matched.values()]
    findings = [
        Finding(
            "form.course_not_in_package",
            f"报送表列有课程“{course}”，但材料中没有找到该课程的视频、文档或题库。"
            "请补发该课程的全部材料（建议每个课程单独一个文件夹，以课程名称命名），"
            "或核对报送表中的课程名称是否与文件夹名称一致。",
            course, form_rel,
        )
        for course in missing
    ]
    for index, project in enumerate(projects):
        if index not in matched:
            findings.append(Finding(
                "form.course_not_listed",
                f"材料中的“{project.name}”（文件夹“{project.folder or '根目录'}”）没有列在报送表中。"
                "如属报送课程，请在报送表中补充并重新盖章；如课程名称有出入，请统一文件夹名称与报送表。",
                project.name, project.folder or None,
            ))
    return missing, findings
