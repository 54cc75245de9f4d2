"""The export's steps: choose the folders, bring each project's files up to date,
remove what no longer stands, write the workbooks and the manifest."""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from intake.export import tree
from intake.export.names import allocate, safe_name
from intake.export.source import ExportProject, Extracted, completers_of, current_projects, extract
from intake.export.workbooks import IndexRow, UnitRow, index_workbook, merged_bank, questions
from intake.kernel.errors import ConfigError
from intake.kernel.policy import Policy
from intake.parsers.media import media_info
from intake.staff_words import one_line
from intake.store import Unit

log = logging.getLogger("intake")
STABLE_NAMES = {"video": "视频", "document": "文档", "question_bank": "题库"}
BANK_BOOK, INDEX_BOOK = "题库汇总.xlsx", "项目索引.xlsx"


@dataclass
class ExportResult:
    projects: int = 0
    copied: int = 0  # files written (new or changed)
    unchanged: int = 0  # files left as they were
    removed: int = 0  # files of projects that no longer stand
    problems: list[str] = field(default_factory=list)  # in Chinese, one line each
    failed: set[str] = field(default_factory=set)  # keys of the projects not exported this time


def export(Session: sessionmaker, data_dir: Path, policy: Policy, target: Path) -> ExportResult:
    root = tree.open_root(target)
    try:
        tree.lock(root, target)
        tree.can_write(root, target)
        tree.sweep_work(root)
        return _export(Session, data_dir, policy, Path(target), root)
    except OSError as err:  # the workbooks or the manifest not written: a full disk, say
        raise ConfigError(f"export: writing in {target} failed ({err.strerror or err}); free some space or "
                          "choose another folder, then export again") from err
    finally:
        os.close(root)


def _export(Session: sessionmaker, data_dir: Path, policy: Policy, target: Path, root: int) -> ExportResult:
    result = ExportResult()
    manifest = tree.load_manifest(root)
    old: dict[str, dict[str, Any]] = manifest["projects"]
    projects = current_projects(Session, data_dir)
    folders = _folders(projects, old)
    entries: dict[str, dict[str, Any]] = {}
    by_message: dict[str, list[ExportProject]] = defaultdict(list)
    for project in projects:
        by_message[project.receipt].append(project)
    for receipt, group in by_message.items():
        todo = []
        for project in group:
            if _unchanged(root, old.get(project.key), folders[project.key], project):
                entries[project.key] = old[project.key]
                result.unchanged += len(old[project.key]["files"])
            else:
                todo.append(project)
        if todo:
            _refresh(root, target, todo, folders, policy, entries, result)
    for key in result.failed & set(old):
        entries[key] = old[key]  # what an earlier export put there stays until it can be redone
    result.removed = _remove_stale(root, old, entries)
    exported = [p for p in projects if p.key in entries and p.key not in result.failed]
    result.projects = len(exported)
    _write_workbooks(Session, root, target, exported, entries)
    tree.save_manifest(root, {"version": 1, "projects": entries, "files": [BANK_BOOK, INDEX_BOOK]})
    # a line each: a sender's course or file name may hold a line break or an escape sequence
    result.problems = [one_line(problem) for problem in result.problems]
    return result


def _folders(projects: list[ExportProject], old: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """(unit folder, course folder) per project: sanitised, distinct, and the same as last
    time where that still holds."""
    first: dict[str, int] = {}
    for project in projects:
        first.setdefault(project.unit, project.number)
    previous_units = {entry["unit"]: entry["folder"][0] for entry in old.values()}
    unit_dirs = allocate({unit: safe_name(unit) for unit in first}, previous_units, first, (BANK_BOOK, INDEX_BOOK))
    folders = {}
    for unit, unit_dir in unit_dirs.items():
        mine = [p for p in projects if p.unit == unit]
        previous = {key: entry["folder"][1] for key, entry in old.items() if entry["folder"][0] == unit_dir}
        courses = allocate({p.key: safe_name(p.course) for p in mine}, previous, {p.key: p.number for p in mine})
        folders.update({key: (unit_dir, course_dir) for key, course_dir in courses.items()})
    return folders


def _unchanged(root: int, entry: dict[str, Any] | None, folder: tuple[str, str], project: ExportProject) -> bool:
    """The project was exported from the same files into the same folder, and what is
    there is as the export left it (size and modification time): not unpacked again."""
    if entry is None or tuple(entry["folder"]) != folder or entry.get("source") != project.files:
        return False
    if len(entry["files"]) != len(project.files):  # a file was missing last time: try again, say so again
        return False
    try:
        with tree.subdir(root, folder, create=False) as fd:
            for name, meta in entry["files"].items():
                info = tree.regular(fd, name)
                if info is None or (info.st_size, info.st_mtime_ns) != (meta["size"], meta["mtime_ns"]):
                    return False
    except (OSError, tree.NotOurs):
        return False
    return True


def _refresh(root: int, target: Path, group: list[ExportProject], folders: dict[str, tuple[str, str]],
             policy: Policy, entries: dict[str, dict[str, Any]], result: ExportResult) -> None:
    """Unpack one message again and bring its projects' folders up to date."""
    first = group[0]
    wanted = {rel for project in group for rel in project.files.values()}
    with tree.workdir(root, target) as scratch:
        found = extract(Path(first.raw_path), first.fetched_root, wanted, policy, scratch)
        if found.problem:
            result.problems += [f"{p.unit}“{p.course}”（回执号 {p.receipt}）：{found.problem}" for p in group]
            result.failed.update(p.key for p in group)
            return
        for project in group:
            try:
                entries[project.key] = _place_project(root, project, folders[project.key], found, scratch, result)
            except tree.NotOurs as err:
                result.problems.append(f"{project.unit}“{project.course}”（回执号 {project.receipt}）：导出目录中"
                                       f"“{err}”不是普通文件夹（可能是符号链接），未写入；请检查后重新导出。")
                result.failed.add(project.key)
            except OSError as err:  # a folder where a file goes, a full disk: this project, said
                result.problems.append(f"{project.unit}“{project.course}”（回执号 {project.receipt}）：写入失败"
                                       f"（{err.strerror or err}），请检查导出目录后重新导出。")
                result.failed.add(project.key)


def _place_project(root: int, project: ExportProject, folder: tuple[str, str], found: Extracted, scratch: Path,
                   result: ExportResult) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}
    video_seconds = None
    with tree.subdir(root, folder) as fd:
        for kind, rel in project.files.items():
            source = found.paths.get(rel)
            if source is None:
                result.problems.append(f"{project.unit}“{project.course}”（回执号 {project.receipt}）："
                                       f"重新解包后未找到文件“{rel}”。")
                continue
            name = STABLE_NAMES[kind] + _suffix(rel)
            digest = tree.sha256_of(source)
            there = tree.regular(fd, name)
            if there is not None and there.st_size == source.stat().st_size and tree.sha256_of(name, fd) == digest:
                result.unchanged += 1
            else:
                tree.place(fd, name, source, scratch)
                result.copied += 1
            info = tree.regular(fd, name)
            assert info is not None  # just placed, in a folder opened without following links
            files[name] = {"kind": kind, "size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": digest}
            if kind == "video":
                video_seconds = _seconds(source)
    return {"unit": project.unit, "course": project.course, "receipt": project.receipt, "folder": list(folder),
            "source": project.files, "files": files, "video_seconds": video_seconds,
            "completers": completers_of(project.course, found.completers)}


def _suffix(rel: str) -> str:
    suffix = PurePosixPath(rel).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _seconds(video: Path) -> float | None:
    try:
        info = media_info(video)
        track = info.general_tracks[0] if info.general_tracks else None
        return float(track.duration) / 1000 if track is not None and track.duration is not None else None
    except Exception:  # judged readable before; if not now, the index says nothing rather than fail
        return None


def _remove_stale(root: int, old: dict[str, dict[str, Any]], entries: dict[str, dict[str, Any]]) -> int:
    """Remove the files the export made that no current project has (a superseded or
    rejected project, a folder renamed), then their folders if they are empty."""
    kept = {(tuple(e["folder"]), name) for e in entries.values() for name in e["files"]}
    removed = 0
    for entry in old.values():
        folder = tuple(entry["folder"])
        stale = [name for name in entry["files"] if (folder, name) not in kept]
        if not stale:
            continue
        try:
            with tree.subdir(root, folder, create=False) as fd:
                for name in stale:
                    if tree.regular(fd, name) is not None:
                        tree.remove_file(fd, name)
                        removed += 1
        except (FileNotFoundError, tree.NotOurs):
            continue  # gone already, or replaced by something that is not ours
        tree.remove_empty(root, folder)
    return removed


def _write_workbooks(Session: sessionmaker, root: int, target: Path, projects: list[ExportProject],
                     entries: dict[str, dict[str, Any]]) -> None:
    rows, banks = [], []
    for project in projects:
        entry = entries[project.key]
        folder = "/".join(entry["folder"])
        by_kind = {meta["kind"]: (name, meta) for name, meta in entry["files"].items()}
        if "question_bank" in by_kind:
            banks.append((project.unit, project.course, _bank_rows(root, target, entry, by_kind["question_bank"][0])))
        rows.append(IndexRow(project.unit, project.course, entry.get("completers") or "", folder,
                             "、".join(sorted(entry["files"])), project.receipt, project.received_at,
                             {kind: meta["size"] for kind, (_, meta) in by_kind.items()}, entry.get("video_seconds")))
    with Session() as session:
        quotas = {unit.name: unit.quota for unit in session.scalars(select(Unit).order_by(Unit.id))}
    counts: dict[str, int] = defaultdict(int)
    for project in projects:
        counts[project.unit] += 1
    units = [UnitRow(name, quota, counts.get(name, 0)) for name, quota in quotas.items()]
    units += [UnitRow(name, None, count) for name, count in counts.items() if name not in quotas]
    tree.write_bytes(root, BANK_BOOK, merged_bank(banks))
    tree.write_bytes(root, INDEX_BOOK, index_workbook(rows, units))


def _bank_rows(root: int, target: Path, entry: dict[str, Any], name: str) -> list[tuple[str, ...]]:
    """The bank's questions, read from the exported copy (checked to be a plain file in
    real folders first: nothing outside DIR is read either)."""
    try:
        with tree.subdir(root, tuple(entry["folder"]), create=False) as fd:
            if tree.regular(fd, name) is None:
                return []
    except (OSError, tree.NotOurs):
        return []
    return questions(target.joinpath(*entry["folder"], name))
