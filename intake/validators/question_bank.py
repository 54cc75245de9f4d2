"""The question bank (题库) in the template of 附件6.

题型 | 题目内容 | 答案A … 答案F | 正确答案 | 解析 | 试题难度 | 来源
The header row is found by intake.parsers.question_bank_header (matched loosely);
every row below it is checked and every bad row is named by its row number.
"""

from __future__ import annotations

import re
from pathlib import Path

from intake.kernel.findings import Finding
from intake.kernel.policy import QuestionBankRules
from intake.parsers.layout import sheets_of
from intake.parsers.question_bank_header import LETTERS, find_headers
from intake.parsers.spreadsheets import SheetError, SheetTooLarge
from intake.parsers.text import clean
from intake.validators.document import read_partly_finding


TYPES = {
    "单选": "单选", "单选题": "单选", "单项选择": "单选", "单项选择题": "单选",
    "多选": "多选", "多选题": "多选", "多项选择": "多选", "多项选择题": "多选",
    "判断": "判断", "判断题": "判断",
}
TRUE_FALSE = {"对", "错", "正确", "错误", "√", "×", "✓", "✗", "✔", "✘"}
DIFFICULTIES = {"初级", "中级", "高级"}


def _answer_letters(text: str) -> list[str] | None:
    """'AC', 'A,C', 'A、C', 'a c' -> ['A', 'C']; None when something else is in there."""
    value = re.sub(r"[\s,，、;；/\\|和及与]", "", clean(text).upper())
    if not value or any(ch not in LETTERS for ch in value):
        return None
    return sorted(set(value), key=value.index)


def check_row(cells: tuple[str, ...], columns: dict[str, int]) -> list[str]:
    """The problems of one question row, in Chinese; empty when it is valid."""
    def get(key: str) -> str:
        col = columns.get(key)
        return clean(cells[col]) if col is not None and col < len(cells) else ""

    problems = []
    raw_type = re.sub(r"\s", "", get("type"))
    kind = TYPES.get(raw_type)
    if kind is None:
        problems.append(f"题型“{raw_type}”无效，应为单选、多选或判断" if raw_type else "题型为空，应为单选、多选或判断")
    if not get("stem"):
        problems.append("题目内容为空")
    options = [x for x in LETTERS if get(x)]
    answer = get("answer")
    if kind == "单选":
        if len(options) < 2:
            problems.append(f"单选题至少需要 2 个选项，现有 {len(options)} 个")
        letters = _answer_letters(answer)
        if not letters or len(letters) != 1:
            problems.append(f"单选题的正确答案应为一个选项字母，现为“{answer}”" if answer else "正确答案为空")
        elif letters[0] not in options:
            problems.append(f"正确答案“{letters[0]}”对应的选项为空")
    elif kind == "多选":
        if len(options) < 2:
            problems.append(f"多选题至少需要 2 个选项，现有 {len(options)} 个")
        letters = _answer_letters(answer)
        if not letters or len(letters) < 2:
            problems.append(f"多选题的正确答案应为两个或以上选项字母（如 AC），现为“{answer}”" if answer else "正确答案为空")
        else:
            absent = [x for x in letters if x not in options]
            if absent:
                problems.append(f"正确答案中的“{''.join(absent)}”对应的选项为空")
    elif kind == "判断":
        if options:
            problems.append(f"判断题不应填写选项（答案{'、答案'.join(options)} 应为空）")
        if answer not in TRUE_FALSE:
            problems.append(f"判断题的正确答案应为“对”或“错”，现为“{answer}”" if answer else "正确答案为空")
    difficulty = re.sub(r"\s", "", get("difficulty"))
    if difficulty not in DIFFICULTIES:
        problems.append(f"试题难度“{difficulty}”无效，应为初级、中级或高级" if difficulty else "试题难度为空，应为初级、中级或高级")
    return problems


def check_question_bank(path: Path, rel: str, project: str | None, rules: QuestionBankRules) -> list[Finding]:
    def finding(code: str, message: str) -> Finding:
        return Finding(code, message, project, rel)

    try:
        sheets = sheets_of(path)  # parsed once, shared with classification
    except SheetTooLarge as err:
        return [finding("question_bank.unreadable",
                        f"题库“{rel}”内容过多，无法读取（{err}）。请删除与题库无关的工作表、行和文字，"
                        "只保留按附件6模板填写的题库，另存后重新提交。")]
    except SheetError as err:
        return [finding("question_bank.unreadable",
                        f"题库“{rel}”无法打开（{err}）。请用 Excel 另存为 .xlsx 格式后重新提交。")]
    # judged on what was read, and the sender told so
    partly = [read_partly_finding(rel, project)] if any(sheet.partly for sheet in sheets) else []
    headers = find_headers(sheets)
    complete = [h for h in headers if not h.missing]
    if not complete:
        if headers:
            missing = "、".join(headers[0].missing)
            why = f"缺少列：{missing}"
        else:
            why = "没有找到表头"
        return partly + [finding(
            "question_bank.bad_header",
            f"题库“{rel}”的表头不符合附件6模板（{why}）。请使用附件6模板，表头依次为：题型、题目内容、"
            "答案A至答案F、正确答案、解析、试题难度、来源。",
        )]
    findings, valid, invalid = partly, 0, 0
    for header in complete:
        for number, cells in header.sheet.rows[header.row_index + 1:]:
            if not any(c.strip() for c in cells):
                continue  # empty rows are ignored
            problems = check_row(cells, header.columns)
            if problems:
                invalid += 1
                where = f"工作表“{header.sheet.name}”" if len(complete) > 1 else ""
                findings.append(finding(
                    "question_bank.invalid_question",
                    f"题库“{rel}”{where}第 {number} 行：{'；'.join(problems)}。请按附件6模板修改该行。",
                ))
            else:
                valid += 1
    if valid < rules.min_questions:
        extra = f"（另有 {invalid} 道格式有误，见逐行说明）" if invalid else ""
        findings.append(finding(
            "question_bank.too_few",
            f"题库“{rel}”中有效试题 {valid} 道，少于要求的 {rules.min_questions} 道{extra}。"
            f"请补足到至少 {rules.min_questions} 道符合模板的试题。",
        ))
    return findings
