"""The Word document: 导师简介 and 视频简介 present and within their 字 limits."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from intake.kernel.findings import Finding
from intake.kernel.policy import DocumentRules
from intake.parsers.blocks import Block
from intake.parsers.documents import DocumentError, find_section, read_partly
from intake.parsers.layout import blocks_of
from intake.parsers.spreadsheets import SPREADSHEET_SUFFIXES
from intake.parsers.text import count_zi
from intake.parsers.xlsx import MAX_ROWS

MENTOR, VIDEO = "导师简介", "视频简介"
LABELS = (MENTOR, VIDEO, "工匠简介", "课程简介", "项目简介", "作品简介")


def sections(path: Path) -> dict[str, str | None]:
    return _sections(blocks_of(path))  # parsed once, shared with classification


def _sections(blocks: list[Block]) -> dict[str, str | None]:
    return {label: find_section(blocks, label, LABELS) for label in (MENTOR, VIDEO)}


def read_partly_finding(rel: str, project: str | None) -> Finding:
    """A file read only up to the parsers' bounds (intake.parsers.word, .xlsx): judged on that part."""
    if PurePosixPath(rel).suffix.lower() in SPREADSHEET_SUFFIXES:
        return Finding(
            "document.read_partly",
            f"表格“{rel}”的行数超过 {MAX_ROWS} 行，超出系统的读取上限，只检查了前 {MAX_ROWS} 行，"
            "其后的内容没有检查。请删除表格中多余的行和与报送无关的内容后重新提交。",
            project, rel,
        )
    return Finding(
        "document.read_partly",
        f"文档“{rel}”中的段落或表格过多，超出系统的读取上限，只检查了文档的前一部分，其后的内容没有检查。"
        "请删除文档中多余的空段落、空行和与报送无关的内容，另存后重新提交。",
        project, rel,
    )


def check_document(path: Path, rel: str, project: str | None, rules: DocumentRules) -> list[Finding]:
    try:
        blocks = blocks_of(path)
    except DocumentError as err:
        return [Finding(
            "document.unreadable",
            f"文档“{rel}”无法打开（{err}）。请用 Word 另存为 .docx 格式后重新提交。",
            project, rel,
        )]
    found = _sections(blocks)
    findings = [read_partly_finding(rel, project)] if read_partly(blocks) else []
    for label, missing_code, long_code, limit in (
        (MENTOR, "document.mentor_intro_missing", "document.mentor_intro_too_long", rules.mentor_intro_max_chars),
        (VIDEO, "document.video_intro_missing", "document.video_intro_too_long", rules.video_intro_max_chars),
    ):
        text = found[label]
        if not text or not text.strip():
            findings.append(Finding(
                missing_code,
                f"文档“{rel}”中没有找到“{label}”（或其下没有内容）。"
                f"请在文档中加入标题“{label}”并在其后填写内容（不超过 {limit} 字）。",
                project, rel,
            ))
            continue
        count = count_zi(text)
        if count > limit:
            findings.append(Finding(
                long_code,
                f"文档“{rel}”中的“{label}”共 {count} 字，超过 {limit} 字的上限"
                f"（多 {count - limit} 字；按 Word“字数”统计）。请精简到 {limit} 字以内。",
                project, rel,
            ))
    return findings
