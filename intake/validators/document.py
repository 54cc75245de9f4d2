"""The Word document: 导师简介 and 视频简介 present and within their 字 limits."""

from __future__ import annotations

from pathlib import Path

from intake.kernel.findings import Finding
from intake.kernel.policy import DocumentRules
from intake.parsers.documents import DocumentError, find_section
from intake.parsers.layout import blocks_of
from intake.parsers.text import count_zi

MENTOR, VIDEO = "导师简介", "视频简介"
LABELS = (MENTOR, VIDEO, "工匠简介", "课程简介", "项目简介", "作品简介")



def sections(path: Path) -> dict[str, str | None]:
    blocks = blocks_of(path)  # parsed once, shared with classification
    return {label: find_section(blocks, label, LABELS) for label in (MENTOR, VIDEO)}


def check_document(path: Path, rel: str, project: str | None, rules: DocumentRules) -> list[Finding]:
    try:
        found = sections(path)
    except DocumentError as err:
        return [Finding(
            "document.unreadable",
            f"文档“{rel}”无法打开（{err}）。请用 Word 另存为 .docx 格式后重新提交。",
            project, rel,
        )]
    findings = []
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
