"""validators.document and parsers.documents on real .docx (python-docx) and .doc (LibreOffice) files."""

from __future__ import annotations

import docx
import pytest

from intake.policy import load_policy
from intake.samples import intro_text, make_document
from parsers.documents import find_section, read_blocks
from parsers.text import count_zi
from tests.conftest import soffice_convert
from validators.document import check_document

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
