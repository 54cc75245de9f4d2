"""intake.validators.photo on real JPGs made with Pillow."""

from __future__ import annotations

import pytest

from intake.kernel.policy import load_policy
from intake.samples import make_photo
from intake.validators.photo import check_photo, check_photos, read_dpi

RULES = load_policy("innovation").photo


def photo_codes(path):
    return [f.code for f in check_photo(path, path.name, "成果", RULES)]


def test_good_photo_passes(tmp_path):
    path = make_photo(tmp_path / "a.jpg")
    assert 1 << 20 <= path.stat().st_size <= 10 << 20
    assert photo_codes(path) == []


def test_jfif_dpi_below_300(tmp_path):
    findings = check_photo(make_photo(tmp_path / "a.jpg", dpi=(200, 200)), "a.jpg", "成果", RULES)
    assert [f.code for f in findings] == ["photo.low_dpi"] and "200×200 dpi" in findings[0].message


def test_missing_resolution_is_not_300(tmp_path):
    findings = check_photo(make_photo(tmp_path / "a.jpg", dpi=None), "a.jpg", "成果", RULES)
    assert [f.code for f in findings] == ["photo.low_dpi"] and "未标注" in findings[0].message


def test_exif_resolution_counts_when_jfif_has_none(tmp_path):
    assert photo_codes(make_photo(tmp_path / "a.jpg", dpi=None, exif_dpi=300)) == []
    assert photo_codes(make_photo(tmp_path / "b.jpg", dpi=None, exif_dpi=96)) == ["photo.low_dpi"]


@pytest.mark.parametrize("dots_per_cm,expected", [(118, []), (100, ["photo.low_dpi"])])
def test_dots_per_cm_are_converted(tmp_path, dots_per_cm, expected):
    path = make_photo(tmp_path / "a.jpg")
    data = bytearray(path.read_bytes())
    at = data.index(b"JFIF\x00") + 7  # units, then X and Y density
    data[at:at + 5] = bytes([2]) + dots_per_cm.to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))
    assert round(read_dpi(path)[0]) == round(dots_per_cm * 2.54)
    assert photo_codes(path) == expected


def test_half_a_megabyte_and_twelve_megabytes_are_bad_size(tmp_path):
    small = make_photo(tmp_path / "small.jpg", size=800)
    big = make_photo(tmp_path / "big.jpg", size=3800)
    assert small.stat().st_size < 1 << 20 and big.stat().st_size > 10 << 20
    assert photo_codes(small) == ["photo.bad_size"]
    assert photo_codes(big) == ["photo.bad_size"]


def test_png_named_jpg_is_not_jpg(tmp_path):
    path = make_photo(tmp_path / "a.jpg", fmt="PNG")
    assert photo_codes(path) == ["photo.not_jpg"]


def test_too_few(tmp_path):
    photos = [(make_photo(tmp_path / f"{n}.jpg"), f"{n}.jpg") for n in range(2)]
    assert [f.code for f in check_photos(photos, "成果", "成果", RULES)] == ["photo.too_few"]
    photos.append((make_photo(tmp_path / "3.jpg"), "3.jpg"))
    assert check_photos(photos, "成果", "成果", RULES) == []


def test_exif_resolution_without_a_unit_is_inches(tmp_path):
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    source = make_photo(tmp_path / "s.jpg", dpi=None)
    image = Image.open(source)
    exif = Image.Exif()
    exif[0x011A] = exif[0x011B] = IFDRational(300, 1)  # no ResolutionUnit tag
    image.save(tmp_path / "a.jpg", "JPEG", quality=90, exif=exif)
    assert read_dpi(tmp_path / "a.jpg") == (300.0, 300.0)
    assert photo_codes(tmp_path / "a.jpg") == []


def test_camera_mpo_jpeg_is_a_jpg(tmp_path):
    from PIL import Image

    first = Image.open(make_photo(tmp_path / "1.jpg"))
    second = Image.open(make_photo(tmp_path / "2.jpg", size=400))
    first.save(tmp_path / "camera.jpg", "MPO", save_all=True, append_images=[second], dpi=(300, 300), quality=90)
    assert Image.open(tmp_path / "camera.jpg").format == "MPO"
    assert photo_codes(tmp_path / "camera.jpg") == []
