"""intake.parsers.archives: real archives made by real tools, and libarchive's test archives."""

from __future__ import annotations

import io
import os
import resource
import signal
import tarfile
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from intake.kernel.policy import load_policy
from intake.parsers.archive_formats import archive_format, group_archives, split_volume
from intake.parsers.archives import PROBLEM_REASONS, ArchiveProblem, unpack
from intake.parsers.extraction import _died_of_file_size, disk_usage, extraction_command, run_extraction
from intake.validators.archive import archive_findings
from tests.conftest import tight_policy

LIMITS = load_policy().archive


def unpacked(source: Path, tmp_path: Path, limits=LIMITS):
    package = unpack(source, tmp_path / "work", limits)
    return package, sorted(f.rel for f in package.files), [f.code for f in archive_findings(package.problems)]


def gbk_zip(path: Path, names: dict[str, bytes], unicode_field: bool = False) -> Path:
    """A zip as Chinese Windows writes it: GBK names, no UTF-8 flag (bit 11 clear)."""
    placeholders = {}
    with zipfile.ZipFile(path, "w") as archive:
        for index, (name, content) in enumerate(names.items()):
            raw = name.encode("gbk")
            placeholder = (f"{index:02d}" + "x" * len(raw))[: len(raw)]
            placeholders[placeholder.encode()] = raw
            info = zipfile.ZipInfo(placeholder)
            if unicode_field:
                utf8 = name.encode("utf-8")
                info.extra = struct.pack("<HHBI", 0x7075, 5 + len(utf8), 1, zlib.crc32(raw)) + utf8
            archive.writestr(info, content)
    data = path.read_bytes()
    for placeholder, raw in placeholders.items():
        data = data.replace(placeholder, raw)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ names

def test_gbk_names_without_utf8_flag_come_out_as_chinese(tmp_path):
    archive = gbk_zip(tmp_path / "材料.zip", {"项目一/作品说明.docx": b"x", "项目一/题库.xlsx": b"y"})
    with zipfile.ZipFile(archive) as check:
        assert all(not (i.flag_bits & 0x800) for i in check.infolist())
    _, files, findings = unpacked(archive, tmp_path)
    assert files == ["项目一/作品说明.docx", "项目一/题库.xlsx"]
    assert findings == []


def test_unicode_path_field_wins_over_gbk(tmp_path):
    # 0x7075 holds the UTF-8 name; it is used when its CRC matches the header name.
    archive = gbk_zip(tmp_path / "a.zip", {"作品说明.docx": b"x"}, unicode_field=True)
    _, files, _ = unpacked(archive, tmp_path)
    assert files == ["作品说明.docx"]


def test_utf8_flagged_names_are_kept(tmp_path):
    archive = tmp_path / "u.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("视频简介/说明.txt", b"x")  # Python sets the UTF-8 flag
    _, files, _ = unpacked(archive, tmp_path)
    assert files == ["视频简介/说明.txt"]


def test_rar5_fixture_unpacks(libarchive_fixture, tmp_path):
    archive = libarchive_fixture("rar5_compressed.rar")
    _, files, findings = unpacked(archive, tmp_path)
    assert files == ["test.bin"] and findings == []


def test_rar4_unicode_names_are_listed_as_written(libarchive_fixture):
    from intake.parsers.archive_listing import list_entries

    names = [e.name for e in list_entries(libarchive_fixture("rar_unicode.rar"), "rar")]
    assert any("表だよ" in name for name in names), names


# ------------------------------------------------------------------ formats

def test_7z_made_by_7zz(tmp_path):
    source = tmp_path / "src" / "项目"
    source.mkdir(parents=True)
    (source / "视频.mp4").write_bytes(os.urandom(2000))
    archive = tmp_path / "p.7z"
    subprocess.run(["7zz", "a", "-bd", str(archive), str(source)], check=True, capture_output=True)
    _, files, findings = unpacked(archive, tmp_path)
    assert files == ["项目/视频.mp4"] and findings == []


def test_tar_gz(tmp_path):
    source = tmp_path / "src" / "项目"
    source.mkdir(parents=True)
    (source / "a.docx").write_bytes(b"x")
    archive = tmp_path / "p.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(source.parent), "项目"], check=True)
    _, files, findings = unpacked(archive, tmp_path)
    assert files == ["项目/a.docx"] and findings == []


def test_rar4_with_symlink_is_unsafe(libarchive_fixture, tmp_path):
    _, files, findings = unpacked(libarchive_fixture("rar.rar"), tmp_path)
    assert "archive.unsafe_path" in findings and files == []


def test_docx_and_xlsx_are_materials_not_archives(tmp_path):
    from intake.samples import make_document, make_question_bank

    folder = tmp_path / "pkg"
    make_document(folder / "说明.docx")
    make_question_bank(folder / "题库.xlsx")
    assert archive_format(folder / "说明.docx") is None
    _, files, findings = unpacked(folder, tmp_path)
    assert files == ["说明.docx", "题库.xlsx"] and findings == []


def test_nested_archive_inside_a_folder_unpacks_in_place(tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    inner = tmp_path / "项目1"
    inner.mkdir()
    (inner / "v.mp4").write_bytes(b"v")
    with zipfile.ZipFile(folder / "项目1.zip", "w") as bundle:
        bundle.write(inner / "v.mp4", "项目1/v.mp4")
    (folder / "报送表.docx").write_bytes(b"d")
    _, files, findings = unpacked(folder, tmp_path)
    # the zip's single top folder is not doubled ("项目1/项目1/…")
    assert files == ["报送表.docx", "项目1/v.mp4"] and findings == []


# ------------------------------------------------------------------ encryption

def test_encrypted_zip_made_by_7zz(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_text("secret")
    archive = tmp_path / "e.zip"
    subprocess.run(["7zz", "a", "-bd", "-tzip", "-psecret", str(archive), str(plain)], check=True, capture_output=True)
    package, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.encrypted"] and files == []
    assert "密码" in archive_findings(package.problems)[0].message


@pytest.mark.parametrize("name", [
    "rar4_encrypted.rar", "rar5_encrypted.rar", "rar5_encrypted_filenames.rar",
    "rar_encryption_data.rar", "7zip_encryption.7z", "7zip_encryption_header.7z",
    "zip_encryption_data.zip", "zip_traditional_encryption_data.zip",
])
def test_encrypted_fixtures(libarchive_fixture, tmp_path, name):
    _, files, findings = unpacked(libarchive_fixture(name), tmp_path)
    assert findings == ["archive.encrypted"] and files == []


def test_unencrypted_7z_fixture_is_a_near_miss(libarchive_fixture, tmp_path):
    _, files, findings = unpacked(libarchive_fixture("7zip_lzma2.7z"), tmp_path)
    assert files == ["file1"] and findings == []


# ------------------------------------------------------------------ corrupt

def test_malformed_7z_is_corrupt(libarchive_fixture, tmp_path):
    _, files, findings = unpacked(libarchive_fixture("7zip_malformed.7z"), tmp_path)
    assert findings == ["archive.corrupt"] and files == []


def test_truncated_zip_is_corrupt(tmp_path):
    archive = tmp_path / "t.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("a.bin", os.urandom(50000))
    archive.write_bytes(archive.read_bytes()[:20000])
    _, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.corrupt"] and files == []


def test_failed_extraction_leaves_nothing_to_judge(tmp_path):
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("a.txt", b"A" * 5000)
        bundle.writestr("b.txt", b"B" * 5000)
    data = bytearray(archive.read_bytes())
    spot = data.index(b"B" * 100)
    data[spot:spot + 10] = b"C" * 10  # b.txt's CRC no longer matches
    archive.write_bytes(bytes(data))
    package, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.corrupt"] and files == []
    # a.txt was extracted before the failure, then removed with the rest
    leftovers = [p.name for p in (tmp_path / "work").rglob("*") if p.is_file()]
    assert "a.txt" not in leftovers


# ------------------------------------------------------------------ split sets

def test_rar5_split_set_complete(libarchive_fixture, tmp_path):
    names = [f"rar5_multiarchive.part{n:02d}.rar" for n in range(1, 9)]
    first = libarchive_fixture(*names)
    package, files, findings = unpacked(first.parent, tmp_path)
    assert findings == [] and len(files) == 2
    assert package.unpacked_bytes > 100_000


def test_rar5_split_set_missing_part_is_named(libarchive_fixture, tmp_path):
    names = [f"rar5_multiarchive.part{n:02d}.rar" for n in range(1, 9) if n != 3]
    first = libarchive_fixture(*names)
    package, files, findings = unpacked(first.parent, tmp_path)
    assert findings == ["archive.corrupt"] and files == []
    assert "rar5_multiarchive.part03.rar" in archive_findings(package.problems)[0].message


def test_first_volume_alone_names_the_next(libarchive_fixture, tmp_path):
    first = libarchive_fixture("rar5_multiarchive.part01.rar")
    package, files, findings = unpacked(first, tmp_path)
    assert findings == ["archive.corrupt"] and files == []
    assert "part02" in archive_findings(package.problems)[0].message


def test_7z_volumes_made_by_7zz(tmp_path):
    source = tmp_path / "src" / "大项目"
    source.mkdir(parents=True)
    (source / "v.mp4").write_bytes(os.urandom(300_000))
    out = tmp_path / "send"
    out.mkdir()
    subprocess.run(["7zz", "a", "-bd", "-v100k", str(out / "大项目.7z"), str(source)], check=True, capture_output=True)
    assert len(list(out.iterdir())) >= 3
    _, files, findings = unpacked(out, tmp_path)
    assert files == ["大项目/v.mp4"] and findings == []
    (out / "大项目.7z.002").unlink()
    package, files, findings = unpacked(out, tmp_path / "again")
    assert findings == ["archive.corrupt"] and "大项目.7z.002" in archive_findings(package.problems)[0].message


def test_volume_names():
    assert split_volume("a.part01.rar").index == 1
    assert split_volume("a.r00").index == 2
    assert split_volume("a.7z.003").index == 3
    assert split_volume("a.z01").fmt == "zip"
    assert split_volume("a.rar") is None
    sets, rest = group_archives([Path("x.part1.rar"), Path("x.part3.rar"), Path("v.mp4")])
    assert sets[0].missing == ["x.part2.rar"] and rest == [Path("v.mp4")]


# ------------------------------------------------------------------ hostile input

def test_zip_slip_entry_is_refused_and_nothing_escapes(tmp_path):
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ok.txt", b"fine")
        bundle.writestr(zipfile.ZipInfo("../../escaped.txt"), b"evil")
    _, files, findings = unpacked(archive, tmp_path)
    assert "archive.unsafe_path" in findings and files == []
    assert not list(tmp_path.parent.rglob("escaped.txt"))


def test_absolute_entry_is_refused(tmp_path):
    archive = tmp_path / "abs.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(zipfile.ZipInfo("/tmp/intake-absolute-test.txt"), b"evil")
    _, _, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.unsafe_path"]
    assert not Path("/tmp/intake-absolute-test.txt").exists()


def test_symlink_entry_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("photo.jpg")
        info.external_attr = 0o120777 << 16
        bundle.writestr(info, "/etc/passwd")
    _, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.unsafe_path"] and files == []


def test_symlink_in_a_folder_package_is_not_followed(tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "a.docx").write_bytes(b"x")
    os.symlink("/etc/passwd", folder / "photo.jpg")
    _, files, findings = unpacked(folder, tmp_path)
    assert files == ["a.docx"] and findings == ["archive.unsafe_path"]


def test_tar_with_hardlink_and_symlink_is_refused(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    os.link(source / "a.txt", source / "b.txt")
    os.symlink("../../outside", source / "c.txt")
    archive = tmp_path / "links.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(source), "."], check=True)
    _, files, findings = unpacked(archive, tmp_path)
    assert "archive.unsafe_path" in findings and files == []


# ------------------------------------------------------------------ limits

@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory) -> Path:
    """3 GiB of zeros in a ~3 MB zip, streamed so the test never holds 3 GiB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        info = zipfile.ZipInfo("zeros.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with bundle.open(info, "w", force_zip64=True) as entry:
            for _ in range(3 * 64):
                entry.write(chunk)
    return path


def test_zip_bomb_is_refused_without_writing_it(zip_bomb, tmp_path):
    assert zip_bomb.stat().st_size < 5 << 20
    package, files, findings = unpacked(zip_bomb, tmp_path)
    assert findings == ["archive.too_large"] and files == []
    assert disk_usage(tmp_path / "work") < 10 << 20
    assert "压缩比" in archive_findings(package.problems)[0].message


def test_large_but_ordinary_entry_is_a_near_miss(tmp_path):
    # 1 MiB of random data compresses at ~1:1: far below any limit
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("v.mp4", os.urandom(1 << 20))
    _, files, findings = unpacked(archive, tmp_path)
    assert files == ["v.mp4"] and findings == []


def test_disk_cap_stops_an_archive_that_lies_about_its_size(tmp_path):
    # Bypass the listing (which would refuse it) to prove the running guard holds.
    archive = tmp_path / "z.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("zeros.bin", bytes(40 << 20))
    outcome = run_extraction(archive, tmp_path / "out", "zip", cap_bytes=4 << 20, timeout=60)
    assert not outcome.ok and outcome.reason == "disk"
    assert disk_usage(tmp_path / "out") <= (4 << 20) + 1


def test_timeout_kills_the_extraction(zip_bomb, tmp_path):
    outcome = run_extraction(zip_bomb, tmp_path / "out", "zip", cap_bytes=8 << 30, timeout=0.5)
    assert not outcome.ok and outcome.reason == "timeout"
    shutil.rmtree(tmp_path / "out")


def test_total_size_limit(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("a.bin", os.urandom(300_000))
    _, _, findings = unpacked(archive, tmp_path / "1", tight_policy(max_total_bytes=200_000).archive)
    assert findings == ["archive.too_large"]
    _, _, findings = unpacked(archive, tmp_path / "2", tight_policy(max_total_bytes=400_000).archive)
    assert findings == []


def test_entry_count_limit(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for n in range(6):
            bundle.writestr(f"f{n}.txt", b"x")
    _, _, findings = unpacked(archive, tmp_path / "1", tight_policy(max_entries=5).archive)
    assert findings == ["archive.too_large"]
    _, files, findings = unpacked(archive, tmp_path / "2", tight_policy(max_entries=6).archive)
    assert findings == [] and len(files) == 6


def _nest(tmp_path: Path, levels: int) -> Path:
    payload = tmp_path / "payload.txt"
    payload.write_text("deep")
    current, name = payload, "payload.txt"
    for level in range(levels):
        archive = tmp_path / f"level{level}.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.write(current, name)
        current, name = archive, archive.name
    return current


def test_nesting_depth_three_passes_four_fails(tmp_path):
    (tmp_path / "a").mkdir()
    _, files, findings = unpacked(_nest(tmp_path / "a", 3), tmp_path / "a")
    assert findings == [] and files == ["level1/level0/payload.txt"]
    (tmp_path / "b").mkdir()
    _, files, findings = unpacked(_nest(tmp_path / "b", 4), tmp_path / "b")
    assert findings == ["archive.too_large"] and files == []


def test_folder_with_raw_gbk_names_on_disk(tmp_path):
    # what `unzip` or 7zz leave behind when a staff member unpacks a GBK zip by hand
    folder = tmp_path / "pkg"
    folder.mkdir()
    raw_dir = os.fsdecode("项目一".encode("gbk"))
    (folder / raw_dir).mkdir()
    (folder / raw_dir / os.fsdecode("作品说明.docx".encode("gbk"))).write_bytes(b"x")
    _, files, _ = unpacked(folder, tmp_path)
    assert files == ["项目一/作品说明.docx"]


def test_tar_with_gbk_names(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / os.fsdecode("作品说明.docx".encode("gbk"))).write_bytes(b"x")
    archive = tmp_path / "p.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(source), "."], check=True)
    _, files, findings = unpacked(archive, tmp_path)
    assert files == ["作品说明.docx"] and findings == []


def test_utf8_names_without_the_flag_stay_utf8(tmp_path):
    # Info-ZIP on Linux and macOS Archive Utility write UTF-8 bytes without bit 11
    source = tmp_path / "src" / "项目A"
    source.mkdir(parents=True)
    (source / "视频.mp4").write_bytes(b"v")
    archive = tmp_path / "mac.zip"
    subprocess.run(["zip", "-q", "-r", str(archive), "项目A"], cwd=source.parent, check=True)
    with zipfile.ZipFile(archive) as check:
        assert not any(i.flag_bits & 0x800 for i in check.infolist())
    _, files, _ = unpacked(archive, tmp_path)
    assert files == ["项目A/视频.mp4"]


def test_info_zip_split_set(tmp_path):
    source = tmp_path / "src" / "项目A"
    source.mkdir(parents=True)
    (source / "v.mp4").write_bytes(os.urandom(300_000))
    out = tmp_path / "send"
    out.mkdir()
    subprocess.run(["zip", "-q", "-r", "-s", "100k", str(out / "包.zip"), "项目A"], cwd=source.parent, check=True)
    assert sorted(p.name for p in out.iterdir()) == ["包.z01", "包.z02", "包.zip"]
    _, files, findings = unpacked(out, tmp_path / "1")
    assert files == ["项目A/v.mp4"] and findings == []
    (out / "包.z02").unlink()
    package, files, findings = unpacked(out, tmp_path / "2")
    assert findings == ["archive.corrupt"] and files == []
    assert "“包.z02”" in archive_findings(package.problems)[0].message


# ------------------------------------------------------------------ found in review

def test_7z_with_a_zip_appended_is_judged_as_the_7z(tmp_path):
    # Python's zipfile reads the directory at the end, 7-Zip the signature at the start:
    # both must see the same archive, so the limits apply to what is really unpacked.
    source = tmp_path / "src"
    source.mkdir()
    for n in range(8):
        (source / f"f{n}.txt").write_text("x")
    inner = tmp_path / "real.7z"
    subprocess.run(["7zz", "a", "-bd", str(inner), str(source)], check=True, capture_output=True)
    decoy = tmp_path / "decoy.zip"
    with zipfile.ZipFile(decoy, "w") as bundle:
        bundle.writestr("readme.txt", b"hello")
    poly = tmp_path / "poly.zip"
    poly.write_bytes(inner.read_bytes() + decoy.read_bytes())
    _, _, findings = unpacked(poly, tmp_path / "1", tight_policy(max_entries=5).archive)
    assert findings == ["archive.too_large"]  # 9 entries of the 7z, not the decoy's 1


def test_renamed_rar_is_unpacked_as_rar(libarchive_fixture, tmp_path):
    fixture = libarchive_fixture("rar5_compressed.rar")
    renamed = fixture.rename(fixture.with_name("材料.zip"))
    _, files, findings = unpacked(renamed, tmp_path)
    assert files == ["test.bin"] and findings == []


def test_self_extractor_style_zip_is_not_unpacked(tmp_path):
    archive = tmp_path / "setup.zip"
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as bundle:
        bundle.writestr("a.txt", b"a")
    archive.write_bytes(b"MZ" + os.urandom(5000) + (tmp_path / "plain.zip").read_bytes())
    _, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.corrupt"] and files == []


def zeros_tar_gz(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        bundle.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_tar_gz_bomb_is_refused_by_the_whole_archive_ratio(tmp_path):
    # tar has no per-entry packed size; the archive's own size is the yardstick
    archive = zeros_tar_gz(tmp_path / "z.tar.gz", 200 << 20)
    assert archive.stat().st_size < 1 << 20
    _, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.too_large"] and files == []


def test_tar_listing_has_a_timeout(tmp_path):
    from intake.parsers.archive_listing import ListingFailed, _list_tar

    archive = zeros_tar_gz(tmp_path / "z.tar.gz", 300 << 20)
    with pytest.raises(ListingFailed):
        _list_tar(archive, timeout=0.05)
    assert _list_tar(archive)[0].size == 300 << 20


def test_undecodable_tar_names_never_reach_the_report_as_surrogates(tmp_path):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w", encoding="utf-8", errors="surrogateescape") as bundle:
        info = tarfile.TarInfo(os.fsdecode(b"../\xff\xfe.txt"))
        info.size = 1
        bundle.addfile(info, io.BytesIO(b"x"))
    package, _, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.unsafe_path"]
    archive_findings(package.problems)[0].message.encode("utf-8")  # no lone surrogates


def test_relative_paths_work(tmp_path, monkeypatch):
    # the extraction runs in its output folder: relative paths must not break it
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile("a.zip", "w") as bundle:
        bundle.writestr("项目/v.mp4", b"v")
    package = unpack(Path("a.zip"), Path("work"), LIMITS)
    assert [f.rel for f in package.files] == ["项目/v.mp4"] and package.problems == []


def test_a_corrupt_archive_whose_names_hold_minus_25_is_corrupt_not_too_large(tmp_path):
    # 7-Zip prints the failing entry's name; "-25" in it once read as "killed by SIGXFSZ"
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("视频-25秒/a-25.txt", b"A" * 5000)
        bundle.writestr("视频-25秒/b-25.txt", b"B" * 5000)
    data = bytearray(archive.read_bytes())
    spot = data.index(b"B" * 100)
    data[spot:spot + 10] = b"C" * 10  # b-25.txt's CRC no longer matches
    archive.write_bytes(bytes(data))
    outcome = run_extraction(archive, tmp_path / "out", "zip", cap_bytes=1 << 30, timeout=60)
    assert not outcome.ok and outcome.reason == "failed" and "-25" in outcome.detail  # the name is printed
    _, files, findings = unpacked(archive, tmp_path)
    assert findings == ["archive.corrupt"] and files == []


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_a_file_over_the_size_limit_is_told_by_the_exit_status(tmp_path, fmt):
    # RLIMIT_FSIZE stops the write: 7-Zip dies of SIGXFSZ, the Python tar worker exits 3
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    archive = tmp_path / f"big.{fmt}"
    if fmt == "zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
            bundle.write(big, "big.bin")
    else:
        with tarfile.open(archive, "w") as bundle:
            bundle.add(big, "big.bin")
    limit = 1 << 20
    proc = subprocess.run(extraction_command(archive, tmp_path / "out", fmt), cwd=tmp_path, capture_output=True,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}, timeout=60)
    assert proc.returncode == (-signal.SIGXFSZ if fmt == "zip" else 3)
    assert _died_of_file_size(proc.returncode, fmt) and not _died_of_file_size(1, fmt)


def test_every_archive_problem_has_its_finding_in_chinese():
    # the parsers say what went wrong as data; intake.validators.archive words each case once
    for kind, reasons in PROBLEM_REASONS.items():
        for reason in reasons:
            (finding,) = archive_findings([ArchiveProblem(kind, reason, "包.zip", "包.zip", entry="a.txt")])
            assert finding.code == kind and finding.path == "包.zip"
            assert "“" in finding.message and finding.message.endswith("。"), (reason, finding.message)
    with pytest.raises(ValueError):
        ArchiveProblem("archive.corrupt", "timeout", "包.zip")
