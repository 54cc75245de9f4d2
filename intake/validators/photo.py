"""Innovation-result photos: at least N, JPG by content, >= 300 dpi, 1 MB to 10 MB each."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from intake.kernel.findings import Finding
from intake.kernel.policy import PhotoRules


def read_dpi(path: Path) -> tuple[float, float] | None:
    """Resolution from the JFIF header, else EXIF; None where the file states none.

    Read from the tags themselves rather than Pillow's ``info["dpi"]``: that stands
    in 72 dpi for an EXIF resolution without a unit, whose default is inches.
    """
    with Image.open(path) as image:
        unit = image.info.get("jfif_unit")
        density = image.info.get("jfif_density")
        if unit in (1, 2) and density and min(density) > 0:
            factor = 2.54 if unit == 2 else 1.0  # dots per cm
            return density[0] * factor, density[1] * factor
        exif = image.getexif()
    x, y = exif.get(0x011A), exif.get(0x011B)
    if x is None:
        return None
    unit = exif.get(0x0128, 2)  # 2 inches (the default), 3 centimetres
    factor = 2.54 if unit == 3 else 1.0
    try:
        x = float(x) * factor
        y = float(y if y is not None else x) * factor
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def image_format(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            return image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _mb(size: int) -> str:
    return f"{size / (1 << 20):.2f} MB"


def check_photo(path: Path, rel: str, project: str | None, rules: PhotoRules) -> list[Finding]:
    fmt = image_format(path)
    # cameras that embed a preview write MPO, which is a JPEG to every viewer
    if fmt not in ("JPEG", "MPO"):
        shown = fmt or "无法识别的格式"
        return [Finding("photo.not_jpg", f"照片“{rel}”的实际格式是 {shown}，不是 JPG。"
                        "请用原图导出为 JPG 格式（不要只改扩展名）后重新提交。", project, rel)]
    findings = []
    try:
        dpi = read_dpi(path)
    except Exception:  # Pillow raises several kinds on damaged files
        dpi = None
    if dpi is None or round(min(dpi)) < rules.min_dpi:
        stated = f"{round(dpi[0])}×{round(dpi[1])} dpi" if dpi else "未标注分辨率"
        findings.append(Finding(
            "photo.low_dpi",
            f"照片“{rel}”的分辨率为 {stated}，要求不低于 {rules.min_dpi} dpi。"
            f"请使用相机原图，或在图片软件中将分辨率设为 {rules.min_dpi} dpi 以上后导出 JPG。",
            project, rel))
    size = path.stat().st_size
    if not rules.min_bytes <= size <= rules.max_bytes:
        findings.append(Finding(
            "photo.bad_size",
            f"照片“{rel}”大小为 {_mb(size)}，要求在 {_mb(rules.min_bytes)} 至 {_mb(rules.max_bytes)} 之间。"
            "请使用清晰的原图，过大的照片请适当压缩后重新提交。",
            project, rel))
    return findings


def check_photos(photos: list[tuple[Path, str]], project: str | None, folder: str | None,
                 rules: PhotoRules) -> list[Finding]:
    findings = []
    if len(photos) < rules.min_count:
        findings.append(Finding(
            "photo.too_few",
            f"成果“{project}”只有 {len(photos)} 张照片，要求至少 {rules.min_count} 张。"
            f"请补充照片（JPG，不低于 {rules.min_dpi} dpi，每张 1 MB 至 10 MB）。",
            project, folder))
    for path, rel in photos:
        findings += check_photo(path, rel, project, rules)
    return findings
