"""intake.validators.declaration: the 附件3 fields, in the layouts senders use."""

from __future__ import annotations

import docx
import pytest

from intake.kernel.policy import load_policy
from intake.samples import intro_text, make_declaration
from intake.parsers.documents import read_blocks
from intake.validators.declaration import check_declaration, chosen_category

RULES = load_policy("innovation").declaration


def declaration_codes(path):
    return [f.code for f in check_declaration(read_blocks(path), path.name, "成果", RULES)]


def test_complete_declaration_passes(tmp_path):
    assert declaration_codes(make_declaration(tmp_path / "d.docx")) == []


def test_name_about_20_warns_beyond_30(tmp_path):
    assert declaration_codes(make_declaration(tmp_path / "a.docx", name=intro_text(30))) == []
    findings = check_declaration(read_blocks(make_declaration(tmp_path / "b.docx", name=intro_text(31))), "b.docx", "成果", RULES)
    assert [(f.code, f.severity) for f in findings] == [("declaration.name_too_long", "warning")]


def test_summary_500_passes_501_fails(tmp_path):
    assert declaration_codes(make_declaration(tmp_path / "a.docx", summary=intro_text(500))) == []
    assert declaration_codes(make_declaration(tmp_path / "b.docx", summary=intro_text(501))) == ["declaration.summary_too_long"]


def test_background_about_100_warns_beyond_150(tmp_path):
    assert declaration_codes(make_declaration(tmp_path / "a.docx", background=intro_text(150))) == []
    assert declaration_codes(make_declaration(tmp_path / "b.docx", background=intro_text(151))) == ["declaration.background_too_long"]


def test_twenty_completers_pass_twenty_one_fail(tmp_path):
    names = [f"员工{n:02d}" for n in range(1, 22)]
    assert declaration_codes(make_declaration(tmp_path / "a.docx", completers="、".join(names[:20]))) == []
    assert declaration_codes(make_declaration(tmp_path / "b.docx", completers="，".join(names))) == [
        "declaration.too_many_completers"]


@pytest.mark.parametrize("category,ok", [
    ("小发明", True), ("小建议", True), ("☑小发明 □小创造 □小革新 □小设计 □小建议", True),
    ("大发明", False), ("小发明、小创造", False), ("", False),
])
def test_category(tmp_path, category, ok):
    codes = declaration_codes(make_declaration(tmp_path / "d.docx", category=category))
    assert (codes == []) is ok, codes
    assert (chosen_category(category, RULES.categories) is not None) is ok


def test_new_productivity_must_be_answered(tmp_path):
    assert declaration_codes(make_declaration(tmp_path / "a.docx", new_productivity=None)) == [
        "declaration.new_productivity_missing"]
    assert declaration_codes(make_declaration(tmp_path / "b.docx", new_productivity="否")) == []


def test_inline_layout(tmp_path):
    document = docx.Document()
    for line in ("成果名称：快速对刀装置", "成果类别：小革新", "主要完成人：张三、李四",
                 f"成果简介：{intro_text(501)}", "是否为新质生产力：是"):
        document.add_paragraph(line)
    path = tmp_path / "d.docx"
    document.save(path)
    assert declaration_codes(path) == ["declaration.summary_too_long"]


# ------------------------------------------------------------------ found in review

@pytest.mark.parametrize("text,expected", [
    ("小发明□ 小创造□ 小革新☑ 小设计□ 小建议□", "小革新"),
    ("小发明（√） 小创造（ ） 小革新（ ）", "小发明"),
    ("□小发明 ■小革新 □小建议", "小革新"),
    ("□小发明 □小创造 小革新 □小设计 □小建议", "小革新"),  # the tick was a Wingdings symbol
    ("□小发明 □小创造 □小革新", None),
])
def test_ticked_category_on_either_side(text, expected):
    assert chosen_category(text, RULES.categories) == expected


@pytest.mark.parametrize("label", ["是否为新质生产力成果", "是否属于新质生产力范畴"])
def test_new_productivity_label_variants(tmp_path, label):
    document = docx.Document()
    for line in ("成果名称：快速对刀装置", "成果类别：小革新", f"{label}：是"):
        document.add_paragraph(line)
    path = tmp_path / "d.docx"
    document.save(path)
    assert declaration_codes(path) == []


def test_new_productivity_ticked_in_one_cell(tmp_path):
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "成果名称", "快速对刀装置"
    table.rows[1].cells[0].text = "是否为新质生产力 ☑是 □否"
    path = tmp_path / "d.docx"
    document.save(path)
    assert declaration_codes(path) == []


def test_completers_in_a_table_one_per_row(tmp_path):
    document = docx.Document()
    document.add_paragraph("成果名称：快速对刀装置")
    document.add_paragraph("是否为新质生产力：是")
    document.add_paragraph("主要完成人：")
    table = document.add_table(rows=1, cols=4)
    for cell, text in zip(table.rows[0].cells, ["序号", "姓名", "工作单位", "职务"]):
        cell.text = text
    for n in range(1, 6):
        for cell, text in zip(table.add_row().cells, [str(n), f"张{n}", "某公司", "高级技师"]):
            cell.text = text
    path = tmp_path / "d.docx"
    document.save(path)
    assert declaration_codes(path) == []  # 5 people, not 24 cells


def test_names_padded_with_spaces_count_once(tmp_path):
    names = "、".join(f"张  {n}" for n in "一二三四五六七八九十甲乙")
    assert declaration_codes(make_declaration(tmp_path / "d.docx", completers=names)) == []


def test_summary_stops_at_the_next_field(tmp_path):
    document = docx.Document()
    for line in ("成果名称：快速对刀装置", f"成果简介：{intro_text(450)}", f"应用效果：{intro_text(200)}",
                 "是否为新质生产力：是"):
        document.add_paragraph(line)
    path = tmp_path / "d.docx"
    document.save(path)
    assert declaration_codes(path) == []
