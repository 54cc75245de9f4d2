"""The header row of a question bank (题库) in the template of 附件6.

题型 | 题目内容 | 答案A … 答案F | 正确答案 | 解析 | 试题难度 | 来源
Headers are matched loosely (spaces, full-width letters, a '*' or a hint in brackets).
Finding the header tells a question bank from other sheets (classification) and where
its columns are (intake.validators.question_bank checks the rows below it).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from intake.parsers.spreadsheets import Sheet
from intake.parsers.text import clean

LETTERS = "ABCDEF"
COLUMN_ALIASES = {
    "type": {"题型", "试题类型", "题目类型", "类型"},
    "stem": {"题目内容", "题目", "试题内容", "题干", "试题"},
    "answer": {"正确答案", "标准答案", "参考答案"},
    "analysis": {"解析", "答案解析", "试题解析"},
    "difficulty": {"试题难度", "难度", "难度等级"},
    "source": {"来源", "试题来源", "出处"},
}
REQUIRED = ("type", "stem", "A", "B", "answer", "difficulty")
COLUMN_NAMES = {
    "type": "题型", "stem": "题目内容", "answer": "正确答案", "analysis": "解析",
    "difficulty": "试题难度", "source": "来源", **{x: f"答案{x}" for x in LETTERS},
}


@functools.lru_cache(maxsize=4096)
def header_key(text: str) -> str | None:
    """Which template column a header cell names, or None."""
    value = clean(text).upper()
    value = re.sub(r"[(（][^)）]*[)）]", "", value)  # '题型（单选/多选/判断）'
    value = re.sub(r"[\s*＊:：]", "", value)
    match = re.fullmatch(r"(?:答案|选项)([A-F])", value)
    if match:
        return match.group(1)
    for key, aliases in COLUMN_ALIASES.items():
        if value in aliases:
            return key
    return None


@dataclass
class Header:
    sheet: Sheet
    row_index: int  # index into sheet.rows
    columns: dict[str, int]  # key -> column index

    @property
    def missing(self) -> list[str]:
        return [COLUMN_NAMES[k] for k in REQUIRED if k not in self.columns]


def find_headers(sheets: list[Sheet]) -> list[Header]:
    """The best header row of each sheet that has one (searched in the first 15 rows)."""
    headers = []
    for sheet in sheets:
        best = None
        for index, (_, cells) in enumerate(sheet.rows[:15]):
            columns: dict[str, int] = {}
            for col, cell in enumerate(cells):
                key = header_key(cell)
                if key and key not in columns:
                    columns[key] = col
            if ("type" in columns or "answer" in columns) and len(columns) >= 3:
                if best is None or len(columns) > len(best.columns):
                    best = Header(sheet, index, columns)
        if best:
            headers.append(best)
    return headers


def looks_like_question_bank(sheets: list[Sheet]) -> bool:
    return bool(find_headers(sheets))
