"""intake.validators.document and parsers.documents on real .docx (python-docx) and .doc (LibreOffice) files."""

from __future__ import annotations

import docx
import pytest

from intake.kernel.policy import load_policy
from intake.samples import intro_text, make_document
from intake.parsers.documents import find_section, read_blocks
from intake.parsers.text import count_zi
from tests.bounded import judged_in_project
from tests.conftest import soffice_convert
from intake.validators.document import check_document

RULES = load_policy().document


def doc_codes(path):
    return [f.code for f in check_document(path, path.name, "p", RULES)]


@pytest.mark.parametrize("layout", ["heading", "inline", "table"])
def test_layouts_are_understood(tmp_path, layout):
    path = make_document(tmp_path / "d.docx", mentor="张三，高级技师。", video="本视频演示快速对刀。", layout=layout)
    blocks = read_blocks(path)
    assert find_section(blocks, "导师简介", ("视频简介",)) == "张三，高级技师。"
    assert find_section(blocks, "视频简介", ("导师简介",)) == "本视频演示快速对刀。"
    assert doc_codes(path) == []


def test_intro_text_helper_counts_exactly():
    assert count_zi(intro_text(200)) == 200 and count_zi(intro_text(301)) == 301


@pytest.mark.parametrize("layout", ["heading", "inline", "table"])
def test_limits_200_and_300_pass_one_more_fails(tmp_path, layout):
    ok = make_document(tmp_path / "ok.docx", intro_text(200), intro_text(300), layout)
    assert doc_codes(ok) == []
    long = make_document(tmp_path / "long.docx", intro_text(201), intro_text(301), layout)
    findings = check_document(long, "long.docx", "p", RULES)
    assert [f.code for f in findings] == ["document.mentor_intro_too_long", "document.video_intro_too_long"]
    assert "201 字" in findings[0].message and "200 字" in findings[0].message
    assert "301 字" in findings[1].message and "300 字" in findings[1].message


def test_missing_sections(tmp_path):
    path = make_document(tmp_path / "d.docx", mentor=False, video=False)
    assert doc_codes(path) == ["document.mentor_intro_missing", "document.video_intro_missing"]
    only_mentor = make_document(tmp_path / "m.docx", mentor="张三", video=False)
    assert doc_codes(only_mentor) == ["document.video_intro_missing"]


def test_heading_with_empty_body_is_missing(tmp_path):
    path = make_document(tmp_path / "d.docx", mentor="", video="本视频。")
    assert doc_codes(path) == ["document.mentor_intro_missing"]


def test_multi_paragraph_section_stops_at_next_label(tmp_path):
    document = docx.Document()
    document.add_paragraph("一、导师简介")
    document.add_paragraph("张三，高级技师。")
    document.add_paragraph("从事数控加工二十年。")
    document.add_paragraph("二、视频简介")
    document.add_paragraph("本视频演示对刀。")
    path = tmp_path / "d.docx"
    document.save(path)
    blocks = read_blocks(path)
    assert find_section(blocks, "导师简介", ("视频简介",)) == "张三，高级技师。\n从事数控加工二十年。"
    assert find_section(blocks, "视频简介", ("导师简介",)) == "本视频演示对刀。"


def test_inline_label_with_hint_and_spaces(tmp_path):
    document = docx.Document()
    document.add_paragraph("导师简介（200字以内）：张三，高级技师。")
    document.add_paragraph("视频简介 : 本视频演示对刀。")
    path = tmp_path / "d.docx"
    document.save(path)
    blocks = read_blocks(path)
    assert find_section(blocks, "导师简介", ("视频简介",)) == "张三，高级技师。"
    assert find_section(blocks, "视频简介", ("导师简介",)) == "本视频演示对刀。"


def test_label_alone_in_table_row_takes_the_row_below(tmp_path):
    document = docx.Document()
    table = document.add_table(rows=4, cols=1)
    for cell, text in zip(table.columns[0].cells, ["导师简介", "张三，高级技师。", "视频简介", "本视频演示对刀。"]):
        cell.text = text
    path = tmp_path / "d.docx"
    document.save(path)
    assert doc_codes(path) == []
    assert find_section(read_blocks(path), "导师简介") == "张三，高级技师。"


@pytest.mark.parametrize("layout", ["heading", "inline", "table"])
def test_legacy_doc_through_antiword(tmp_path, layout):
    source = make_document(tmp_path / "d.docx", intro_text(150), intro_text(301), layout)
    legacy = soffice_convert(source, "doc", tmp_path / "out")
    assert legacy.suffix == ".doc" and legacy.exists()
    findings = check_document(legacy, legacy.name, "p", RULES)
    assert [f.code for f in findings] == ["document.video_intro_too_long"]
    assert "301 字" in findings[0].message


def test_not_a_word_file_is_unreadable(tmp_path):
    fake = tmp_path / "d.docx"
    fake.write_bytes(b"this is not a zip")
    findings = check_document(fake, "d.docx", "p", RULES)
    assert [f.code for f in findings] == ["document.unreadable"]


# ------------------------------------------------------------------ found in review

def test_numbered_and_dated_lines_belong_to_the_profile(tmp_path):
    document = docx.Document()
    document.add_heading("导师简介", level=2)
    document.add_paragraph("张三，高级技师。")
    document.add_paragraph("1. 主持技术革新十二项")
    document.add_paragraph("2008.07 获全国技术能手")
    document.add_heading("视频简介", level=2)
    document.add_paragraph("本视频演示对刀。")
    path = tmp_path / "d.docx"
    document.save(path)
    mentor = find_section(read_blocks(path), "导师简介", ("视频简介",))
    assert mentor == "张三，高级技师。\n1. 主持技术革新十二项\n2008.07 获全国技术能手"


def test_labels_in_a_header_row_with_texts_below(tmp_path):
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "导师简介", "视频简介"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = intro_text(250), "本视频演示对刀。"
    path = tmp_path / "d.docx"
    document.save(path)
    assert doc_codes(path) == ["document.mentor_intro_too_long"]


def test_two_labels_in_one_row(tmp_path):
    document = docx.Document()
    cells = document.add_table(rows=1, cols=4).rows[0].cells
    for cell, text in zip(cells, ["导师简介", "张三，高级技师。", "视频简介", "本视频演示对刀。"]):
        cell.text = text
    path = tmp_path / "d.docx"
    document.save(path)
    blocks = read_blocks(path)
    assert find_section(blocks, "导师简介", ("视频简介",)) == "张三，高级技师。"
    assert find_section(blocks, "视频简介", ("导师简介",)) == "本视频演示对刀。"


def test_heading_with_its_text_in_a_box(tmp_path):
    document = docx.Document()
    document.add_heading("导师简介", level=2)
    document.add_table(rows=1, cols=1).rows[0].cells[0].text = "张三，高级技师。"
    document.add_heading("视频简介", level=2)
    document.add_table(rows=1, cols=1).rows[0].cells[0].text = "本视频演示对刀。"
    path = tmp_path / "d.docx"
    document.save(path)
    assert find_section(read_blocks(path), "导师简介", ("视频简介",)) == "张三，高级技师。"
    assert doc_codes(path) == []


def _rewrite_member(path, member, edit):
    import zipfile

    with zipfile.ZipFile(path) as source:
        items = {name: source.read(name) for name in source.namelist()}
    items[member] = edit(items[member].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in items.items():
            target.writestr(name, data)


def test_huge_grid_span_is_refused_quickly(tmp_path):
    path = make_document(tmp_path / "d.docx", layout="table")
    _rewrite_member(path, "word/document.xml",
                    lambda xml: xml.replace("<w:tcPr>", '<w:tcPr><w:gridSpan w:val="20000000"/>', 1))
    assert doc_codes(path) == ["document.unreadable"]


def test_broken_vertical_merge_is_unreadable_not_a_crash(tmp_path):
    path = make_document(tmp_path / "d.docx", layout="table")
    _rewrite_member(path, "word/document.xml",
                    lambda xml: xml.replace("<w:tcPr>", '<w:tcPr><w:vMerge/>', 1))
    assert doc_codes(path) == ["document.unreadable"]


def test_millions_of_empty_paragraphs_are_read_partly(tmp_path):
    # 120 MiB of <w:p/> in a 1.1 MB file took 4.3 GiB and more than five minutes;
    # 30 MiB (5 million paragraphs) took python-docx 1.2 GiB and 90 s
    path = make_document(tmp_path / "d.docx", mentor="张三，高级技师。", video="本视频演示快速对刀。")
    _rewrite_member(path, "word/document.xml",
                    lambda xml: xml.replace("<w:sectPr", "<w:p/>" * (30 * 2**20 // 6) + "<w:sectPr", 1))
    assert path.stat().st_size < 200_000
    # judged on what was read (both profiles are there), and the sender told the rest was not
    findings = judged_in_project(tmp_path, "document", path, ["document.read_partly"])
    assert "只检查了" in findings[0]["message"] and "请删除" in findings[0]["message"]


def test_a_partly_read_declaration_is_judged_on_what_was_read(tmp_path):
    from intake.kernel.policy import load_policy
    from intake.samples import make_declaration
    from intake.validators.declaration import check_declaration

    path = make_declaration(tmp_path / "申报表.docx")
    expected = [f.code for f in check_declaration(read_blocks(path), "申报表.docx", "成果",
                                                  load_policy("innovation").declaration)]
    _rewrite_member(path, "word/document.xml", lambda xml: xml.replace("<w:sectPr", "<w:p/>" * 30_000 + "<w:sectPr", 1))
    blocks = read_blocks(path)
    codes = [f.code for f in check_declaration(blocks, "申报表.docx", "成果", load_policy("innovation").declaration)]
    assert codes == ["document.read_partly"] + expected
