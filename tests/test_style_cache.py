"""Word documents made from one template share their styles part: its heading names are
parsed once per process, and a styles part that does not read is never remembered."""

from __future__ import annotations

import zipfile

from intake.parsers import word
from intake.samples import make_form


def test_a_templates_styles_are_parsed_once_and_a_broken_part_never_kept(tmp_path, monkeypatch):
    make_form(tmp_path / "a.docx", courses=["课程甲"])
    make_form(tmp_path / "b.docx", courses=["课程乙"])
    parsed = []
    parse = word._parse_style_names
    monkeypatch.setattr(word, "_STYLES_SEEN", {})
    monkeypatch.setattr(word, "_parse_style_names", lambda package, part: parsed.append(part) or parse(package, part))
    with zipfile.ZipFile(tmp_path / "a.docx") as a, zipfile.ZipFile(tmp_path / "b.docx") as b:
        names = word._style_names(a, "word/document.xml")
        assert names and names.get("Heading1") == "heading 1"
        assert word._style_names(b, "word/document.xml") is names
    assert parsed == ["word/styles.xml"]
    # the same CRC and size claimed over other bytes: the read fails, nothing is kept
    with zipfile.ZipFile(tmp_path / "a.docx") as a, zipfile.ZipFile(tmp_path / "c.docx", "w") as c:
        for info in a.infolist():
            c.writestr(zipfile.ZipInfo(info.filename, info.date_time), a.read(info.filename))  # stored
    data = bytearray((tmp_path / "c.docx").read_bytes())
    at = data.index(b"<w:style ")
    data[at + 1:at + 2] = b"W"  # the CRC no longer matches
    (tmp_path / "c.docx").write_bytes(bytes(data))
    monkeypatch.setattr(word, "_STYLES_SEEN", {})
    with zipfile.ZipFile(tmp_path / "c.docx") as c:
        assert word._style_names(c, "word/document.xml") == {}
    assert word._STYLES_SEEN == {}
