"""The innovation result's declaration (附件3) and its letters (附件1).

Fields are checked when the sender gives them, in a Word document or a sheet, in any
layout parsers.documents.find_section understands (heading, inline label, table row).
"""

from __future__ import annotations

import re

from intake.kernel.findings import Finding
from intake.kernel.policy import DeclarationRules
from intake.parsers.documents import Block, Paragraph, Table, find_section, read_partly
from intake.parsers.text import count_zi
from intake.validators.document import read_partly_finding

NAME, SUMMARY, BACKGROUND, CATEGORY, NEW_PRODUCTIVITY = "成果名称", "成果简介", "成果背景", "成果类别", "是否为新质生产力"
COMPLETER_LABELS = ("主要完成人", "成果完成人", "完成人")
NEW_PRODUCTIVITY_LABELS = ("是否为新质生产力", "是否属于新质生产力", "是否新质生产力")
LABELS = (NAME, SUMMARY, BACKGROUND, CATEGORY, *COMPLETER_LABELS, *NEW_PRODUCTIVITY_LABELS,
          "申报单位", "联系人", "联系电话", "成果简介（500字以内）")
_MARK = "☑✓√■●▣☒✔"


def looks_like_declaration(text: str) -> bool:
    return any(label in text for label in (NAME, SUMMARY, BACKGROUND))


def declaration_score(text: str) -> int:
    """How many of the declaration's fields a text holds."""
    return sum(label in text for label in (NAME, SUMMARY, BACKGROUND, CATEGORY, "完成人", "新质生产力"))


def _section(blocks: list[Block], *labels: str) -> str | None:
    for label in labels:
        found = find_section(blocks, label, LABELS)
        if found is not None:
            return found.strip()
    return None


def completers(text: str) -> list[str]:
    """Names in a completers field: split at 、，,;；/ where there are any (a name may be
    padded with spaces, 张  三); only a list without them is split at white space."""
    if re.search(r"[、，,;；/／\n]", text):
        names = [re.sub(r"\s+", "", n) for n in re.split(r"[、，,;；/／\n]+", text)]
    else:
        names = text.split()
    return [n for n in names if n and n not in ("等",)]


def completers_from_tables(blocks: list[Block]) -> int | None:
    """People listed one per row under a 姓名 column, if the declaration has such a table."""
    for block in blocks:
        if not isinstance(block, Table):
            continue
        for index, row in enumerate(block.rows):
            keys = [re.sub(r"\s", "", c) for c in row]
            if "姓名" in keys:
                column = keys.index("姓名")
                names = [r[column] for r in block.rows[index + 1:] if column < len(r) and r[column].strip()
                         and re.sub(r"\s", "", r[column]) != "姓名"]
                return len(names)
    return None


def chosen_category(text: str, categories: tuple[str, ...]) -> str | None:
    """The category chosen: the only one written, else the one ticked. Boxes sit before
    their choice (☑小发明 □小创造) or after it (小发明□ 小创造☑, 小发明（√）); which one a
    form uses is told by whether a box or a choice comes first."""
    present = [c for c in categories if c in text]
    if len(present) == 1:
        return present[0]
    if not present:
        return None
    first_choice = min(text.index(c) for c in present)
    first_box = re.search(rf"[{_MARK}□☐]", text)
    before = first_box is not None and first_box.start() < first_choice
    pattern = "[{marks}]\\s*{c}" if before else "{c}\\s*[（(]?\\s*[{marks}]"
    marked = [c for c in present if re.search(pattern.format(marks=_MARK, c=c), text)]
    if len(marked) == 1:
        return marked[0]
    # a tick drawn with a Wingdings symbol is lost in the text: the one choice without
    # its empty box is the ticked one
    unboxed = [c for c in present if not re.search(pattern.format(marks="□☐", c=c), text)]
    return unboxed[0] if not marked and len(unboxed) == 1 else None


_NEW_PRODUCTIVITY = re.compile(r"是否(?:为|属于)?新质生产力[^\n:：]{0,8}[:：]?\s*(?:[（(][^)）]*[)）])?\s*(\S+)")


def new_productivity_answered(blocks: list[Block]) -> bool:
    """是否为新质生产力 answered, however the label is worded (…成果, …范畴) or laid out."""
    if _section(blocks, *NEW_PRODUCTIVITY_LABELS):
        return True
    for block in blocks:
        lines = [block.text] if isinstance(block, Paragraph) else ["\t".join(r) for r in block.rows]
        for line in lines:
            match = _NEW_PRODUCTIVITY.search(line)
            if match and re.search(rf"[是否{_MARK}]", match.group(1)):
                return True
    return False


def check_declaration(blocks: list[Block], rel: str, project: str | None,
                      rules: DeclarationRules) -> list[Finding]:
    findings = [read_partly_finding(rel, project)] if read_partly(blocks) else []

    def add(code: str, message: str) -> None:
        findings.append(Finding(code, message, project, rel))

    name = _section(blocks, NAME)
    if name and count_zi(name) > rules.name_warn_over:
        add("declaration.name_too_long",
            f"“{rel}”中的成果名称共 {count_zi(name)} 字，建议 {rules.name_about} 字左右，"
            f"超过 {rules.name_warn_over} 字。请精简成果名称。")
    summary = _section(blocks, SUMMARY)
    if summary and count_zi(summary) > rules.summary_max:
        add("declaration.summary_too_long",
            f"“{rel}”中的成果简介共 {count_zi(summary)} 字，超过 {rules.summary_max} 字的上限"
            f"（多 {count_zi(summary) - rules.summary_max} 字）。请精简到 {rules.summary_max} 字以内。")
    background = _section(blocks, BACKGROUND)
    if background and count_zi(background) > rules.background_warn_over:
        add("declaration.background_too_long",
            f"“{rel}”中的成果背景共 {count_zi(background)} 字，要求 {rules.background_about} 字左右，"
            f"超过 {rules.background_warn_over} 字。请精简成果背景。")
    people = _section(blocks, *COMPLETER_LABELS)
    count = completers_from_tables(blocks)
    if count is None and people:
        count = len(completers(people))
    if count and count > rules.max_completers:
        add("declaration.too_many_completers",
            f"“{rel}”中列出完成人 {count} 名，每项成果最多 {rules.max_completers} 名。"
            f"请保留主要完成人，删减到 {rules.max_completers} 名以内。")
    category = _section(blocks, CATEGORY)
    if category is not None and chosen_category(category, rules.categories) is None:
        add("declaration.bad_category",
            f"“{rel}”中的成果类别“{category[:30]}”无效。请从{'、'.join(rules.categories)}中选择一项填写。")
    if name is not None or summary is not None:  # a declaration: the question must be answered
        if not new_productivity_answered(blocks):
            add("declaration.new_productivity_missing",
                f"“{rel}”中没有填写“是否为新质生产力”。请在申报表中填写“是”或“否”。")
    return findings
