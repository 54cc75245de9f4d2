"""intake.validators.question_bank on real .xlsx (openpyxl), .xls (LibreOffice) and .docx tables."""

from __future__ import annotations

import re

import docx
import openpyxl
import pytest

from intake.kernel.policy import load_policy
from intake.samples import QB_HEADER, good_questions, make_question_bank
from tests.conftest import soffice_convert
from intake.parsers.question_bank_header import header_key
from intake.parsers.xlsx import MAX_ROWS, MAX_SHARED_CHARS
from tests.bounded import judge_bounded, judged_in_project
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


# ---------------------------------------------------------------- hostile workbooks (issue 10)

def _rewrite(path, member, edit):
    import zipfile

    with zipfile.ZipFile(path) as source:
        items = {name: source.read(name) for name in source.namelist()}
    items[member] = edit(items[member])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in items.items():
            target.writestr(name, data)


def test_cells_a1_xfd1_and_a1048576_do_not_make_the_whole_sheet(tmp_path):
    # 4.4 GiB after a minute before: every cell of A1:XFD1048576 was built
    path = make_question_bank(tmp_path / "q.xlsx")
    workbook = openpyxl.load_workbook(path)
    workbook.active["XFD1"], workbook.active["A1048576"] = "远处", "更远处"
    workbook.save(path)
    assert path.stat().st_size < 20_000
    # judged on its first rows; the sender is told a value lies beyond them
    findings = judged_in_project(tmp_path, "question_bank", path, ["document.read_partly"])
    assert f"前 {MAX_ROWS} 行" in findings[0]["message"]


def test_a_sheet_declaring_a_million_rows_is_read_to_its_last_value(tmp_path):
    # every one of 1,048,576 rows formatted (as WPS writes it): ~850 MiB and 20 s before
    path = make_question_bank(tmp_path / "q.xlsx")
    filler = "".join(f'<row r="{n}" ht="20" customHeight="1"/>' for n in range(23, 1_048_577)).encode()
    _rewrite(path, "xl/worksheets/sheet1.xml", lambda xml: re.sub(
        rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:L1048576"/>', xml).replace(
        b"</sheetData>", filler + b"</sheetData>"))
    judged_in_project(tmp_path, "question_bank", path, [])  # the 20 questions, nothing left unread


SST = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _with_shared_strings(path, fillers: list[str], before: bool):
    """The bank's inline strings moved to a shared-strings table, with ``fillers`` before
    or after them (the cells refer to their strings by index, as Excel writes them)."""
    import zipfile

    with zipfile.ZipFile(path) as source:
        items = {name: source.read(name) for name in source.namelist()}
    own: list[bytes] = []
    offset = len(fillers) if before else 0

    def shared(match):
        own.append(match.group(2))
        return match.group(1) + b' t="s"><v>%d</v></c>' % (offset + len(own) - 1)

    items["xl/worksheets/sheet1.xml"] = re.sub(
        rb'(<c r="[A-Z]+\d+"(?: s="\d+")?) t="inlineStr"><is>(<t>.*?</t>)</is></c>', shared,
        items["xl/worksheets/sheet1.xml"])
    strings = [f"<si><t>{x}</t></si>".encode() for x in fillers]
    strings = strings + [b"<si>%s</si>" % t for t in own] if before else [b"<si>%s</si>" % t for t in own] + strings
    items["xl/sharedStrings.xml"] = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">'
        % (len(strings), len(strings)) + b"".join(strings) + b"</sst>")
    items["[Content_Types].xml"] = items["[Content_Types].xml"].replace(
        b"</Types>", f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SST_TYPE}"/></Types>'.encode())
    items["xl/_rels/workbook.xml.rels"] = items["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", f'<Relationship Id="rIdS" Type="{SST}" Target="sharedStrings.xml"/></Relationships>'.encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in items.items():
            target.writestr(name, data)
    return path


def test_shared_strings_are_read_up_to_a_bound(tmp_path):
    # 495 MB of shared strings in an 11.6 MB file took 820 MiB: openpyxl reads them all first
    fillers = ["填充文字" * 2_500] * (MAX_SHARED_CHARS // 10_000 + 1)  # just over the bound
    after = _with_shared_strings(make_question_bank(tmp_path / "after.xlsx"), fillers, before=False)
    assert bank_codes(after) == []  # the bank's own strings come first: read, and judged
    before = _with_shared_strings(make_question_bank(tmp_path / "q.xlsx"), fillers, before=True)
    findings = judged_in_project(tmp_path, "question_bank", before, ["question_bank.unreadable"])
    assert "读取上限" in findings[0]["message"] and "删除" in findings[0]["message"]


def test_a_huge_word_table_is_read_partly_and_its_first_rows_judged(tmp_path):
    document = docx.Document()
    table = document.add_table(rows=1, cols=len(QB_HEADER))
    for cell, text in zip(table.rows[0].cells, QB_HEADER):
        cell.text = text
    for question in good_questions(20):
        for cell, text in zip(table.add_row().cells, question):
            cell.text = text
    path = tmp_path / "题库.docx"
    document.save(path)
    empty_row = b"<w:tr>" + b"<w:tc><w:p/></w:tc>" * len(QB_HEADER) + b"</w:tr>"
    _rewrite(path, "word/document.xml", lambda xml: xml.replace(b"</w:tbl>", empty_row * 50_000 + b"</w:tbl>", 1))
    findings = judge_bounded(path.parent)["findings"]
    assert [f["code"] for f in findings if f["path"] == "题库.docx"] == ["document.read_partly"]
