"""intake.validators.question_bank on real .xlsx (openpyxl), .xls (LibreOffice) and .docx tables."""

from __future__ import annotations

import docx
import openpyxl
import pytest

from intake.kernel.policy import load_policy
from intake.samples import QB_HEADER, good_questions, make_question_bank
from tests.conftest import soffice_convert
from intake.parsers.question_bank_header import header_key
from intake.validators.question_bank import check_question_bank, check_row

RULES = load_policy().question_bank


def bank_findings(path):
    return check_question_bank(path, path.name, "p", RULES)


def bank_codes(path):
    return [f.code for f in bank_findings(path)]


def test_twenty_good_questions_pass(tmp_path):
    assert bank_codes(make_question_bank(tmp_path / "q.xlsx")) == []


def test_nineteen_is_too_few(tmp_path):
    findings = bank_findings(make_question_bank(tmp_path / "q.xlsx", good_questions(19)))
    assert [f.code for f in findings] == ["question_bank.too_few"]
    assert "19 道" in findings[0].message and "20 道" in findings[0].message


def test_empty_rows_are_ignored(tmp_path):
    rows = good_questions(20)
    rows.insert(5, [""] * 12)
    rows.insert(10, [None] * 12)
    assert bank_codes(make_question_bank(tmp_path / "q.xlsx", rows)) == []


@pytest.mark.parametrize("variant", ["答案 A", "答案Ａ", " 答案a ", "*答案A", "选项A"])
def test_header_variants(variant):
    assert header_key(variant) == "A"


def test_header_with_spaces_and_full_width_letters_passes(tmp_path):
    header = [h.replace("答案", "答案 ") if h.startswith("答案") else h for h in QB_HEADER]
    header[3] = "答案Ｂ"
    header[0] = "题 型"
    assert bank_codes(make_question_bank(tmp_path / "q.xlsx", header=header)) == []


def test_bad_header_names_the_missing_columns(tmp_path):
    header = [h for h in QB_HEADER if h != "试题难度"]
    rows = [r[:10] + r[11:] for r in good_questions()]
    findings = bank_findings(make_question_bank(tmp_path / "q.xlsx", rows, header=header))
    assert [f.code for f in findings] == ["question_bank.bad_header"]
    assert "试题难度" in findings[0].message


def test_sheet_without_any_header(tmp_path):
    path = tmp_path / "q.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["随便", "写点", "什么"])
    workbook.save(path)
    assert bank_codes(path) == ["question_bank.bad_header"]


COLUMNS = {"type": 0, "stem": 1, **{x: 2 + i for i, x in enumerate("ABCDEF")}, "answer": 8, "difficulty": 10}


def row(kind, options, answer, difficulty="初级", stem="题目"):
    cells = [kind, stem] + (list(options) + [""] * 6)[:6] + [answer, "", difficulty, ""]
    return tuple(cells)


@pytest.mark.parametrize("answer", ["AC", "A,C", "A、C", "A，C", "a c", "Ａ；Ｃ"])
def test_multiple_choice_answer_spellings(answer):
    assert check_row(row("多选", "甲乙丙", answer), COLUMNS) == []


@pytest.mark.parametrize("cells,problem", [
    (row("单选", "甲乙", "AB"), "一个选项字母"),
    (row("单选", "甲", "A"), "至少需要 2 个选项"),
    (row("单选", "甲乙", "C"), "对应的选项为空"),
    (row("多选", "甲乙丙", "A"), "两个或以上"),
    (row("多选", "甲乙", "AD"), "“D”对应的选项为空"),
    (row("判断", "甲乙", "对"), "不应填写选项"),
    (row("判断", "", "是的"), "应为“对”或“错”"),
    (row("问答", "", "略"), "题型“问答”无效"),
    (row("单选", "甲乙", "A", difficulty="很难"), "试题难度“很难”无效"),
    (row("单选", "甲乙", "A", stem=""), "题目内容为空"),
])
def test_row_problems(cells, problem):
    problems = check_row(cells, COLUMNS)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("cells", [
    row("单选题", "甲乙", "B"), row("判断题", "", "√"), row("判断", "", "错误"), row("多项选择题", "甲乙丙丁", "BCD", "高级"),
])
def test_row_near_misses_are_valid(cells):
    assert check_row(cells, COLUMNS) == []


def test_bad_rows_are_named_by_excel_row_number(tmp_path):
    rows = good_questions(22)
    rows[0][8] = "AB"  # 单选 with two answers: sheet row 3 (title row 1, header row 2)
    rows[4][10] = "特级"  # sheet row 7
    findings = bank_findings(make_question_bank(tmp_path / "q.xlsx", rows))
    invalid = [f for f in findings if f.code == "question_bank.invalid_question"]
    assert [f.message.split("第 ")[1].split(" 行")[0] for f in invalid] == ["3", "7"]
    assert "too_few" not in " ".join(f.code for f in findings)  # 20 valid remain


def test_merged_type_cells_apply_to_every_row(tmp_path):
    path = make_question_bank(tmp_path / "q.xlsx", good_questions(21)[:0] + [
        ["单选", f"题目{n}", "甲", "乙", "", "", "", "", "A", "", "初级", ""] for n in range(20)
    ])
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.active
    for r in range(4, 23):
        sheet.cell(r, 1).value = None
    sheet.merge_cells("A3:A22")  # 题型 written once for the whole block
    workbook.save(path)
    assert bank_codes(path) == []


def test_legacy_xls(tmp_path):
    rows = good_questions(20)
    rows[2][8] = "对错"  # 判断 with a wrong answer
    source = make_question_bank(tmp_path / "q.xlsx", rows)
    legacy = soffice_convert(source, "xls", tmp_path / "out")
    findings = bank_findings(legacy)
    assert [f.code for f in findings] == ["question_bank.invalid_question", "question_bank.too_few"]
    assert "第 5 行" in findings[0].message


def test_question_bank_as_a_word_table(tmp_path):
    document = docx.Document()
    document.add_paragraph("附件6 题库")
    table = document.add_table(rows=1, cols=len(QB_HEADER))
    for cell, text in zip(table.rows[0].cells, QB_HEADER):
        cell.text = text
    for question in good_questions(20):
        for cell, text in zip(table.add_row().cells, question):
            cell.text = text
    path = tmp_path / "题库.docx"
    document.save(path)
    assert bank_codes(path) == []


def test_not_a_spreadsheet(tmp_path):
    path = tmp_path / "q.xlsx"
    path.write_bytes(b"garbage")
    assert bank_codes(path) == ["question_bank.unreadable"]


def test_merged_range_over_the_whole_sheet_is_refused_quickly(tmp_path):
    import zipfile

    path = make_question_bank(tmp_path / "q.xlsx")
    with zipfile.ZipFile(path) as source:
        items = {name: source.read(name) for name in source.namelist()}
    sheet = items["xl/worksheets/sheet1.xml"].decode()
    items["xl/worksheets/sheet1.xml"] = sheet.replace(
        '<mergeCell ref="A1:L1"/>', '<mergeCell ref="A1:XFD1048576"/>').encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in items.items():
            target.writestr(name, data)
    findings = bank_findings(path)
    assert [f.code for f in findings] == ["question_bank.unreadable"]
    assert "merged" in findings[0].message
