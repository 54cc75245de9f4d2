"""The innovation result's declaration (附件3) and its letters (附件1).

Fields are checked when the sender gives them, in a Word document or a sheet, in any
layout parsers.documents.find_section understands (heading, inline label, table row).
"""

from __future__ import annotations

import re

from intake.findings import Finding
from intake.policy import DeclarationRules
from parsers.documents import Block, find_section
from parsers.text import count_zi

NAME, SUMMARY, BACKGROUND, CATEGORY, NEW_PRODUCTIVITY = "成果名称", "成果简介", "成果背景", "成果类别", "是否为新质生产力"
COMPLETER_LABELS = ("主要完成人", "成果完成人", "完成人")
NEW_PRODUCTIVITY_LABELS = ("是否为新质生产力", "是否属于新质生产力", "是否新质生产力")
LABELS = (NAME, SUMMARY, BACKGROUND, CATEGORY, *COMPLETER_LABELS, *NEW_PRODUCTIVITY_LABELS,
          "申报单位", "联系人", "联系电话", "成果简介（500字以内）")
_MARK = "☑✓√■●▣☒✔"


def looks_like_declaration(text: str) -> bool:
    return any(label in text for label in (NAME, SUMMARY, BACKGROUND))


def _section(blocks: list[Block], *labels: str) -> str | None:
    for label in labels:
        found = find_section(blocks, label, LABELS)
        if found is not None:
            return found.strip()
    return None


def completers(text: str) -> list[str]:
    names = re.split(r"[、，,;；/\s]+", text)
    return [n for n in names if n and n not in ("等",)]


def chosen_category(text: str, categories: tuple[str, ...]) -> str | None:
    present = [c for c in categories if c in text]
    if len(present) == 1:
        return present[0]
    marked = [c for c in categories if re.search(rf"[{_MARK}]\s*{c}", text)]
    return marked[0] if len(marked) == 1 else None


def check_declaration(blocks: list[Block], rel: str, project: str | None,
                      rules: DeclarationRules) -> list[Finding]:
    findings = []

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
    if people and len(completers(people)) > rules.max_completers:
        add("declaration.too_many_completers",
            f"“{rel}”中列出完成人 {len(completers(people))} 名，每项成果最多 {rules.max_completers} 名。"
            f"请保留主要完成人，删减到 {rules.max_completers} 名以内。")
    category = _section(blocks, CATEGORY)
    if category is not None and chosen_category(category, rules.categories) is None:
        add("declaration.bad_category",
            f"“{rel}”中的成果类别“{category[:30]}”无效。请从{'、'.join(rules.categories)}中选择一项填写。")
    if name is not None or summary is not None:  # a declaration: the question must be answered
        answer = _section(blocks, *NEW_PRODUCTIVITY_LABELS)
        if not answer:
            add("declaration.new_productivity_missing",
                f"“{rel}”中没有填写“是否为新质生产力”。请在申报表中填写“是”或“否”。")
    return findings
