"""intake.parsers.zip_extraction: plain zips unpacked in process give what 7-Zip gives.

Every zip here is unpacked twice, in process and by 7-Zip (``zip_in_process=False``),
and both packages must hold the same files (names and bytes) and the same problems;
``Package.extracted_by`` says which path really ran.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from intake.kernel.budget import Budget, within
from intake.kernel.policy import load_policy
from intake.kernel.report import Report
from intake.kernel.verdicts import Verdict
from intake.parsers.archive_listing import list_entries
from intake.parsers.archives import Package, unpack
from intake.parsers.extraction import disk_usage
from intake.parsers.zip_extraction import NeedsTool, extract, extract_in_process, plan
from intake.samples import build_sample_package
from tests.conftest import tight_policy
from tests.test_archives import gbk_zip

LIMITS = load_policy().archive


def contents(package: Package) -> list[tuple[str, str]]:
    return sorted((f.rel, hashlib.sha256(f.path.read_bytes()).hexdigest()) for f in package.files)


def both(archive: Path, tmp_path: Path, limits=LIMITS) -> tuple[Package, Package]:
    """The package unpacked in process and by 7-Zip; asserts they are the same."""
    fast = unpack(archive, tmp_path / "fast", limits)
    tool = unpack(archive, tmp_path / "tool", limits, zip_in_process=False)
    assert contents(fast) == contents(tool)
    assert fast.problems == tool.problems
    assert fast.unpacked_bytes == tool.unpacked_bytes
    assert all(via != "zipfile" for via in tool.extracted_by)
    return fast, tool


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def raw_zip(path: Path, name: bytes, method: int, payload: bytes, size: int, crc: int) -> Path:
    """A one-entry zip whose headers say exactly what they are told, true or not."""
    local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 0x21, crc, len(payload), size,
                        len(name), 0)
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method, 0, 0x21, crc, len(payload),
                          size, len(name), 0, 0, 0, 0, 0o100644 << 16, 0)
    directory_at = len(local) + len(name) + len(payload)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), directory_at, 0)
    path.write_bytes(local + name + payload + central + name + end)
    return path


def deflated(data: bytes, finish: bool = True) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if finish else zlib.Z_SYNC_FLUSH)


def patch_sizes(path: Path, name: bytes, size: int) -> None:
    """Make the local and central headers of entry ``name`` claim ``size`` bytes unpacked."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    while data[local + 30:local + 30 + len(name)] != name:
        local = data.index(b"PK\x03\x04", local + 4)
    data[local + 22:local + 26] = struct.pack("<I", size)
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 24:central + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ the same names

def test_gbk_names_without_the_flag(tmp_path):
    archive = gbk_zip(tmp_path / "材料.zip", {"项目一/作品说明.docx": b"x", "项目一/视频/题库.xlsx": b"y"})
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"]
    assert sorted(f.rel for f in fast.files) == ["项目一/作品说明.docx", "项目一/视频/题库.xlsx"]


def test_unicode_path_field(tmp_path):
    archive = gbk_zip(tmp_path / "a.zip", {"作品说明.docx": b"x"}, unicode_field=True)
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"] and [f.rel for f in fast.files] == ["作品说明.docx"]


def test_utf8_flag_names_nested_folders_and_empty_ones(tmp_path):
    archive = tmp_path / "u.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("包/", b"")
        bundle.writestr("包/空文件夹/", b"")
        bundle.writestr("包/项目一/视频/说明.txt", "说明" * 500)
        bundle.writestr("包/项目一/空.txt", b"")
        bundle.writestr("包/项目二/题库.xlsx", os.urandom(5000))
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"]
    assert sorted(f.rel for f in fast.files) == ["包/项目一/空.txt", "包/项目一/视频/说明.txt", "包/项目二/题库.xlsx"]
    for way in ("fast", "tool"):  # the empty folder is made by both
        assert sorted(p.name for p in (tmp_path / way).glob("*-out/包/*") if p.is_dir()) == ["空文件夹", "项目一", "项目二"]


def test_utf8_names_without_the_flag(tmp_path):
    source = tmp_path / "src" / "项目A"
    source.mkdir(parents=True)
    (source / "视频.mp4").write_bytes(os.urandom(3000))
    archive = tmp_path / "mac.zip"
    subprocess.run(["zip", "-q", "-r", str(archive), "项目A"], cwd=source.parent, check=True)
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"] and [f.rel for f in fast.files] == ["项目A/视频.mp4"]


def test_sample_package_with_a_zip_inside(tmp_path):
    outer = build_sample_package(tmp_path / "made")
    with zipfile.ZipFile(outer, "a") as bundle:
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("项目三/说明.txt", b"x")
        bundle.writestr("湖北省总工会/项目三.zip", inner.getvalue())
    fast, _ = both(outer, tmp_path)
    assert fast.extracted_by == ["zipfile", "zipfile"]
    assert "湖北省总工会/项目三/说明.txt" in [f.rel for f in fast.files]


def test_data_descriptors_and_zip64_headers(tmp_path):
    class Stream(io.RawIOBase):  # not seekable: zipfile writes data descriptors (bit 3)
        def __init__(self) -> None:
            self.buffer = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            return self.buffer.write(data)

    stream = Stream()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("a.txt", b"a" * 3000)
        with bundle.open("b.bin", "w", force_zip64=True) as entry:
            entry.write(os.urandom(3000))
    archive = tmp_path / "dd.zip"
    archive.write_bytes(stream.buffer.getvalue())
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"] and len(fast.files) == 2


@pytest.mark.parametrize("writer", ["info-zip", "7zz", "bsdtar"])
def test_zips_made_by_real_writers(tmp_path, writer):
    source = tmp_path / "src" / "项目一"
    (source / "视频").mkdir(parents=True)
    (source / "视频" / "作品.mp4").write_bytes(os.urandom(20_000))
    (source / "作品说明.docx").write_bytes(b"x" * 5000)
    (source / "空文件夹").mkdir()
    archive = tmp_path / f"{writer}.zip"
    command = {"info-zip": ["zip", "-q", "-r", str(archive), "项目一"],
               "7zz": ["7zz", "a", "-bd", "-tzip", str(archive), "项目一"],
               "bsdtar": ["bsdtar", "--format", "zip", "-cf", str(archive), "项目一"]}[writer]
    subprocess.run(command, cwd=source.parent, check=True, capture_output=True)
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"]
    assert sorted(f.rel for f in fast.files) == ["项目一/作品说明.docx", "项目一/视频/作品.mp4"]


# ------------------------------------------------------------------ refused before anything is written

def test_encrypted_zip_goes_to_nobody_and_is_encrypted(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_text("secret")
    archive = tmp_path / "e.zip"
    subprocess.run(["7zz", "a", "-bd", "-tzip", "-psecret", str(archive), str(plain)], check=True, capture_output=True)
    with pytest.raises(NeedsTool, match="encrypted"):
        plan(archive, list_entries(archive, "zip"))
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.encrypted"] and fast.extracted_by == []


@pytest.mark.parametrize("name", ["zip_encryption_data.zip", "zip_traditional_encryption_data.zip",
                                  "zip_filename_cp932.zip"])
def test_libarchive_zips(libarchive_fixture, tmp_path, name):
    fast, _ = both(libarchive_fixture(name), tmp_path)
    assert "zipfile" not in fast.extracted_by  # AES, ZipCrypto; Shift-JIS names hold 0x5C bytes


def test_dot_dot_entry(tmp_path):
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ok.txt", b"fine")
        bundle.writestr(zipfile.ZipInfo("../../escaped.txt"), b"evil")
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.unsafe_path"] and fast.files == []
    assert not list(tmp_path.parent.rglob("escaped.txt"))


def test_symlink_entry(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("photo.jpg")
        info.external_attr = 0o120777 << 16
        bundle.writestr(info, "/etc/passwd")
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.unsafe_path"] and fast.files == []


# ------------------------------------------------------------------ damaged and lying zips

def test_header_that_understates_the_size_is_stopped_and_corrupt(tmp_path):
    # 40 MiB of zeros whose headers claim 1000 bytes: small enough for every listing limit
    archive = write_zip(tmp_path / "lie.zip", {"zeros.bin": bytes(40 << 20), "ok.txt": b"ok"})
    patch_sizes(archive, b"zeros.bin", 1000)
    entries = list_entries(archive, "zip")
    assert entries[0].size == 1000
    outcome = extract_in_process(archive, tmp_path / "out", plan(archive, entries), 1 << 30, 60)
    assert not outcome.ok and outcome.reason == "failed" and "more data than the header says" in outcome.detail
    assert disk_usage(tmp_path / "out") <= 1000  # never past the declared size
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.corrupt"] and fast.files == []
    assert fast.extracted_by == ["7zz"]  # zipfile failed, 7-Zip decided


def test_disk_cap_counts_the_bytes_written(tmp_path):
    archive = write_zip(tmp_path / "z.zip", {"a.bin": bytes(3 << 20), "b.bin": bytes(3 << 20)})
    members = plan(archive, list_entries(archive, "zip"))
    outcome = extract_in_process(archive, tmp_path / "out", members, 4 << 20, 60)
    assert not outcome.ok and outcome.reason == "disk"
    assert disk_usage(tmp_path / "out") <= 4 << 20
    assert extract_in_process(archive, tmp_path / "out2", members, 6 << 20, 60).ok


def test_timeout_is_honoured(tmp_path):
    archive = write_zip(tmp_path / "z.zip", {"a.bin": bytes(1 << 20)})
    members = plan(archive, list_entries(archive, "zip"))
    outcome = extract_in_process(archive, tmp_path / "out", members, 1 << 30, 0)
    assert not outcome.ok and outcome.reason == "timeout"


def test_a_limit_reached_in_process_is_not_retried_by_7zip(tmp_path):
    archive = write_zip(tmp_path / "z.zip", {"a.bin": bytes(3 << 20)})
    entries = list_entries(archive, "zip")
    outcome = extract(archive, tmp_path / "out", "zip", entries, 1 << 30, 0)
    assert (outcome.ok, outcome.reason, outcome.via) == (False, "timeout", "zipfile")
    outcome = extract(archive, tmp_path / "out2", "zip", entries, 1 << 20, 60)
    assert (outcome.ok, outcome.reason, outcome.via) == (False, "disk", "zipfile")
    package = unpack(archive, tmp_path / "w", tight_policy(max_total_bytes=1 << 20).archive)
    assert package.extracted_by == []  # the listing refuses it first, as before
    assert [(p.kind, p.reason) for p in package.problems] == [("archive.too_large", "total_size")]


def test_truncated_zip(tmp_path):
    archive = write_zip(tmp_path / "t.zip", {"a.bin": os.urandom(50000)})
    archive.write_bytes(archive.read_bytes()[:20000])
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.corrupt"] and fast.files == []


def test_bad_crc_falls_back_and_is_corrupt(tmp_path):
    archive = write_zip(tmp_path / "c.zip", {"a.txt": b"A" * 5000, "b.txt": b"B" * 5000}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    spot = data.index(b"B" * 100)
    data[spot:spot + 10] = b"C" * 10
    archive.write_bytes(bytes(data))
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.corrupt"] and fast.extracted_by == ["7zz"]
    assert not [p for p in (tmp_path / "fast").rglob("*") if p.is_file() and p.name == "a.txt"]


@pytest.mark.parametrize("damage", ["local_crc", "local_size", "local_method", "prefix", "comment"])
def test_headers_7zip_refuses_are_left_to_7zip(tmp_path, damage):
    archive = write_zip(tmp_path / "h.zip", {"a.txt": b"hello" * 200, "d/b.txt": b"B" * 1000})
    data = bytearray(archive.read_bytes())
    if damage == "local_crc":
        data[14:18] = b"\0\0\0\0"
    elif damage == "local_size":
        data[22:26] = struct.pack("<I", 5)
    elif damage == "local_method":
        data[8:10] = struct.pack("<H", 0)
    elif damage == "prefix":
        data[:0] = b"PK\x03\x04" + bytes(100)
    else:
        at = data.index(b"PK\x05\x06")
        data[at + 20:at + 22] = struct.pack("<H", 50)
    archive.write_bytes(bytes(data))
    with pytest.raises(NeedsTool):
        plan(archive, list_entries(archive, "zip"))
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.corrupt"] and fast.files == []


def test_an_entry_without_a_name_is_judged_not_a_crash(tmp_path):
    archive = tmp_path / "n.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("a.txt", b"a")
        bundle.writestr(zipfile.ZipInfo(""), b"b")  # zipfile's is_dir() raised IndexError on it
    with pytest.raises(NeedsTool):
        plan(archive, list_entries(archive, "zip"))
    fast, _ = both(archive, tmp_path)
    assert "zipfile" not in fast.extracted_by


TEXT = b"hello world " * 100


@pytest.mark.parametrize("case", [
    "deflate_with_bytes_after_the_stream", "deflate_without_its_end", "deflate_cut_short_with_a_matching_crc",
    "stored_with_more_bytes_than_its_size", "stored_cut_short_with_a_matching_crc",
])
def test_data_zipfile_would_accept_but_7zip_does_not(tmp_path, case):
    # zipfile stops at the declared size and ignores what is left; 7-Zip calls these damaged
    short = zlib.crc32(TEXT[:500])
    method, payload, size, crc = {
        "deflate_with_bytes_after_the_stream": (8, deflated(TEXT) + b"\0\0\0", len(TEXT), zlib.crc32(TEXT)),
        "deflate_without_its_end": (8, deflated(TEXT, finish=False), len(TEXT), zlib.crc32(TEXT)),
        "deflate_cut_short_with_a_matching_crc": (8, deflated(TEXT), 500, short),
        "stored_with_more_bytes_than_its_size": (0, TEXT + b"JUNK", len(TEXT), zlib.crc32(TEXT)),
        "stored_cut_short_with_a_matching_crc": (0, TEXT, 500, short),
    }[case]
    archive = raw_zip(tmp_path / "d.zip", b"a.txt", method, payload, size, crc)
    fast, _ = both(archive, tmp_path)
    assert [p.kind for p in fast.problems] == ["archive.corrupt"] and fast.files == []
    assert fast.extracted_by == ["7zz"]


def test_a_well_formed_raw_zip_is_extracted_in_process(tmp_path):
    # the near miss of the cases above: the same builder, honest headers
    archive = raw_zip(tmp_path / "d.zip", b"a.txt", 8, deflated(TEXT), len(TEXT), zlib.crc32(TEXT))
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["zipfile"] and fast.files[0].path.read_bytes() == TEXT


def _header_bytes(data: bytes) -> list[int]:
    """The offsets of every header byte (local headers, central directory, end record)."""
    spots: list[int] = []
    at = data.find(b"PK\x03\x04")
    while at >= 0:
        name, extra = struct.unpack_from("<HH", data, at + 26)
        spots += range(at, at + 30 + name + extra)
        at = data.find(b"PK\x03\x04", at + 4)
    return spots + list(range(data.index(b"PK\x01\x02"), len(data)))


def test_damaged_headers_give_what_7zip_gives(tmp_path):
    # a seeded sample of the differential run made while building this (2,000 mutants, no difference)
    base = io.BytesIO()
    with zipfile.ZipFile(base, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data, method in (("项目/a.txt", b"hello world" * 100, zipfile.ZIP_DEFLATED), ("项目/", b"", None),
                                   ("项目/sub/b.txt", b"B" * 1000, zipfile.ZIP_STORED), ("c.txt", b"c" * 10, None)):
            bundle.writestr(zipfile.ZipInfo(name, (2024, 7, 1, 12, 0, 0)), data, compress_type=method)
    spots = _header_bytes(base.getvalue())
    chance = random.Random(13)
    routes = set()
    for n in range(30):
        data = bytearray(base.getvalue())
        for spot in chance.sample(spots, chance.choice([1, 1, 2])):
            data[spot] = chance.choice([0, 0xFF, data[spot] ^ (1 << chance.randrange(8)), chance.randrange(256)])
        archive = tmp_path / f"{n:02d}" / "m.zip"
        archive.parent.mkdir()
        archive.write_bytes(bytes(data))
        fast, _ = both(archive, archive.parent)
        routes.add(tuple(fast.extracted_by))
    assert {("zipfile",), ("7zz",)} <= routes  # the sample reaches both ways


# ------------------------------------------------------------------ what zipfile does not do

@pytest.mark.parametrize("method", ["Deflate64", "BZip2", "LZMA"])
def test_other_methods_go_to_7zip(tmp_path, method):
    source = tmp_path / "src" / "项目"
    source.mkdir(parents=True)
    (source / "说明.txt").write_text("说明" * 5000)
    archive = tmp_path / "m.zip"
    subprocess.run(["7zz", "a", "-bd", "-tzip", f"-mm={method}", str(archive), str(source)],
                   check=True, capture_output=True)
    with pytest.raises(NeedsTool, match="compression method"):
        plan(archive, list_entries(archive, "zip"))
    fast, _ = both(archive, tmp_path)
    assert fast.extracted_by == ["7zz"] and [f.rel for f in fast.files] == ["项目/说明.txt"]


def _odd_zip(path: Path, case: str) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        def add(name: str, data: bytes = b"x", system: int = 3, mode: int = 0o100644, dos: int = 0) -> None:
            info = zipfile.ZipInfo(name)
            info.create_system, info.external_attr = system, (mode << 16) | dos
            bundle.writestr(info, data)

        add("ok.txt")
        if case == "backslash":
            add("项目\\说明.txt", system=0, mode=0)
        elif case == "duplicate":
            add("dup.txt", b"1")
            add("dup.txt", b"2")
        elif case == "file_and_folder":
            add("x", b"file")
            add("x/y.txt")
        elif case == "folder_attribute":
            add("folder", b"", system=0, mode=0, dos=0x10)
        elif case == "fifo":
            add("pipe", mode=0o010644)
        elif case == "dot_component":
            add("./a//b.txt")
    return path


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the duplicate is the point
@pytest.mark.parametrize("case", ["backslash", "duplicate", "file_and_folder", "folder_attribute", "fifo",
                                  "dot_component"])
def test_names_7zip_would_place_otherwise_go_to_7zip(tmp_path, case):
    archive = _odd_zip(tmp_path / "odd.zip", case)
    with pytest.raises(NeedsTool):
        plan(archive, list_entries(archive, "zip"))
    both(archive, tmp_path)


def test_two_encodings_of_one_folder_go_to_7zip(tmp_path):
    # a GBK "项目" and a UTF-8 "项目": one folder once decoded, two on 7-Zip's disk
    archive = write_zip(tmp_path / "mixed.zip", {"XXXX/a.txt": b"a", "项目/b.txt": b"b"})  # b: flagged UTF-8
    archive.write_bytes(archive.read_bytes().replace(b"XXXX", "项目".encode("gbk")))
    with pytest.raises(NeedsTool, match="decode alike"):
        plan(archive, list_entries(archive, "zip"))
    both(archive, tmp_path)


# ------------------------------------------------------------------ the judging child's CPU budget

def _extracted_by(archive: Path, workdir: Path) -> Report:
    package = unpack(archive, workdir, LIMITS)
    assert package.problems == [] and len(package.files) == 1
    return Report(Verdict.ACCEPTED, ",".join(package.extracted_by), None, None)


def test_the_judging_budget_decides(tmp_path):
    # 40 MiB could take more than half of a 1 s CPU budget at the assumed rate; 1 MiB cannot
    big = write_zip(tmp_path / "big.zip", {"zeros.bin": bytes(40 << 20)})
    small = write_zip(tmp_path / "small.zip", {"zeros.bin": bytes(1 << 20)})
    tight = Budget(memory_bytes=512 << 20, cpu_seconds=1, wall_seconds=120.0)
    assert within(tight, "roadshow", None, _extracted_by, big, tmp_path / "1").policy == "7zz"
    assert within(tight, "roadshow", None, _extracted_by, small, tmp_path / "2").policy == "zipfile"
    assert within(Budget(), "roadshow", None, _extracted_by, big, tmp_path / "3").policy == "zipfile"


def _counting_zlib(produced: list[int]) -> SimpleNamespace:
    """The zlib module as zip_extraction sees it, its inflaters counting their output."""
    names = {name: getattr(zlib, name) for name in dir(zlib) if not name.startswith("__")}
    return SimpleNamespace(**{**names, "decompressobj": lambda *a: _CountingInflater(zlib.decompressobj(*a), produced)})


class _CountingInflater:
    """zlib's decompressobj, counting what it produced."""

    def __init__(self, real, produced: list[int]) -> None:
        self._real, self._produced = real, produced

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self._real.decompress(data, max_length)
        self._produced.append(len(out))
        return out

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def test_a_bomb_entry_stops_within_one_slice_of_its_declared_size(tmp_path, monkeypatch):
    """Checked after every slice, not after the entry: 64 MiB of zeros whose headers
    claim 1000 bytes inflate one slice at most before extraction stops."""
    from intake.parsers import zip_extraction

    archive = write_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(64 << 20)})
    patch_sizes(archive, b"zeros.bin", 1000)
    members = plan(archive, list_entries(archive, "zip"))
    produced: list[int] = []
    monkeypatch.setattr(zip_extraction, "zlib", _counting_zlib(produced))
    outcome = extract_in_process(archive, tmp_path / "out", members, 1 << 30, 60)
    assert not outcome.ok and "more data than the header says" in outcome.detail
    assert len(produced) == 1 and sum(produced) <= zip_extraction.CHUNK  # one slice, not 64
    assert disk_usage(tmp_path / "out") <= 1000


def test_the_timeout_counts_slices_that_inflate_to_nothing(tmp_path, monkeypatch):
    """A deflate stream of empty blocks (16 MiB that inflate to 0 bytes) is read slice by
    slice, and the deadline is looked at after each: a clock that advances one second a
    look stops it after a few slices, not at the end of the entry."""
    from intake.parsers import zip_extraction

    empty_blocks = b"\x00\x00\x00\xff\xff" * ((16 << 20) // 5) + b"\x03\x00"  # stored, len 0; then a final empty block
    assert zlib.decompressobj(-15).decompress(empty_blocks) == b""
    archive = raw_zip(tmp_path / "empty.zip", b"nothing.bin", zipfile.ZIP_DEFLATED, empty_blocks, 0, 0)
    members = plan(archive, list_entries(archive, "zip"))
    assert extract_in_process(archive, tmp_path / "whole", members, 1 << 30, 60).ok  # a valid, if odd, entry
    looks = iter(range(10**6))
    monkeypatch.setattr(zip_extraction, "time", SimpleNamespace(monotonic=lambda: float(next(looks))))
    produced: list[int] = []
    monkeypatch.setattr(zip_extraction, "zlib", _counting_zlib(produced))
    outcome = extract_in_process(archive, tmp_path / "out", members, 1 << 30, 5)
    assert not outcome.ok and outcome.reason == "timeout"
    assert len(produced) <= 5  # slices read, of the 16 in the entry
