"""Unpack a package (a folder, an archive, or a folder holding archives) safely.

``unpack(source, workdir, limits)`` returns a Package: every regular file the sender
sent, with its path relative to the package root (names decoded), plus the findings
of everything that could not be unpacked. It never raises for bad input.

Per archive: list the entries first (size, encryption, links, names) and refuse what
breaks the policy's limits; extract with patool in a child process under a timeout,
a file-size rlimit and a watched disk cap; then walk the result with lstat and drop
anything that is not a plain file inside the root. Nothing is written outside
``workdir``. Output of a failed extraction is deleted, never judged.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from intake.kernel.findings import Finding
from intake.kernel.policy import ArchiveLimits

# Formats we unpack, and the program patool should use for each (chosen, not guessed:
# unrar-free cannot decrypt and mangles split sets; 7zz in Debian has no RAR codec).
PROGRAMS = {"zip": "7zz", "7z": "7zz", "rar": "unar", "tar": "py_tarfile"}

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


@dataclass(frozen=True)
class PackageFile:
    rel: str  # POSIX path relative to the package root, decoded
    path: Path  # where the bytes are on disk
    size: int


@dataclass
class Package:
    root_name: str
    files: list[PackageFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unpacked_bytes: int = 0
    entries: int = 0


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
    def __init__(self, kind: str, detail: str = ""):
        super().__init__(detail or kind)
        self.kind = kind  # "encrypted" | "corrupt"
        self.detail = detail


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


def split_volume(name: str) -> Volume | None:
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


@dataclass
class ArchiveSet:
    head: Path  # the file to hand to the tool
    parts: list[Path]
    fmt: str
    missing: list[str]
    next_part: str | None = None  # for split sets: the name a further part would have


def group_archives(files: list[Path]) -> tuple[list[ArchiveSet], list[Path]]:
    """Split a folder's files into archive sets (split volumes grouped) and the rest."""
    sets: dict[str, dict] = {}
    plain_archives: dict[str, Path] = {}
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
            plain_archives[path.name.lower()] = path
        else:
            others.append(path)

    result: list[ArchiveSet] = []
    for key, group in sets.items():
        base, style = key.rsplit("|", 1)
        parts = group["parts"]
        # The closing/opening plain file of old-style sets belongs to the set.
        if style == "rNN":
            opener = plain_archives.pop(f"{base}.rar".lower(), None)
            if opener:
                parts[1] = opener
        if style == "zNN":
            closer = plain_archives.pop(f"{base}.zip".lower(), None)
            if closer:
                # the .zip closes the set; its directory record says how many parts
                count = zip_disk_count(closer) or max(parts) + 1
                parts[max(count, max(parts) + 1)] = closer
        width = max(len(re.search(r"(\d+)\D*$", n).group(1)) for n in group["names"])
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
    for path in plain_archives.values():
        result.append(ArchiveSet(path, [path], archive_format(path), []))
    result.sort(key=lambda s: s.head.name)
    return result, sorted(others)


# ---------------------------------------------------------------- listing

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


def _list_zip(path: Path) -> list[Entry]:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = []
            for info in archive.infolist():
                name, raw = zip_entry_name(info)
                mode = info.external_attr >> 16
                entries.append(Entry(
                    name=name, size=info.file_size, packed=info.compress_size,
                    encrypted=bool(info.flag_bits & 0x1), is_dir=info.is_dir(),
                    is_link=stat.S_ISLNK(mode), raw_name=raw,
                ))
            return _prefer_utf8(entries)
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
    (this_disk,) = struct.unpack_from("<H", tail, at + 4)
    return this_disk + 1


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
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
    proc = _run([sys.executable, "-m", "intake.parsers._extract_worker", "--list-tar", str(path)], timeout,
                env={**os.environ, "PYTHONPATH": _import_root()})
    if proc.returncode != 0:
        raise ListingFailed("corrupt", proc.stderr.decode("utf-8", "replace").strip()[-300:])
    entries = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        item = json.loads(line)
        entries.append(Entry(name=display_name(item["name"]), size=int(item["size"]),
                             is_dir=item["dir"], is_link=item["link"]))
    return entries


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


def list_entries(head: Path, fmt: str) -> list[Entry]:
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
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return True
    return ".." in PurePosixPath(normalised).parts


# ---------------------------------------------------------------- extraction

@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # "" | "timeout" | "disk" | "failed"
    detail: str = ""


def disk_usage(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def run_extraction(head: Path, outdir: Path, fmt: str, cap_bytes: int, timeout: float) -> Outcome:
    """Extract with patool in a child process group; kill it at the timeout or the cap."""
    head, outdir = Path(head).resolve(), Path(outdir).resolve()  # the child runs in outdir
    outdir.mkdir(parents=True, exist_ok=True)
    file_limit = max(cap_bytes, 1) + 1

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    cmd = extraction_command(head, outdir, fmt)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=limit_file_size,
        cwd=str(outdir), env={**os.environ, "PYTHONPATH": _import_root()},
    )
    started = time.monotonic()
    reason = ""
    while True:
        try:
            _, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - started > timeout:
                reason = "timeout"
            elif disk_usage(outdir) > cap_bytes:
                reason = "disk"
            if reason:
                _kill_group(proc)
                _, err = proc.communicate()
                break
    detail = err.decode("utf-8", "replace").strip()[-500:]
    if not reason and disk_usage(outdir) > cap_bytes:
        reason = "disk"
    if not reason and proc.returncode != 0:
        reason = "disk" if _died_of_file_size(proc.returncode, fmt) else "failed"
    return Outcome(ok=not reason, reason=reason, detail=detail)


def extraction_command(head: Path, outdir: Path, fmt: str) -> list[str]:
    """The command patool builds for the chosen backend, run by us under our limits.

    For tar, patool extracts in Python (tarfile with its data filter), so that runs in
    a child Python process (intake.parsers._extract_worker); for the others we run the
    backend patool names directly, which spares a Python start per archive.
    """
    if fmt == "tar":
        return [sys.executable, "-m", "intake.parsers._extract_worker", fmt, PROGRAMS[fmt], str(head), str(outdir)]
    import patoolib

    exe = patoolib.find_archive_program(fmt, "extract", program=PROGRAMS[fmt])
    build = patoolib.get_archive_cmdlist_func(exe, "extract", fmt)
    return [str(part) for part in build(str(head), None, exe, -1, False, str(outdir))]


def _died_of_file_size(returncode: int, fmt: str) -> bool:
    """Decided by the exit status alone: the tool's output carries the sender's file
    names, so no substring of it may decide (an entry named "x-25.mp4" once made a
    corrupt archive "too large"). 7-Zip and unar are killed by SIGXFSZ; our Python
    worker (tar) ignores the signal, gets EFBIG and exits with its own code."""
    from intake.parsers._extract_worker import EXIT_FILE_TOO_LARGE

    return returncode == -signal.SIGXFSZ or (fmt == "tar" and returncode == EXIT_FILE_TOO_LARGE)


def _incomplete(outdir: Path, entries: list[Entry]) -> bool:
    """True when the tool said yes but wrote less than the archive declares.

    unar given the first of several RAR volumes, or bsdtar on an encrypted RAR,
    exit 0 having written nothing or zeros; the declared sizes tell.
    """
    declared = sum(e.size for e in entries if not e.is_dir and not e.is_link)
    return disk_usage(outdir) < declared


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _import_root() -> str:
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the intake package
    existing = os.environ.get("PYTHONPATH")
    return f"{here}{os.pathsep}{existing}" if existing else here


def audit_tree(root: Path) -> list[str]:
    """Remove everything under root that is not a plain file or folder inside it.

    Returns the relative paths removed: symlinks, hard links, devices, FIFOs,
    sockets. The tools we use refuse most of these already; this walk is the
    guarantee that a name like photo.jpg is never a link to /etc/passwd.
    """
    removed = []
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames) + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            unsafe = (
                stat.S_ISLNK(info.st_mode)
                or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))
                or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1)
                or not os.path.realpath(full).startswith(real_root + os.sep)
            )
            if unsafe:
                removed.append(os.path.relpath(full, root))
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)
                if name in dirnames:
                    dirnames.remove(name)
    return removed


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


def display_name(name: str) -> str:
    """A file-system name as text: undecodable bytes (a GBK name unpacked by a tool
    that kept the raw bytes) are read as GB18030, never left as surrogates."""
    raw = os.fsencode(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def _component_renames(entries: list[Entry]) -> dict[bytes, str]:
    renames = {}
    for entry in entries:
        if entry.raw_name is None:
            continue
        raw_parts = entry.raw_name.replace(b"\\", b"/").strip(b"/").split(b"/")
        decoded_parts = entry.name.replace("\\", "/").strip("/").split("/")
        if len(raw_parts) == len(decoded_parts):
            renames.update(zip(raw_parts, decoded_parts))
    return renames


# ---------------------------------------------------------------- the package

class _Unpacker:
    def __init__(self, workdir: Path, limits: ArchiveLimits, package: Package):
        self.workdir = workdir
        self.limits = limits
        self.package = package
        self.counter = 0

    def new_dir(self, label: str) -> Path:
        self.counter += 1
        path = self.workdir / f"{self.counter:04d}-{label}"
        path.mkdir(parents=True)
        return path

    def add(self, finding_code: str, message: str, rel: str | None) -> None:
        self.package.findings.append(Finding(finding_code, message, None, rel))

    # A folder: its files, its subfolders, and its archives (expanded in place).
    def walk_dir(self, real_dir: Path, rel_dir: str, depth: int) -> None:
        try:
            children = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as err:
            self.add("archive.corrupt", f"无法读取文件夹“{rel_dir or '.'}”：{err.strerror}。", rel_dir or None)
            return
        files = []
        for child in children:
            rel = _join(rel_dir, display_name(child.name))
            info = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                self.walk_dir(Path(child.path), rel, depth)
            elif stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                files.append(Path(child.path))
            elif stat.S_ISREG(info.st_mode) and depth == 0:
                files.append(Path(child.path))  # hard links are normal in a staff's own folder
            else:
                self.add("archive.unsafe_path", _unsafe_message(rel), rel)
        archive_sets, plain = group_archives(files)
        for path in plain:
            self.package.files.append(PackageFile(_join(rel_dir, display_name(path.name)), path, path.stat().st_size))
        for archive_set in archive_sets:
            head_name = display_name(archive_set.head.name)
            self.expand(archive_set, _join(rel_dir, head_name), _join(rel_dir, _archive_stem(head_name)), depth + 1)

    def expand(self, archive_set: ArchiveSet, rel_archive: str, rel_into: str, depth: int, collapse: bool = True) -> None:
        limits = self.limits
        name = archive_set.head.name
        if archive_set.missing:
            self.add("archive.corrupt", _missing_parts_message(name, archive_set.missing), rel_archive)
            return
        if depth > limits.max_depth:
            self.add("archive.too_large",
                     f"压缩包“{name}”嵌套层数超过 {limits.max_depth} 层（压缩包里套压缩包）。"
                     "请解开多余的压缩层，只保留一层压缩包后重新发送。", rel_archive)
            return
        staging = self.new_dir("in")
        head = _stage(archive_set, staging)
        if len(archive_set.parts) == 1:
            archive_set.fmt = content_format(head, archive_set.fmt)
        try:
            entries = list_entries(head, archive_set.fmt)
        except ListingFailed as failure:
            self._listing_failed(failure, name, rel_archive, archive_set)
            return
        if archive_set.next_part and not any(not e.is_dir for e in entries):
            # The tools list nothing when later volumes are missing.
            self.add("archive.corrupt", _missing_parts_message(name, [archive_set.next_part]), rel_archive)
            return
        if not self._entries_acceptable(entries, name, rel_archive, archive_set):
            return
        outdir = self.new_dir("out")
        remaining = limits.max_total_bytes - self.package.unpacked_bytes
        outcome = run_extraction(head, outdir, archive_set.fmt, remaining, limits.timeout_seconds)
        shutil.rmtree(staging, ignore_errors=True)
        if not outcome.ok:
            shutil.rmtree(outdir, ignore_errors=True)
            self._extraction_failed(outcome, name, rel_archive, archive_set)
            return
        if _incomplete(outdir, entries):
            shutil.rmtree(outdir, ignore_errors=True)
            self.add("archive.corrupt", _corrupt_message(name, archive_set), rel_archive)
            return
        removed = audit_tree(outdir)
        for rel in removed:
            self.add("archive.unsafe_path", _unsafe_message(_join(rel_archive, rel)), rel_archive)
        # zip: names decoded from the headers; every format: raw non-UTF-8 bytes as GB18030
        fix_names(outdir, _component_renames(entries))
        self.package.unpacked_bytes += disk_usage(outdir)
        real, rel_base = outdir, rel_into
        top = list(outdir.iterdir())
        if collapse and len(top) == 1 and top[0].is_dir():
            # zip of a single folder: avoid "项目1/项目1/…"
            real, rel_base = top[0], _join(_parent(rel_into), top[0].name)
        self.walk_dir(real, rel_base, depth)

    def _entries_acceptable(self, entries: list[Entry], name: str, rel_archive: str,
                            archive_set: ArchiveSet) -> bool:
        limits = self.limits
        package = self.package
        if any(e.encrypted for e in entries):
            self.add("archive.encrypted", _encrypted_message(name), rel_archive)
            return False
        unsafe = [e.name for e in entries if e.is_link or is_unsafe_name(e.name)]
        if unsafe:
            for entry_name in unsafe[:5]:
                self.add("archive.unsafe_path", _unsafe_message(_join(rel_archive, entry_name.lstrip("/"))), rel_archive)
            return False
        package.entries += len(entries)
        if package.entries > limits.max_entries:
            self.add("archive.too_large",
                     f"压缩包“{name}”中的文件过多（整个材料包超过 {limits.max_entries} 个文件）。"
                     "请只打包报送所需的视频、文档和题库后重新发送。", rel_archive)
            return False
        declared = sum(e.size for e in entries)
        if package.unpacked_bytes + declared > limits.max_total_bytes:
            self.add("archive.too_large",
                     f"压缩包“{name}”解压后约 {_human(declared)}，整个材料包超过 "
                     f"{_human(limits.max_total_bytes)} 的上限。请删除与报送无关的文件后重新发送。", rel_archive)
            return False
        packed_total = sum(p.stat().st_size for p in archive_set.parts)
        if declared > limits.bomb_entry_bytes and declared / max(packed_total, 1) > limits.bomb_ratio:
            # tar and solid 7z give no per-entry packed size: judge the whole archive
            self.add("archive.too_large",
                     f"压缩包“{name}”只有 {_human(packed_total)}，解压后却达 {_human(declared)}，"
                     f"压缩比超过 {limits.bomb_ratio:g}:1，不像正常的报送材料，已拒绝解压。"
                     "请检查压缩包内容后重新打包发送。", rel_archive)
            return False
        for entry in entries:
            if (entry.size > limits.bomb_entry_bytes and entry.packed
                    and entry.size / entry.packed > limits.bomb_ratio):
                self.add("archive.too_large",
                         f"压缩包“{name}”中的“{entry.name}”解压后达 {_human(entry.size)}，"
                         f"压缩比超过 {limits.bomb_ratio:g}:1，不像正常的报送材料，已拒绝解压。"
                         "请检查该文件后重新打包发送。", rel_archive)
                return False
        return True

    def _listing_failed(self, failure: ListingFailed, name: str, rel_archive: str, archive_set: ArchiveSet) -> None:
        if failure.kind == "encrypted":
            self.add("archive.encrypted", _encrypted_message(name), rel_archive)
        else:
            self.add("archive.corrupt", _corrupt_message(name, archive_set), rel_archive)

    def _extraction_failed(self, outcome: Outcome, name: str, rel_archive: str, archive_set: ArchiveSet) -> None:
        limits = self.limits
        if outcome.reason == "timeout":
            self.add("archive.too_large",
                     f"压缩包“{name}”解压超过 {limits.timeout_seconds:g} 秒仍未完成，已停止。"
                     "请确认压缩包内只有报送材料，或拆分为几个较小的压缩包后重新发送。", rel_archive)
        elif outcome.reason == "disk":
            self.add("archive.too_large",
                     f"压缩包“{name}”解压后的实际大小超过材料包上限 {_human(limits.max_total_bytes)}"
                     "（与压缩包声明的大小不符），已停止解压。请检查后重新打包发送。", rel_archive)
        elif re.search(r"password|encrypt|Wrong password", outcome.detail, re.I):
            self.add("archive.encrypted", _encrypted_message(name), rel_archive)
        else:
            self.add("archive.corrupt", _corrupt_message(name, archive_set), rel_archive)


def unpack(source: Path, workdir: Path, limits: ArchiveLimits) -> Package:
    """Unpack ``source`` (folder or archive) under ``workdir`` and list its files."""
    source = Path(source)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    package = Package(root_name=display_name(source.name))
    unpacker = _Unpacker(workdir, limits, package)
    if source.is_dir():
        unpacker.walk_dir(source, "", 0)
        return package
    fmt = archive_format(source)
    if fmt is None:
        # A single material (a video, say) checked on its own.
        package.files.append(PackageFile(display_name(source.name), source, source.stat().st_size))
        return package
    siblings = [p for p in source.parent.iterdir() if p.is_file()] if split_volume(source.name) else [source]
    sets, _ = group_archives(siblings)
    archive_set = next((s for s in sets if source in s.parts), ArchiveSet(source, [source], fmt, []))
    unpacker.expand(archive_set, display_name(source.name), "", 1, collapse=False)
    return package


# ---------------------------------------------------------------- helpers

def _stage(archive_set: ArchiveSet, staging: Path) -> Path:
    """Link (or copy) the set's parts alone into a fresh folder.

    Tools look for sibling volumes by name (lsar even picked an unrelated
    ``rar4_…`` file as a volume of ``rar5_…``); a folder holding only this set
    makes that impossible, and the tool never sees the sender's other files.
    """
    for part in archive_set.parts:
        target = staging / part.name
        try:
            os.link(part, target)
        except OSError:
            shutil.copyfile(part, target)
    return staging / archive_set.head.name


def _archive_stem(name: str) -> str:
    lowered = name.lower()
    for suffix in TAR_DOUBLE_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    volume = split_volume(name)
    if volume:
        return volume.key.rsplit("|", 1)[0]
    return Path(name).stem or name


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} 字节"


def _encrypted_message(name: str) -> str:
    return (f"压缩包“{name}”设置了密码，无法解压。"
            "请取消密码（不加密压缩包及其中的文件）后重新打包发送。")


def _corrupt_message(name: str, archive_set: ArchiveSet) -> str:
    if len(archive_set.parts) > 1 or split_volume(name):
        return (f"分卷压缩包“{name}”无法解压，可能缺少最后的分卷或某个分卷已损坏。"
                "请将全部分卷一并重新发送，或改为不分卷的单个压缩包。")
    return (f"压缩包“{name}”无法读取，文件可能已损坏或未完整上传。"
            "请在本机确认能正常解压后，重新打包发送。")


def _missing_parts_message(name: str, missing: list[str]) -> str:
    listed = "、".join(f"“{m}”" for m in missing[:10])
    return (f"分卷压缩包“{name}”缺少分卷 {listed}，无法解压。"
            "请将全部分卷一并发送，或改为不分卷的单个压缩包。")


def _unsafe_message(rel: str) -> str:
    return (f"“{rel}”是链接、设备文件或指向材料包以外的路径，出于安全原因未予处理。"
            "请直接打包文件本身（不要包含快捷方式、链接或“..”路径）后重新发送。")
