"""Plain zips unpacked in this process; everything else by the tools, as before.

Starting 7-Zip costs about 18 ms per zip, more than reading a one-project zip. A zip is
extracted here when it is *plain*: one file that zipfile reads as exactly the listing
the limits were checked on, laid out as ordinary writers lay it out (one disk, local
headers that agree with the central directory, entries in order without overlap, the
directory whole), stored or deflated, not encrypted, with names that 7-Zip would write
to exactly the paths the listing decoded (no backslash, no duplicate, no file where a
folder goes, no folder spelt in two encodings). ``plan`` decides that before anything
is written and raises NeedsTool naming the first thing that is not plain; such a zip
goes to 7-Zip, so its findings stay the tool's. (Deflate64, bzip2 and LZMA entries are
rare in what senders' tools write and each would need a decoder loop of its own.)

zipfile reads the directory; the entries' bytes are read here, so that they are checked
as 7-Zip checks them (zipfile accepts a deflate stream that ends late or early, or a
size that a patched CRC agrees with): the compressed bytes used exactly, the declared
size exactly, then the CRC. The limits are the tool's: every entry is streamed to disk
in 1 MiB slices, the bytes really written count against the disk cap (and no entry gets
past its declared size: a header that understates a size is not trusted), and the
wall-clock timeout is checked between slices; all three after every slice, so a bomb
entry stops within one slice (1 MiB) of a limit, and a slice that inflates to nothing
still counts for the timeout. The work runs on the judging child's CPU
budget, so a zip is only unpacked here when even a slow machine would use at most half
of the CPU time left; 7-Zip runs with its own. Any failure other than a limit is handed
to 7-Zip, which decides whether the zip is damaged, as it always has.
"""
from __future__ import annotations

import os
import resource
import shutil
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from intake.parsers.archive_listing import Entry, zip_entries
from intake.parsers.extraction import Outcome, run_extraction

CHUNK = 1 << 20  # bytes decompressed and written at a time
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
ASSUMED_BYTES_PER_CPU_SECOND = 50 << 20  # inflate runs at 300+ MiB/s here; a slow day is far above this
UNSUPPORTED_FLAGS = 0x0001 | 0x0040 | 0x2000  # encrypted, strong encryption, encrypted directory
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # a local file header, as zipfile spells it
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # a central directory record
_EOCD = struct.Struct("<4s4H2LH")  # the end-of-central-directory record
_EOCD_TAIL = 65_557  # the end-of-central-directory record and the longest comment


class NeedsTool(Exception):
    """The zip is not plain: 7-Zip extracts it (the message says why)."""


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    path: str  # relative POSIX path to write, decoded as the listing decoded it
    is_dir: bool
    data_at: int  # where its compressed bytes start in the file


def extract(head: Path, outdir: Path, fmt: str, entries: list[Entry], cap_bytes: int, timeout: float,
            in_process: bool = True) -> Outcome:
    """Extract ``head`` into ``outdir``: a plain zip here, anything else with its tool.

    ``entries`` is the listing the limits were checked on; a zip is only extracted here
    when it reads back as exactly that listing.
    """
    started = time.monotonic()
    if in_process and fmt == "zip":
        try:
            members = plan(head, entries)
        except NeedsTool:
            pass
        else:
            outcome = extract_in_process(head, outdir, members, cap_bytes, timeout)
            if outcome.ok or outcome.reason in ("timeout", "disk"):
                return outcome
            shutil.rmtree(outdir, ignore_errors=True)  # 7-Zip decides whether it is damaged
            timeout = max(timeout - (time.monotonic() - started), 0.0)
    return run_extraction(head, outdir, fmt, cap_bytes, timeout)


# ---------------------------------------------------------------- is it plain?

def plan(head: Path, entries: list[Entry]) -> list[Member]:
    """The members to write, in order, or NeedsTool when the zip is not plain."""
    try:
        with zipfile.ZipFile(head) as archive, open(head, "rb") as raw:
            if zip_entries(archive) != entries:
                raise NeedsTool("zipfile reads another listing")
            infos = archive.infolist()
            if not infos:
                raise NeedsTool("no entries")
            _check_directory(raw, len(infos), archive.start_dir)
            data_at = _check_layout(raw, infos, archive.start_dir)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError, LookupError) as err:
        raise NeedsTool(f"zipfile cannot read it: {err!r}") from None
    members = [_member(info, entry, data_at[info.header_offset]) for info, entry in zip(infos, entries)]
    _check_paths(members, entries)
    _check_cpu(sum(e.size for e in entries) + head.stat().st_size)
    return members


def _member(info: zipfile.ZipInfo, entry: Entry, data_at: int) -> Member:
    if info.flag_bits & UNSUPPORTED_FLAGS:
        raise NeedsTool(f"{entry.name}: encrypted")
    if info.compress_type not in METHODS:
        raise NeedsTool(f"{entry.name}: compression method {info.compress_type}")
    if "\\" in info.orig_filename or "\x00" in info.orig_filename:
        raise NeedsTool(f"{entry.name}: backslash or NUL in the name")  # 7-Zip keeps them
    if _has_unicode_path_field(info.extra) and (info.flag_bits & 0x800 or entry.raw_name is not None):
        raise NeedsTool(f"{entry.name}: an Info-ZIP Unicode Path field that was not used")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
    expected = stat.S_IFDIR if entry.is_dir else stat.S_IFREG
    if kind not in (0, expected) or (info.external_attr & 0x10 and not entry.is_dir):
        raise NeedsTool(f"{entry.name}: file type {kind:o}")  # a folder without its slash, a FIFO
    if entry.is_dir and info.file_size:
        raise NeedsTool(f"{entry.name}: a folder with content")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise NeedsTool(f"{entry.name}: stored with two sizes")
    return Member(info, entry.name.rstrip("/") if entry.is_dir else entry.name, entry.is_dir, data_at)


def _has_unicode_path_field(extra: bytes) -> bool:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x7075:
            return True
        pos += 4 + size
    return False


def _check_paths(members: list[Member], entries: list[Entry]) -> None:
    """Every member goes where 7-Zip would put it once renamed: one path per name."""
    files: set[str] = set()
    folders: set[str] = set()
    on_disk: dict[str, bytes] = {}  # decoded path -> the bytes 7-Zip would name it with
    for member, entry in zip(members, entries):
        parts = member.path.split("/")
        if any(part in ("", ".", "..") or len(part.encode("utf-8")) > 255 for part in parts):
            raise NeedsTool(f"{entry.name}: an empty, dot or over-long path component")
        if "\ufffd" in member.path or "\x00" in member.path:
            raise NeedsTool(f"{entry.name}: a name that does not decode")
        raw = entry.raw_name.rstrip(b"/") if entry.raw_name is not None else member.path.encode("utf-8")
        raw_parts = raw.split(b"/")
        if len(raw_parts) != len(parts):
            raise NeedsTool(f"{entry.name}: decoded name has other components than its bytes")
        for depth in range(1, len(parts) + 1):
            decoded, written = "/".join(parts[:depth]), b"/".join(raw_parts[:depth])
            if on_disk.setdefault(decoded, written) != written:
                raise NeedsTool(f"{entry.name}: two differently encoded names decode alike")
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        if member.is_dir:
            folders.add(member.path)
        elif member.path in files:
            raise NeedsTool(f"{entry.name}: a duplicate name")
        else:
            files.add(member.path)
    if files & folders:
        raise NeedsTool(f"{sorted(files & folders)[0]}: both a file and a folder")


def _check_directory(raw: BinaryIO, count: int, directory_at: int) -> None:
    """One disk, no Zip64 end record, and a central directory of exactly ``count``
    records that fills the space up to the end record zipfile found, which is whole."""
    size = raw.seek(0, os.SEEK_END)
    raw.seek(max(0, size - _EOCD_TAIL))
    tail = raw.read()
    at = tail.rfind(b"PK\x05\x06")  # where zipfile looks
    if at < 0 or at + _EOCD.size > len(tail):
        raise NeedsTool("no end-of-central-directory record")
    _, disk, directory_disk, on_disk, total, directory_size, directory_offset, comment = _EOCD.unpack_from(tail, at)
    if at + _EOCD.size + comment > len(tail):
        raise NeedsTool("the archive comment runs past the end")  # 7-Zip: unexpected end
    if (disk, directory_disk, on_disk, total, directory_offset) != (0, 0, count, count, directory_at):
        raise NeedsTool("a Zip64, split or miscounted end record")
    end_at = size - len(tail) + at
    position = directory_at
    for _ in range(count):
        raw.seek(position)
        record = raw.read(_CENTRAL.size)
        if len(record) < _CENTRAL.size or record[:4] != b"PK\x01\x02":
            raise NeedsTool("a central directory record is not where the previous one ends")
        name, extra, remark, first_disk = _CENTRAL.unpack(record)[12:16]
        if first_disk:
            raise NeedsTool("an entry on another disk")
        position += _CENTRAL.size + name + extra + remark
    if position != directory_at + directory_size or position != end_at:
        raise NeedsTool("the central directory does not end where the end record says")


def _check_layout(raw: BinaryIO, infos: list[zipfile.ZipInfo], directory_at: int) -> dict[int, int]:
    """Local headers that agree with the central directory, in order, without overlap;
    where each entry's data starts, by the offset of its header."""
    data_at = {}
    ordered = sorted(infos, key=lambda i: i.header_offset)
    if ordered[0].header_offset != 0:
        raise NeedsTool("data before the first entry")  # 7-Zip does not open such a file
    for index, info in enumerate(ordered):
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL.size)
        fields = _LOCAL.unpack(header)
        name = raw.read(fields[10])
        extra = raw.read(fields[11])
        _check_local_header(info, fields, name, extra)
        data_at[info.header_offset] = info.header_offset + _LOCAL.size + len(name) + len(extra)
        limit = ordered[index + 1].header_offset if index + 1 < len(ordered) else directory_at
        if data_at[info.header_offset] + info.compress_size > limit:
            raise NeedsTool(f"{info.orig_filename}: overlaps what follows")
    return data_at


def _check_local_header(info: zipfile.ZipInfo, fields: tuple, name: bytes, extra: bytes) -> None:
    signature, _, _, flags, method, _, _, crc, packed, size, _, _ = fields
    central_name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    differing = flags ^ info.flag_bits
    if method == zipfile.ZIP_DEFLATED:
        differing &= ~0x0006  # bits 1-2: the deflate level, no meaning for reading (7-Zip agrees)
    if name.isascii() and central_name.isascii():
        differing &= ~0x0800  # the UTF-8 flag says nothing about an ASCII name
    if signature != b"PK\x03\x04" or method != info.compress_type or differing or name != central_name:
        raise NeedsTool(f"{info.orig_filename}: local header differs from the central directory")
    if flags & 0x0008:
        return  # sizes and CRC follow the data (7-Zip does not compare them either)
    size, packed = _zip64_sizes(extra, size, packed)
    if (crc, packed, size) != (info.CRC, info.compress_size, info.file_size):
        raise NeedsTool(f"{info.orig_filename}: local sizes or CRC differ from the central directory")


def _zip64_sizes(extra: bytes, size: int, packed: int) -> tuple[int, int]:
    """The sizes a local header holds in its Zip64 field when the 32-bit ones are full."""
    if 0xFFFFFFFF not in (size, packed):
        return size, packed
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, pos + 4))
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if packed == 0xFFFFFFFF and values:
                packed = values.pop(0)
            break
        pos += 4 + length
    return size, packed


def _check_cpu(work_bytes: int) -> None:
    """Decline what could take more than half the CPU time the judging child has left
    (it is killed at its limit, and 7-Zip runs with its own)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
    if soft == resource.RLIM_INFINITY:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    left = soft - usage.ru_utime - usage.ru_stime
    if work_bytes / ASSUMED_BYTES_PER_CPU_SECOND > max(left, 0) / 2:
        raise NeedsTool(f"{work_bytes} bytes may need more than half of {left:.0f} CPU seconds left")


# ---------------------------------------------------------------- extraction

class _Damaged(Exception):
    """An entry's data is not what its headers say (7-Zip: Data Error, CRC Failed)."""


def extract_in_process(head: Path, outdir: Path, members: list[Member], cap_bytes: int,
                       timeout: float) -> Outcome:
    """Write ``members`` under ``outdir``, stopping at the disk cap or the timeout."""
    deadline = time.monotonic() + timeout
    outdir.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(outdir)
    written, path = 0, ""
    try:
        with open(head, "rb") as raw:
            for member in members:
                path = member.path
                if time.monotonic() >= deadline:
                    return Outcome(False, "timeout", "zipfile: timed out", via="zipfile")
                target = os.path.normpath(os.path.join(root, member.path))
                if os.path.commonpath([root, target]) != root:  # plan() refused this already
                    return Outcome(False, "failed", f"zipfile: {member.path} leaves the root", via="zipfile")
                if member.is_dir:
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                reason, written = _write(_entry_bytes(raw, member), target, written, cap_bytes, deadline)
                if reason:
                    return Outcome(False, reason, f"zipfile: {reason} at {member.path}", via="zipfile")
    except (_Damaged, zlib.error, OSError) as err:
        return Outcome(False, "failed", f"zipfile: {path}: {err}"[:500], via="zipfile")
    return Outcome(True, via="zipfile")


def _write(chunks: Iterator[bytes], target: str, written: int, cap_bytes: int,
           deadline: float) -> tuple[str, int]:
    """Stream one entry to a new file; the bytes written so far in the archive, and
    "disk" or "timeout" when a limit stopped it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(os.open(target, flags, 0o644), "wb") as sink:
        for chunk in chunks:
            written += len(chunk)
            if written > cap_bytes:
                return "disk", written
            sink.write(chunk)
            if time.monotonic() >= deadline:
                return "timeout", written
    return "", written


def _entry_bytes(raw: BinaryIO, member: Member) -> Iterator[bytes]:
    """An entry's bytes in slices of at most CHUNK, checked as 7-Zip checks them: never
    more than the declared size, the compressed data used exactly (a deflate stream
    that ends early or late is damaged, whatever zipfile would accept), and the CRC."""
    info = member.info
    raw.seek(member.data_at)
    left = info.compress_size  # compressed bytes not read yet
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    produced, crc, pending = 0, 0, b""
    while True:
        if not pending and left:
            pending = raw.read(min(CHUNK, left))
            if not pending:
                raise _Damaged("the file ends inside the entry")
            left -= len(pending)
        if inflater is None:
            chunk, pending = pending, b""
        else:
            chunk = inflater.decompress(pending, CHUNK)  # bounded: at most CHUNK bytes out
            pending = inflater.unconsumed_tail
        produced += len(chunk)
        if produced > info.file_size:
            raise _Damaged("more data than the header says")  # stopped at the declared size
        crc = zlib.crc32(chunk, crc)
        yield chunk  # even empty: the writer checks the deadline after every slice read
        if inflater.eof if inflater is not None else not (left or pending):
            break
        if not (chunk or pending or left):
            raise _Damaged("the compressed data ends before the stream")
    if left or pending or (inflater is not None and inflater.unused_data):
        raise _Damaged("data after the end of the stream")
    if produced != info.file_size or crc != info.CRC:
        raise _Damaged("size or CRC differs from the header")
