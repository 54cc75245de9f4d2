"""List an archive's entries before anything is extracted, and decode their names.

``list_entries(head, fmt)`` reads sizes, encryption, links and names with zipfile
(7-Zip for what zipfile cannot read), 7-Zip, lsar or tarfile (in a child process,
under a timeout), and raises ListingFailed for an archive that is encrypted or
cannot be read. Names come out as text: zip names without the UTF-8 flag are read
as the Info-ZIP Unicode Path field or GB18030, what Chinese Windows writes.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from intake.parsers.extraction import WORKER, worker_env


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    packed: int | None = None
    encrypted: bool = False
    is_dir: bool = False
    is_link: bool = False
    raw_name: bytes | None = None  # zip: the bytes the header holds, when not UTF-8


class ListingFailed(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind  # "encrypted" | "corrupt"
        self.detail = detail


def list_entries(head: Path, fmt: str) -> list[Entry]:
    """The entries of the archive ``head`` (``fmt`` as content_format says)."""
    if fmt == "unknown":
        raise ListingFailed("corrupt", "content does not match the archive's name")
    if fmt == "zip":
        return _list_zip(head)
    if fmt == "7z":
        return _list_7zz(head)
    if fmt == "rar":
        return _list_lsar(head)
    return _list_tar(head)


def is_unsafe_name(name: str) -> bool:
    """True for an entry name that is absolute or climbs out of the root."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return True
    return ".." in PurePosixPath(normalised).parts


# ---------------------------------------------------------------- zip

def zip_entry_name(info: zipfile.ZipInfo) -> tuple[str, bytes | None]:
    """The decoded name of a zip entry and, when not UTF-8, its raw header bytes.

    UTF-8 flag (bit 11) -> as is; else the Info-ZIP Unicode Path field (0x7075) when
    its CRC matches the header name; else GB18030, what Chinese Windows writes.
    """
    if info.flag_bits & 0x800:
        return info.filename, None
    raw = info.orig_filename.encode("cp437")  # zipfile decoded the bytes as cp437
    unicode_path = _unicode_path_field(info.extra, raw)
    if unicode_path is not None:
        return unicode_path, None
    try:
        return raw.decode("gb18030"), raw
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace"), raw


def _unicode_path_field(extra: bytes, raw_name: bytes) -> str | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        pos += 4 + size
        if tag == 0x7075 and len(body) >= 5 and body[0] == 1:
            (crc,) = struct.unpack_from("<I", body, 1)
            if crc == zlib.crc32(raw_name) & 0xFFFFFFFF:
                try:
                    return body[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


def zip_entries(archive: zipfile.ZipFile) -> list[Entry]:
    """The entries of an open zip, in the order of its central directory, names decoded."""
    entries = []
    for info in archive.infolist():
        name, raw = zip_entry_name(info)
        mode = info.external_attr >> 16
        entries.append(Entry(
            name=name, size=info.file_size, packed=info.compress_size,
            encrypted=bool(info.flag_bits & 0x1), is_dir=info.filename.endswith("/"),  # is_dir() fails on ""
            is_link=stat.S_ISLNK(mode), raw_name=raw,
        ))
    return _prefer_utf8(entries)


def _list_zip(path: Path) -> list[Entry]:
    try:
        with zipfile.ZipFile(path) as archive:
            return zip_entries(archive)
    except zipfile.BadZipFile:
        # Split zips and some odd writers: let 7-Zip list it.
        return _list_7zz(path)
    except (OSError, ValueError, NotImplementedError, EOFError) as err:
        raise ListingFailed("corrupt", str(err)) from None


def _prefer_utf8(entries: list[Entry]) -> list[Entry]:
    """UTF-8 names written without the flag (macOS Archive Utility, Info-ZIP on Linux).

    When every unflagged non-ASCII name of the archive is valid UTF-8, the archive
    is UTF-8: GBK names of real packages are practically never all valid UTF-8,
    so GB18030 stays the rule for anything else.
    """
    raws = [e.raw_name for e in entries if e.raw_name is not None and not e.raw_name.isascii()]
    if not raws:
        return entries
    try:
        for raw in raws:
            raw.decode("utf-8")
    except UnicodeDecodeError:
        return entries
    return [
        Entry(e.raw_name.decode("utf-8"), e.size, e.packed, e.encrypted, e.is_dir, e.is_link, e.raw_name)
        if e.raw_name is not None else e
        for e in entries
    ]


# ---------------------------------------------------------------- the tools

def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        raise ListingFailed("corrupt", f"listing timed out: {cmd[0]}") from None


def _list_7zz(path: Path, timeout: float = 120) -> list[Entry]:
    proc = _run(["7zz", "l", "-slt", "-p-", "-sccUTF-8", "--", str(path)], timeout)
    out = proc.stdout.decode("utf-8", "surrogateescape")
    err = proc.stderr.decode("utf-8", "replace")
    if "Cannot open encrypted archive" in err or "Wrong password" in err:
        raise ListingFailed("encrypted", err.strip())
    if proc.returncode != 0 or "----------" not in out:
        raise ListingFailed("corrupt", err.strip() or out.strip()[-300:])
    entries = []
    for block in out.split("----------", 1)[1].split("\n\n"):
        fields = dict(
            line.split(" = ", 1) for line in block.strip().splitlines() if " = " in line
        )
        if "Path" not in fields:
            continue
        attributes = fields.get("Attributes", "")
        entries.append(Entry(
            name=display_name(fields["Path"]),
            size=int(fields.get("Size") or 0),
            packed=int(fields["Packed Size"]) if fields.get("Packed Size") else None,
            encrypted=fields.get("Encrypted") == "+",
            is_dir=fields.get("Folder") == "+" or attributes.startswith("D"),
            is_link=" l" in f" {attributes.split(' ', 1)[-1]}"[:3],
        ))
    return entries


def _list_lsar(path: Path, timeout: float = 120) -> list[Entry]:
    proc = _run(["lsar", "-j", "--", str(path)], timeout)
    out = proc.stdout.decode("utf-8", "replace")
    if "requires a password" in out or "requires a password" in proc.stderr.decode("utf-8", "replace"):
        raise ListingFailed("encrypted", "password required to list")
    try:
        data = json.loads(out)
    except ValueError:
        raise ListingFailed("corrupt", out.strip()[-300:]) from None
    if data.get("lsarError") or proc.returncode != 0:
        raise ListingFailed("corrupt", f"lsar error {data.get('lsarError')}")
    properties = data.get("lsarProperties", {})
    entries = []
    for item in data.get("lsarContents", []):
        encrypted = bool(item.get("XADIsEncrypted")) or any(
            key.startswith("RAR5Encryption") for key in item
        )
        entries.append(Entry(
            name=item.get("XADFileName", ""),
            size=int(item.get("XADFileSize") or 0),
            packed=item.get("XADCompressedSize"),
            encrypted=encrypted,
            is_dir=bool(item.get("XADIsDirectory")),
            is_link=bool(item.get("XADIsLink") or item.get("XADIsHardLink")),
        ))
    if properties.get("XADIsEncrypted") and not any(e.encrypted for e in entries):
        entries.append(Entry(name="", size=0, encrypted=True))
    return entries


def _list_tar(path: Path, timeout: float = 120) -> list[Entry]:
    proc = _run([sys.executable, "-m", WORKER, "--list-tar", str(path)], timeout, env=worker_env())
    if proc.returncode != 0:
        raise ListingFailed("corrupt", proc.stderr.decode("utf-8", "replace").strip()[-300:])
    entries = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        item = json.loads(line)
        entries.append(Entry(name=display_name(item["name"]), size=int(item["size"]),
                             is_dir=item["dir"], is_link=item["link"]))
    return entries


# ---------------------------------------------------------------- names on disk

def display_name(name: str) -> str:
    """A file-system name as text: undecodable bytes (a GBK name unpacked by a tool
    that kept the raw bytes) are read as GB18030, never left as surrogates."""
    raw = os.fsencode(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def fix_names(root: Path, renames: dict[bytes, str]) -> None:
    """Give extracted files their decoded names.

    7-Zip on Linux writes a zip name without the UTF-8 flag as its raw bytes; we
    rename each such component to the name decoded from the header (GB18030).
    A component that is still not UTF-8 is decoded as GB18030 as a last resort.
    """
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            raw = os.fsencode(name)
            decoded = renames.get(raw)
            if decoded is None:
                try:
                    raw.decode("utf-8")
                    continue
                except UnicodeDecodeError:
                    decoded = raw.decode("gb18030", errors="replace")
            decoded = decoded.replace("/", "_").replace("\x00", "")
            if decoded and decoded != name:
                target = os.path.join(dirpath, decoded)
                if not os.path.exists(target):
                    os.rename(os.path.join(dirpath, name), target)


def component_renames(entries: list[Entry]) -> dict[bytes, str]:
    """Raw name component -> decoded component, for the entries whose header was not UTF-8."""
    renames: dict[bytes, str] = {}
    for entry in entries:
        if entry.raw_name is None:
            continue
        raw_parts = entry.raw_name.replace(b"\\", b"/").strip(b"/").split(b"/")
        decoded_parts = entry.name.replace("\\", "/").strip("/").split("/")
        if len(raw_parts) == len(decoded_parts):
            renames.update(zip(raw_parts, decoded_parts))
    return renames
