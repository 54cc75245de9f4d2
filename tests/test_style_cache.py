"""Word documents made from one template share their styles part: its heading names are
parsed once per process, known by the SHA-256 of the part's bytes; a styles part that
does not read is never remembered, nor one over 512 KiB, and the entries are bounded."""

from __future__ import annotations

import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

from intake.parsers import word
from intake.samples import make_form



def _counting(monkeypatch) -> list[bytes]:
    parsed: list[bytes] = []
    parse = word._parse_style_names
    monkeypatch.setattr(word, "_STYLES_SEEN", OrderedDict())
    monkeypatch.setattr(word, "_parse_style_names", lambda data: parsed.append(data) or parse(data))
    return parsed


def _with_styles(template: Path, target: Path, styles: bytes) -> Path:
    """``template`` with its styles part replaced by ``styles``."""
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, styles if info.filename == "word/styles.xml" else source.read(info.filename))
    return target


def _names(path: Path) -> dict[str, str] | None:
    with zipfile.ZipFile(path) as package:
        return word._style_names(package, "word/document.xml")


def test_a_templates_styles_are_parsed_once_and_a_broken_part_never_kept(tmp_path, monkeypatch):
    make_form(tmp_path / "a.docx", courses=["课程甲"])
    make_form(tmp_path / "b.docx", courses=["课程乙"])
    parsed = _counting(monkeypatch)
    names = _names(tmp_path / "a.docx")
    assert names and names.get("Heading1") == "heading 1"
    assert _names(tmp_path / "b.docx") is names
    assert len(parsed) == 1
    # a part whose bytes no longer match its CRC: the read fails, nothing is kept
    with zipfile.ZipFile(tmp_path / "a.docx") as a, zipfile.ZipFile(tmp_path / "c.docx", "w") as c:
        for info in a.infolist():
            c.writestr(zipfile.ZipInfo(info.filename, info.date_time), a.read(info.filename))  # stored
    data = bytearray((tmp_path / "c.docx").read_bytes())
    at = data.index(b"<w:style ")
    data[at + 1:at + 2] = b"W"  # the CRC no longer matches
    (tmp_path / "c.docx").write_bytes(bytes(data))
    monkeypatch.setattr(word, "_STYLES_SEEN", OrderedDict())
    assert _names(tmp_path / "c.docx") == {}
    assert word._STYLES_SEEN == {}


def _forge_crc(data: bytes, at: int, count: int, crc: int) -> bytes:
    """``data`` with the low nibbles of the ``count`` bytes from ``at`` (each 0x40-0x4F:
    '@'..'O', harmless in an XML comment) chosen so that its CRC-32 is ``crc``. CRC-32 is
    affine over GF(2) for a fixed length: solve for the 4 * count free bits."""
    base = bytearray(data)
    base[at:at + count] = b"@" * count
    start = zlib.crc32(bytes(base))
    columns = []  # what flipping each free bit does to the CRC
    for bit in range(4 * count):
        flipped = bytearray(base)
        flipped[at + bit // 4] ^= 1 << (bit % 4)
        columns.append(zlib.crc32(bytes(flipped)) ^ start)
    rows = [(columns[bit], 1 << bit) for bit in range(len(columns))]  # (effect, bits chosen)
    basis: dict[int, tuple[int, int]] = {}  # leading bit of the effect -> row
    for effect, chosen in rows:
        for top in sorted(basis, reverse=True):
            if effect >> top & 1:
                effect, chosen = effect ^ basis[top][0], chosen ^ basis[top][1]
        if effect:
            basis[effect.bit_length() - 1] = (effect, chosen)
    want, chosen = start ^ crc, 0
    for top in sorted(basis, reverse=True):
        if want >> top & 1:
            want, chosen = want ^ basis[top][0], chosen ^ basis[top][1]
    assert want == 0, "no solution with these free bits"
    for bit in range(len(columns)):
        if chosen >> bit & 1:
            base[at + bit // 4] ^= 1 << (bit % 4)
    assert zlib.crc32(bytes(base)) == crc
    return bytes(base)


def test_a_part_forged_to_the_same_crc_and_size_is_read_for_itself(tmp_path, monkeypatch):
    """One sender's styles part must never stand for another's: with a key of CRC and
    size, a part forged to collide was answered with the names remembered from the first."""
    make_form(tmp_path / "template.docx", courses=["课程甲"])
    with zipfile.ZipFile(tmp_path / "template.docx") as template:
        styles = template.read("word/styles.xml")
    assert b'w:val="heading 1"' in styles
    first = styles.replace(b"</w:styles>", b"<!--" + b"@" * 12 + b"--></w:styles>")
    other = first.replace(b'w:val="heading 1"', b'w:val="heading 7"')
    at = other.index(b"<!--" + b"@" * 12) + 4
    other = _forge_crc(other, at, 12, zlib.crc32(first))
    assert len(other) == len(first) and zlib.crc32(other) == zlib.crc32(first) and other != first
    parsed = _counting(monkeypatch)
    assert _names(_with_styles(tmp_path / "template.docx", tmp_path / "a.docx", first))["Heading1"] == "heading 1"
    assert _names(_with_styles(tmp_path / "template.docx", tmp_path / "b.docx", other))["Heading1"] == "heading 7"
    assert len(parsed) == 2


def test_large_parts_are_never_kept_and_the_entries_are_bounded(tmp_path, monkeypatch):
    make_form(tmp_path / "template.docx", courses=["课程甲"])
    with zipfile.ZipFile(tmp_path / "template.docx") as template:
        styles = template.read("word/styles.xml")
    parsed = _counting(monkeypatch)
    large = styles.replace(b"</w:styles>", b"<!--" + b"x" * (word.STYLES_CACHED_BYTES - len(styles)) + b"--></w:styles>")
    assert word.STYLES_CACHED_BYTES < len(large) <= word.MAX_STYLES_BYTES
    big = _with_styles(tmp_path / "template.docx", tmp_path / "big.docx", large)
    assert _names(big)["Heading1"] == "heading 1" and _names(big)["Heading1"] == "heading 1"
    assert len(parsed) == 2 and not word._STYLES_SEEN  # parsed each time, never kept
    for n in range(word.STYLES_CACHED + 4):  # more templates than are remembered
        variant = styles.replace(b"</w:styles>", f"<!--{n}--></w:styles>".encode())
        _names(_with_styles(tmp_path / "template.docx", tmp_path / f"v{n}.docx", variant))
    assert len(word._STYLES_SEEN) == word.STYLES_CACHED
    parsed.clear()  # the most recent is still known, the first ones were dropped
    _names(tmp_path / f"v{word.STYLES_CACHED + 3}.docx")
    assert parsed == []
    _names(tmp_path / "v0.docx")
    assert len(parsed) == 1
