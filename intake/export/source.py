"""What the export takes from the records: the current accepted projects, and their
files, unpacked again from the stored mail.

The judging stage keeps no unpacked files (its work folder is removed after each
judgement); what it keeps is the raw message (``messages.raw_path``), the files its
links brought (``<data>/work/<receipt>/fetched``, with ``outcome.json``) and each
project's chosen files as paths relative to the package root (``projects.files``).
So the package is unpacked again as the core unpacked it, in a budgeted child (the
sender's archive is hostile however often it was judged), and the recorded paths are
looked up in it.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from intake.daemon.claims import aware
from intake.daemon.ledger import raw_file
from intake.kernel.budget import reading, within
from intake.kernel.fetched import FetchedPackage
from intake.kernel.policy import Policy
from intake.kernel.report import Report
from intake.kernel.verdicts import Verdict
from intake.parsers.archives import unpack
from intake.export.workbooks import questions
from intake.parsers.layout import sheets_of
from intake.parsers.media import media_info
from intake.parsers.messages import parse_message
from intake.parsers.package_folder import gather
from intake.parsers.spreadsheets import SheetError
from intake.parsers.text import clean, squash
from intake.store import Message, Project

KINDS = ("video", "document", "question_bank")  # what an expert is given of each project
FORM_SUFFIXES = (".docx", ".doc", ".xlsx", ".xls", ".xlsm")


@dataclass
class ExportProject:
    key: str  # stable across runs and reprocessing: receipt and course
    number: int  # projects.id: orders name allocation
    unit: str
    course: str
    receipt: str
    received_at: datetime | None
    files: dict[str, str]  # kind -> path relative to the package root, as judged
    raw_path: str
    fetched_root: Path


def current_projects(Session: sessionmaker, data_dir: Path) -> list[ExportProject]:
    """Projects that stand: not superseded, accepted (by judgement, or by a staff
    override of their message), never from a message staff rejected or a late one
    staff did not accept; oldest first."""
    with Session() as session:
        rows = session.execute(
            select(Project, Message).join(Message, Project.message_id == Message.id)
            .where(Project.superseded_by.is_(None), Message.report.is_not(None))
            .order_by(Project.id)).all()
        found = []
        for project, message in rows:
            accepted = message.override == "accepted" or (
                message.override is None and project.verdict == "accepted" and not project.late)
            if not accepted:
                continue
            receipt = message.receipt or str(message.id)
            found.append(ExportProject(
                key=f"{receipt}/{project.name}", number=project.id, unit=project.unit_name or "单位未识别",
                course=project.name, receipt=receipt,
                received_at=aware(message.received_at) if message.received_at else None,
                files={kind: path for kind in KINDS if isinstance(path := (project.files or {}).get(kind), str)},
                raw_path=str(raw_file(data_dir, message)), fetched_root=data_dir / "work" / receipt / "fetched"))
    return found


@dataclass
class Extracted:
    """A message's package unpacked again: each wanted relative path's file on disk, and
    the completers the report form names per course (squashed course name -> text)."""
    paths: dict[str, Path] = field(default_factory=dict)
    completers: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # why nothing could be unpacked (the budget, a missing file)
    # read in the child too, under the budget (a project staff accepted by override was
    # perhaps never read whole): a video's length, a question bank's rows
    seconds: dict[str, float] = field(default_factory=dict)
    questions: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)


def extract(raw_path: Path, fetched_root: Path, wanted: dict[str, str], policy: Policy, workdir: Path) -> Extracted:
    """Unpack the stored message under ``workdir`` as the core did, in a child process
    under the policy's budget; the files stay in ``workdir`` for the caller. ``wanted``:
    relative path -> kind (video, document, question_bank)."""
    if not raw_path.is_file():
        return Extracted(problem=f"原始邮件文件不存在：{raw_path}")
    report = within(policy.budget, policy.name, None, _unpack_in_child, raw_path, fetched_root, dict(wanted),
                    policy, workdir)
    if report.message is None or "paths" not in report.message:
        return Extracted(problem="重新解包超出资源限制，未能导出")
    found = report.message
    return Extracted({rel: Path(path) for rel, path in found["paths"].items()}, dict(found["completers"]),
                     seconds=dict(found["seconds"]),
                     questions={rel: [tuple(row) for row in rows] for rel, rows in found["questions"].items()})


def _unpack_in_child(raw_path: Path, fetched_root: Path, wanted: dict[str, str], policy: Policy,
                     workdir: Path) -> Report:
    """The child's work; its answer travels in a Report (what the budget's pipe carries),
    in ``message``: {"paths": {rel: path}, "completers": {course key: names},
    "seconds": {rel: video length}, "questions": {rel: question rows}}."""
    fetched = FetchedPackage.load(fetched_root, fetched_root / "outcome.json")
    with open(raw_path, "rb") as fh:
        size = raw_path.stat().st_size
        with (mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else _empty()) as raw:
            parsed = parse_message(raw, workdir / "attachments")
    folders = fetched.folders()
    source = gather(workdir / "package", workdir / "attachments", folders) if folders else workdir / "attachments"
    package = unpack(source, workdir / "unpacked", policy.archive)
    by_rel = {f.rel: f.path for f in package.files}
    paths = {rel: str(by_rel[rel]) for rel in wanted if rel in by_rel}
    completers: dict[str, str] = {}
    for file in package.files:
        if file.rel not in wanted and PurePosixPath(file.rel).suffix.lower() in FORM_SUFFIXES:
            reading(file.rel)
            for course, names in form_completers(file.path).items():
                completers.setdefault(course, names)
    seconds: dict[str, float] = {}
    banks: dict[str, list[tuple[str, ...]]] = {}
    for rel, kind in wanted.items():
        if rel not in by_rel:
            continue
        reading(rel)
        if kind == "video" and (length := _seconds(by_rel[rel])) is not None:
            seconds[rel] = length
        elif kind == "question_bank":
            banks[rel] = questions(by_rel[rel])
    del parsed
    return Report(Verdict.ACCEPTED, policy.name, None, None, message={
        "paths": paths, "completers": completers, "seconds": seconds, "questions": banks})


def _seconds(video: Path) -> float | None:
    try:
        info = media_info(video)
        track = info.general_tracks[0] if info.general_tracks else None
        return float(track.duration) / 1000 if track is not None and track.duration is not None else None
    except Exception:  # judged readable before; if not now, the index says nothing rather than fail
        return None


class _empty:
    """An empty message stands in for an mmap (which refuses a zero-length file)."""

    def __enter__(self) -> bytes:
        return b""

    def __exit__(self, *exc: object) -> None:
        return None


def form_completers(path: Path) -> dict[str, str]:
    """课程名称 -> 完成人 from the course table of a report form (附件5); empty when the
    file is no such form or cannot be read."""
    try:
        sheets = sheets_of(path)
    except (SheetError, OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for sheet in sheets:
        course_col = people_col = None
        for _, cells in sheet.rows:
            keys = [squash(c) for c in cells]
            if course_col is None or people_col is None:
                course_col = next((i for i, k in enumerate(keys) if k.startswith("课程名称")), None)
                people_col = next((i for i, k in enumerate(keys) if "完成人" in k), None)
                continue
            if max(course_col, people_col) < len(cells) and clean(cells[course_col]):
                found.setdefault(squash(cells[course_col]), clean(cells[people_col]))
    return found


def completers_of(course: str, completers: dict[str, str]) -> str:
    """The form's 完成人 for a course (its name as judged is the form's, spacing aside)."""
    key = squash(course)
    if key in completers:
        return completers[key]
    near = [names for listed, names in completers.items() if listed and (listed in key or key in listed)]
    return near[0] if len(near) == 1 else ""
