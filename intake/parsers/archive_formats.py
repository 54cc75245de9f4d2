"""What is an archive, and in which format: names, magic bytes and split volumes.

``archive_format(path)`` decides whether a file is unpacked at all (Office files are
zips, but they are materials); ``content_format`` says what the bytes really are;
``group_archives`` gathers the parts of split sets (``.part01.rar``, ``.r00``,
``.7z.001``, ``.zip.001``, ``.z01``) and names the parts that are missing.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARCHIVE_SUFFIXES = {
    ".zip": "zip", ".rar": "rar", ".7z": "7z", ".tar": "tar", ".tgz": "tar",
    ".tbz2": "tar", ".txz": "tar",
}
TAR_DOUBLE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")
# Office Open XML and friends are zip files, but they are materials.
MATERIAL_SUFFIXES = {
    ".docx", ".docm", ".dotx", ".xlsx", ".xlsm", ".xltx", ".pptx", ".ppsx",
    ".odt", ".ods", ".odp", ".wps", ".et", ".dps", ".epub", ".ofd", ".apk", ".jar",
}

MAGIC = [
    (0, b"PK\x03\x04", "zip"), (0, b"PK\x05\x06", "zip"), (0, b"PK\x07\x08", "zip"),
    (0, b"Rar!\x1a\x07", "rar"), (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (257, b"ustar", "tar"),
]


# ---------------------------------------------------------------- detection

def archive_format(path: Path) -> str | None:
    """The format to unpack ``path`` as, or None when it is not an archive."""
    name = path.name.lower()
    suffix = Path(name).suffix
    if suffix in MATERIAL_SUFFIXES:
        return None
    if name.endswith(TAR_DOUBLE_SUFFIXES):
        return "tar"
    volume = split_volume(path.name)
    if volume:
        return volume.fmt
    if suffix in ARCHIVE_SUFFIXES:
        return ARCHIVE_SUFFIXES[suffix]
    return _sniff(path) if suffix in ("", ".bin", ".dat", ".tmp") else None


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    for offset, magic, fmt in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return fmt
    return None


def content_format(path: Path, named: str) -> str:
    """The format the bytes say, which is what 7-Zip and unar will act on.

    A .zip that is really a RAR (renamed by the sender) is unpacked as RAR; a 7z
    with a zip appended is a 7z, not the small zip Python's zipfile would list from
    the end of the file. Listing and extraction must read the same archive.
    """
    sniffed = _sniff(path)
    if sniffed is not None:
        return sniffed
    if named == "zip" and not _starts_with(path, (b"PK",)):
        # a self-extractor or something else with a zip directory at its end: the
        # tools would not agree on what it holds, so it is not unpacked at all
        return "unknown"
    return named  # compressed tar: tarfile decides


def _starts_with(path: Path, prefixes: tuple[bytes, ...]) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4).startswith(prefixes)
    except OSError:
        return False


# ---------------------------------------------------------------- split volumes

@dataclass(frozen=True)
class Volume:
    key: str  # the set's name, shared by all its parts
    index: int  # 1-based order in the set
    fmt: str
    style: str  # how parts are named, for naming missing ones


_VOLUME_PATTERNS = [
    (re.compile(r"^(?P<base>.+)\.part(?P<n>\d+)\.rar$", re.I), "rar", "part"),
    (re.compile(r"^(?P<base>.+)\.r(?P<n>\d\d)$", re.I), "rar", "rNN"),
    (re.compile(r"^(?P<base>.+)\.7z\.(?P<n>\d{3})$", re.I), "7z", "7zNNN"),
    (re.compile(r"^(?P<base>.+)\.zip\.(?P<n>\d{3})$", re.I), "zip", "zipNNN"),
    (re.compile(r"^(?P<base>.+)\.z(?P<n>\d\d)$", re.I), "zip", "zNN"),
]
_TRAILING_NUMBER = re.compile(r"(\d+)\D*$")


def split_volume(name: str) -> Volume | None:
    """The set ``name`` is a part of, or None when it is not a volume of a split set."""
    for pattern, fmt, style in _VOLUME_PATTERNS:
        match = pattern.match(name)
        if match:
            n = int(match["n"])
            # .r00 is the second part of an old-style set (.rar is the first);
            # .z01 comes before the closing .zip.
            index = n + 2 if style == "rNN" else n
            return Volume(f"{match['base']}|{style}", index, fmt, style)
    return None


def _volume_name(base: str, style: str, index: int, width: int) -> str:
    if style == "part":
        return f"{base}.part{index:0{width}d}.rar"
    if style == "rNN":
        return f"{base}.rar" if index == 1 else f"{base}.r{index - 2:02d}"
    if style == "7zNNN":
        return f"{base}.7z.{index:03d}"
    if style == "zipNNN":
        return f"{base}.zip.{index:03d}"
    return f"{base}.z{index:02d}"


def _number_width(volume_name: str) -> int:
    match = _TRAILING_NUMBER.search(volume_name)  # every volume name ends in its number
    return len(match.group(1)) if match else 0


@dataclass
class ArchiveSet:
    head: Path  # the file to hand to the tool
    parts: list[Path]
    fmt: str
    missing: list[str]
    next_part: str | None = None  # for split sets: the name a further part would have


def group_archives(files: list[Path]) -> tuple[list[ArchiveSet], list[Path]]:
    """Split a folder's files into archive sets (split volumes grouped) and the rest."""
    sets: dict[str, dict[str, Any]] = {}
    plain_archives: dict[str, tuple[Path, str]] = {}
    others: list[Path] = []
    for path in files:
        volume = split_volume(path.name)
        if volume:
            group = sets.setdefault(volume.key, {"fmt": volume.fmt, "style": volume.style, "parts": {}, "names": []})
            group["parts"][volume.index] = path
            group["names"].append(path.name)
            continue
        fmt = archive_format(path)
        if fmt:
            plain_archives[path.name.lower()] = (path, fmt)
        else:
            others.append(path)

    result: list[ArchiveSet] = []
    for key, group in sets.items():
        base, style = key.rsplit("|", 1)
        parts: dict[int, Path] = group["parts"]
        # The closing/opening plain file of old-style sets belongs to the set.
        if style == "rNN":
            opener = plain_archives.pop(f"{base}.rar".lower(), None)
            if opener:
                parts[1] = opener[0]
        if style == "zNN":
            closer = plain_archives.pop(f"{base}.zip".lower(), None)
            if closer:
                # the .zip closes the set; its directory record says how many parts
                count = zip_disk_count(closer[0]) or max(parts) + 1
                parts[max(count, max(parts) + 1)] = closer[0]
        width = max(_number_width(n) for n in group["names"])
        missing = [
            _volume_name(base, style, i, width)
            for i in range(1, max(parts) + 1) if i not in parts
        ]
        if style == "zNN" and f"{base}.zip".lower() not in {p.name.lower() for p in parts.values()}:
            missing.append(f"{base}.zip")
        ordered = [parts[i] for i in sorted(parts)]
        if style == "zNN":
            head = ordered[-1]
        else:
            head = parts.get(1, ordered[0])
        next_part = None if style == "zNN" else _volume_name(base, style, max(parts) + 1, width)
        result.append(ArchiveSet(head, ordered, group["fmt"], missing, next_part))
    for path, fmt in plain_archives.values():
        result.append(ArchiveSet(path, [path], fmt, []))
    result.sort(key=lambda s: s.head.name)
    return result, sorted(others)


def zip_disk_count(path: Path) -> int | None:
    """How many parts a split zip has, from the end-of-central-directory record."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65_557))
            tail = fh.read()
    except OSError:
        return None
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 8 > len(tail):
        return None
    this_disk: int = struct.unpack_from("<H", tail, at + 4)[0]
    return this_disk + 1


def archive_stem(name: str) -> str:
    """The folder name an archive unpacks into: its name without archive suffixes."""
    lowered = name.lower()
    for suffix in TAR_DOUBLE_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    volume = split_volume(name)
    if volume:
        return volume.key.rsplit("|", 1)[0]
    return Path(name).stem or name
