"""Unpack a package (a folder, an archive, or a folder holding archives) safely.

``unpack(source, workdir, limits)`` returns a Package: every regular file the sender
sent, with its path relative to the package root (names decoded), plus the problems
(ArchiveProblem, typed data) of everything that could not be unpacked. It never
raises for bad input. The words for senders are written from the problems by
``intake.validators.archive``.

Per archive: list the entries first (size, encryption, links, names) and refuse what
breaks the policy's limits; extract a plain zip in this process with zipfile, and
anything else with patool's program in a child process, both under the same timeout
and disk cap (the child also under a file-size rlimit); then walk the result with lstat
and drop anything that is not a plain file inside the root. Nothing is written outside
``workdir``. Output of a failed extraction is deleted, never judged.

The parts: ``archive_formats`` (detection, split volumes), ``archive_listing``
(entries and names), ``zip_extraction`` (plain zips in process, the choice of path),
``extraction`` (the sandboxed child process); this module walks the package and decides.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from intake.kernel.budget import reading
from intake.kernel.policy import ArchiveLimits
from intake.parsers.archive_formats import (
    ArchiveSet, archive_format, archive_stem, content_format, group_archives, split_volume,
)
from intake.parsers.archive_listing import (
    Entry, ListingFailed, component_renames, display_name, fix_names, is_unsafe_name, list_entries,
)
from intake.parsers.extraction import Outcome, audit_tree, disk_usage
from intake.parsers.zip_extraction import extract

ENCRYPTED, CORRUPT, UNSAFE_PATH, TOO_LARGE = (
    "archive.encrypted", "archive.corrupt", "archive.unsafe_path", "archive.too_large",
)

# kind (the finding code a problem becomes) -> the reasons of that kind
PROBLEM_REASONS: dict[str, tuple[str, ...]] = {
    ENCRYPTED: ("password",),
    CORRUPT: ("folder_unreadable", "volumes_missing", "unreadable", "volumes_unreadable"),
    UNSAFE_PATH: ("unsafe",),
    TOO_LARGE: ("nesting", "entry_count", "total_size", "ratio", "entry_ratio", "timeout", "disk_cap"),
}


@dataclass(frozen=True)
class ArchiveProblem:
    """Something in the package that could not be unpacked, as data.

    Which fields are set depends on ``reason``; intake.validators.archive words it.
    """

    kind: str  # the finding code it becomes: one of PROBLEM_REASONS
    reason: str  # which case of that kind: one of PROBLEM_REASONS[kind]
    path: str | None  # package-relative path the finding points at
    archive: str | None = None  # the archive's file name (its head volume), as the message names it
    entry: str | None = None  # the file, folder or archive entry concerned (unsafe, entry_ratio, folder)
    size: int | None = None  # bytes declared when unpacked: the archive's (total_size, ratio) or the entry's
    packed: int | None = None  # bytes of the archive as sent, all its parts (ratio)
    limit: int | float | None = None  # the policy limit crossed: depth, entries, bytes, ratio or seconds
    missing: tuple[str, ...] = ()  # names of the missing volumes (volumes_missing)
    error: str | None = None  # the system's words (folder_unreadable)

    def __post_init__(self) -> None:
        if self.reason not in PROBLEM_REASONS.get(self.kind, ()):
            raise ValueError(f"unknown archive problem {self.kind!r}/{self.reason!r}")


@dataclass(frozen=True)
class PackageFile:
    rel: str  # POSIX path relative to the package root, decoded
    path: Path  # where the bytes are on disk
    size: int


@dataclass
class Package:
    root_name: str
    files: list[PackageFile] = field(default_factory=list)
    problems: list[ArchiveProblem] = field(default_factory=list)
    unpacked_bytes: int = 0
    entries: int = 0
    extracted_by: list[str] = field(default_factory=list)  # per archive: "zipfile" or the tool


class _Unpacker:
    def __init__(self, workdir: Path, limits: ArchiveLimits, package: Package, zip_in_process: bool) -> None:
        self.workdir = workdir
        self.limits = limits
        self.package = package
        self.zip_in_process = zip_in_process
        self.counter = 0

    def new_dir(self, label: str) -> Path:
        self.counter += 1
        path = self.workdir / f"{self.counter:04d}-{label}"
        path.mkdir(parents=True)
        return path

    def add(self, problem: ArchiveProblem) -> None:
        self.package.problems.append(problem)

    def unsafe(self, rel: str, path: str) -> None:
        self.add(ArchiveProblem(UNSAFE_PATH, "unsafe", path, entry=rel))

    def corrupt(self, name: str, rel_archive: str, archive_set: ArchiveSet) -> None:
        split = len(archive_set.parts) > 1 or split_volume(name)
        self.add(ArchiveProblem(CORRUPT, "volumes_unreadable" if split else "unreadable", rel_archive, name))

    def encrypted(self, name: str, rel_archive: str) -> None:
        self.add(ArchiveProblem(ENCRYPTED, "password", rel_archive, name))

    # A folder: its files, its subfolders, and its archives (expanded in place).
    def walk_dir(self, real_dir: Path, rel_dir: str, depth: int) -> None:
        try:
            children = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as err:
            self.add(ArchiveProblem(CORRUPT, "folder_unreadable", rel_dir or None, entry=rel_dir, error=err.strerror))
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
                self.unsafe(rel, rel)
        archive_sets, plain = group_archives(files)
        for path in plain:
            self.package.files.append(PackageFile(_join(rel_dir, display_name(path.name)), path, path.stat().st_size))
        for archive_set in archive_sets:
            head_name = display_name(archive_set.head.name)
            self.expand(archive_set, _join(rel_dir, head_name), _join(rel_dir, archive_stem(head_name)), depth + 1)

    def expand(self, archive_set: ArchiveSet, rel_archive: str, rel_into: str, depth: int, collapse: bool = True) -> None:
        limits = self.limits
        name = archive_set.head.name
        reading(rel_archive)  # a judgement stopped by its budget names the archive in hand
        if archive_set.missing:
            self.add(ArchiveProblem(CORRUPT, "volumes_missing", rel_archive, name, missing=tuple(archive_set.missing)))
            return
        if depth > limits.max_depth:
            self.add(ArchiveProblem(TOO_LARGE, "nesting", rel_archive, name, limit=limits.max_depth))
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
            self.add(ArchiveProblem(CORRUPT, "volumes_missing", rel_archive, name, missing=(archive_set.next_part,)))
            return
        if not self._entries_acceptable(entries, name, rel_archive, archive_set):
            return
        outdir = self.new_dir("out")
        remaining = limits.max_total_bytes - self.package.unpacked_bytes
        in_process = self.zip_in_process and len(archive_set.parts) == 1
        outcome = extract(head, outdir, archive_set.fmt, entries, remaining, limits.timeout_seconds, in_process)
        shutil.rmtree(staging, ignore_errors=True)
        self.package.extracted_by.append(outcome.via)
        if not outcome.ok:
            shutil.rmtree(outdir, ignore_errors=True)
            self._extraction_failed(outcome, name, rel_archive, archive_set)
            return
        if _incomplete(outdir, entries):
            shutil.rmtree(outdir, ignore_errors=True)
            self.corrupt(name, rel_archive, archive_set)
            return
        removed = audit_tree(outdir)
        for rel in removed:
            self.unsafe(_join(rel_archive, rel), rel_archive)
        # zip: names decoded from the headers; every format: raw non-UTF-8 bytes as GB18030
        fix_names(outdir, component_renames(entries))
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
            self.encrypted(name, rel_archive)
            return False
        unsafe = [e.name for e in entries if e.is_link or is_unsafe_name(e.name)]
        if unsafe:
            for entry_name in unsafe[:5]:
                self.unsafe(_join(rel_archive, entry_name.lstrip("/")), rel_archive)
            return False
        package.entries += len(entries)
        if package.entries > limits.max_entries:
            self.add(ArchiveProblem(TOO_LARGE, "entry_count", rel_archive, name, limit=limits.max_entries))
            return False
        declared = sum(e.size for e in entries)
        if package.unpacked_bytes + declared > limits.max_total_bytes:
            self.add(ArchiveProblem(TOO_LARGE, "total_size", rel_archive, name, size=declared,
                                    limit=limits.max_total_bytes))
            return False
        packed_total = sum(p.stat().st_size for p in archive_set.parts)
        if declared > limits.bomb_entry_bytes and declared / max(packed_total, 1) > limits.bomb_ratio:
            # tar and solid 7z give no per-entry packed size: judge the whole archive
            self.add(ArchiveProblem(TOO_LARGE, "ratio", rel_archive, name, size=declared, packed=packed_total,
                                    limit=limits.bomb_ratio))
            return False
        for entry in entries:
            if (entry.size > limits.bomb_entry_bytes and entry.packed
                    and entry.size / entry.packed > limits.bomb_ratio):
                self.add(ArchiveProblem(TOO_LARGE, "entry_ratio", rel_archive, name, entry=entry.name,
                                        size=entry.size, limit=limits.bomb_ratio))
                return False
        return True

    def _listing_failed(self, failure: ListingFailed, name: str, rel_archive: str, archive_set: ArchiveSet) -> None:
        if failure.kind == "encrypted":
            self.encrypted(name, rel_archive)
        else:
            self.corrupt(name, rel_archive, archive_set)

    def _extraction_failed(self, outcome: Outcome, name: str, rel_archive: str, archive_set: ArchiveSet) -> None:
        limits = self.limits
        if outcome.reason == "timeout":
            self.add(ArchiveProblem(TOO_LARGE, "timeout", rel_archive, name, limit=limits.timeout_seconds))
        elif outcome.reason == "disk":
            self.add(ArchiveProblem(TOO_LARGE, "disk_cap", rel_archive, name, limit=limits.max_total_bytes))
        elif re.search(r"password|encrypt|Wrong password", outcome.detail, re.I):
            self.encrypted(name, rel_archive)
        else:
            self.corrupt(name, rel_archive, archive_set)


def unpack(source: Path, workdir: Path, limits: ArchiveLimits, zip_in_process: bool = True) -> Package:
    """Unpack ``source`` (folder or archive) under ``workdir`` and list its files.

    ``zip_in_process=False`` sends every zip to 7-Zip (the comparison tests and the
    benchmark use it).
    """
    source = Path(source)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    package = Package(root_name=display_name(source.name))
    unpacker = _Unpacker(workdir, limits, package, zip_in_process)
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


def _incomplete(outdir: Path, entries: list[Entry]) -> bool:
    """True when the tool said yes but wrote less than the archive declares.

    unar given the first of several RAR volumes, or bsdtar on an encrypted RAR,
    exit 0 having written nothing or zeros; the declared sizes tell.
    """
    declared = sum(e.size for e in entries if not e.is_dir and not e.is_link)
    return disk_usage(outdir) < declared


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""
