"""Finding the projects in a messy package.

Every file is classified (video, document, question bank, report form, scan, other),
then the folder tree is cut into projects: a folder whose subfolders each hold a
project of their own (two or more kinds of material) is a container; otherwise the
folder and everything below it is one project. This copes with one folder per
project at any depth, a single project at the root, projects packed as archives
(already unpacked into folders by intake.parsers.archives) and materials split into
视频/文档/题库 subfolders of one project.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from intake.parsers.archives import PackageFile
from intake.parsers.documents import Block, DocumentError, Table, all_text, read_blocks, read_partly
from intake.parsers.question_bank_header import looks_like_question_bank
from intake.parsers.spreadsheets import Sheet, SheetError, read_sheets
from intake.parsers.text import clean, squash, strip_numbering

VIDEO, DOCUMENT, QUESTION_BANK, FORM, SCAN, FORM_SCAN, AUDIO, LETTER, OTHER = (
    "video", "document", "question_bank", "form", "scan", "form_scan", "audio", "letter", "other",
)
MATERIALS = (VIDEO, DOCUMENT, QUESTION_BANK)  # what a roadshow project is made of

VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".avi", ".wmv", ".mkv", ".flv", ".mpg", ".mpeg", ".3gp",
    ".webm", ".ts", ".mts", ".m2ts", ".rmvb", ".rm", ".vob", ".f4v",
}
WORD_SUFFIXES = {".docx", ".doc", ".docm", ".wps"}
SHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
SCAN_SUFFIXES = {".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".ofd", ".heic", ".webp", ".gif"}
IMAGE_SUFFIXES = SCAN_SUFFIXES - {".pdf", ".ofd"}
AUDIO_SUFFIXES = {".mp3", ".wav", ".m4a", ".aac", ".wma", ".flac", ".amr", ".ogg", ".opus"}
LETTER_WORDS = ("授权书", "授权函", "授权委托", "授权声明", "承诺书", "承诺函", "真实性承诺", "诚信承诺",
                "真实性声明", "附件1")
FORM_NAME_WORDS = ("报送", "汇总", "附件5", "盖章", "上报表", "报名表", "推荐表", "推荐汇总")
# A scan or picture named like a form or a declaration is paperwork, never a photo.
PAPERWORK_WORDS = FORM_NAME_WORDS + ("申报", "推荐", "附件", "扫描", "证明", "汇总")
CRAFTSMAN_WORDS = ("工匠",)
PROFILE_LABELS = ("导师简介", "视频简介")
DECLARATION_LABELS = ("成果名称", "成果简介", "成果背景")
JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Material:
    file: PackageFile
    kind: str

    @property
    def rel(self) -> str:
        return self.file.rel

    @property
    def name(self) -> str:
        return PurePosixPath(self.file.rel).name


@dataclass
class Project:
    name: str
    folder: str  # relative folder ('' for the package root)
    materials: list[Material] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Material]:
        return [m for m in self.materials if m.kind == kind]


# ---------------------------------------------------------------- cached parsing

def _stamp(path: Path) -> tuple[str, int, int]:
    info = os.stat(path)
    return (str(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _blocks_cached(stamp: tuple[str, int, int]) -> list[Block]:
    return read_blocks(Path(stamp[0]))


@functools.lru_cache(maxsize=128)
def _sheets_cached(stamp: tuple[str, int, int]) -> list[Sheet]:
    path = Path(stamp[0])
    if path.suffix.lower() in (".docx", ".doc"):  # a Word table as a sheet: from the blocks read once
        try:
            return _docx_sheets(path)
        except DocumentError as err:
            raise SheetError(str(err)) from None
    return read_sheets(path)


def blocks_of(path: Path) -> list[Block]:
    """read_blocks, parsed once per file per process (classification and checks share it)."""
    return _blocks_cached(_stamp(path))


def sheets_of(path: Path) -> list[Sheet]:
    return _sheets_cached(_stamp(path))


# ---------------------------------------------------------------- classification

def is_craftsman_name(name: str) -> bool:
    return any(word in name for word in CRAFTSMAN_WORDS)


def has_letter_words(name: str) -> bool:
    key = clean(name).replace(" ", "")
    return any(word in key for word in LETTER_WORDS)


def has_form_words(name: str) -> bool:
    key = clean(name).replace(" ", "")
    return any(word in key for word in FORM_NAME_WORDS)


def _row_is_form_header(cells) -> bool:
    keys = [squash(c) for c in cells]
    if "课程名称" not in keys and not any(k.startswith("课程名称") for k in keys):
        return False
    others = ("提交单位", "完成人", "联系电话", "序号", "单位")
    return any(any(k.startswith(o) for o in others) for k in keys)


def sheets_have_form_table(sheets: list[Sheet]) -> bool:
    return any(_row_is_form_header(cells) for sheet in sheets for _, cells in sheet.rows[:30])


def _docx_sheets(path: Path) -> list[Sheet]:
    blocks = blocks_of(path)
    return [
        Sheet(f"表格{n}", tuple((i + 1, row) for i, row in enumerate(b.rows)), read_partly(blocks))
        for n, b in enumerate((b for b in blocks if isinstance(b, Table)), start=1)
    ]


def classify(file: PackageFile) -> str:
    name = PurePosixPath(file.rel).name
    suffix = PurePosixPath(name).suffix.lower()
    if (name.lower() in JUNK_NAMES or name.startswith("~$") or name.startswith("._")
            or "__MACOSX" in PurePosixPath(file.rel).parts):
        return OTHER
    if suffix in VIDEO_SUFFIXES:
        return VIDEO
    # What a file holds decides before its name: "安全课-报送材料.docx" holding the
    # profiles is a project document, not the report form.
    if suffix in WORD_SUFFIXES:
        try:
            sheets = _docx_sheets(file.path)
            text = squash(all_text(blocks_of(file.path)))
        except DocumentError:
            return FORM if has_form_words(name) else DOCUMENT  # the check reports it unreadable
        if sheets_have_form_table(sheets):
            return FORM
        if looks_like_question_bank(sheets):
            return QUESTION_BANK
        if any(label in text for label in PROFILE_LABELS + DECLARATION_LABELS):
            return DOCUMENT
        if has_letter_words(name):
            return LETTER
        return FORM if has_form_words(name) else DOCUMENT
    if suffix in SHEET_SUFFIXES:
        try:
            sheets = sheets_of(file.path)
        except SheetError:
            return FORM if has_form_words(name) else QUESTION_BANK
        if sheets_have_form_table(sheets):
            return FORM
        if looks_like_question_bank(sheets):
            return QUESTION_BANK
        if has_form_words(name):
            return FORM  # a unit's 推荐汇总表 lists 成果名称 too, as a column
        if any(label in squash(c) for sheet in sheets for _, row in sheet.rows[:40] for c in row
               for label in DECLARATION_LABELS):
            return DOCUMENT  # a declaration kept as a sheet
        return QUESTION_BANK
    if suffix in AUDIO_SUFFIXES:
        return AUDIO
    if suffix in SCAN_SUFFIXES:
        if has_letter_words(name):
            return LETTER
        key = clean(name).replace(" ", "")
        return FORM_SCAN if any(word in key for word in PAPERWORK_WORDS) else SCAN
    return OTHER


# ---------------------------------------------------------------- projects

def _folder(rel: str) -> str:
    parent = str(PurePosixPath(rel).parent)
    return "" if parent == "." else parent


def _children(folder: str, folders: set[str]) -> list[str]:
    return sorted(f for f in folders if f and _folder(f) == folder)


def find_projects(materials: list[Material], root_name: str,
                  kinds_of_project: tuple[str, ...] = MATERIALS) -> list[Project]:
    """Cut the folder tree into projects (see the module docstring).

    ``kinds_of_project``: the kinds of file a project is made of under the policy
    (a roadshow project: video, document, question bank; an innovation result adds
    photos, audio and letters).
    """
    wanted = set(kinds_of_project)
    items = [m for m in materials if m.kind in wanted]
    if not items:
        return []
    folders = {""}
    for item in items:
        parts = PurePosixPath(item.rel).parts[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))

    def under(folder: str) -> list[Material]:
        prefix = f"{folder}/" if folder else ""
        return [m for m in items if m.rel.startswith(prefix)]

    def kinds(folder: str) -> set[str]:
        return {m.kind for m in under(folder)}

    def split(folder: str) -> list[Project]:
        children = [c for c in _children(folder, folders) if under(c)]
        direct = [m for m in items if _folder(m.rel) == folder]
        # A 工匠 subfolder (no question bank of its own) beside a project's own
        # materials holds the optional craftsman profile and videos: it does not
        # make its parent a container of projects.
        deciding = children
        if direct:
            deciding = [c for c in children
                        if not (is_craftsman_name(c.rsplit("/", 1)[-1]) and QUESTION_BANK not in kinds(c))]
        rich = [c for c in deciding if len(kinds(c)) >= 2]
        complete = [c for c in deciding if kinds(c) >= wanted]
        # Sibling projects hold the same kinds of material; folders that split one
        # project by kind (视频/, 文档/, 照片/, 音视频/ …) each hold different kinds.
        seen: set[str] = set()
        shared = False
        for child in deciding:
            shared = shared or bool(kinds(child) & seen)
            seen |= kinds(child)
        # two project-like subfolders, or one complete project beside other material
        # folders (an incomplete project is still a project of its own)
        if shared and (len(rich) >= 2 or (complete and len(deciding) >= 2)):
            projects = [p for child in children for p in split(child)]
            if len({m.kind for m in direct}) >= 2:
                projects.append(Project(_project_name(folder, root_name), folder, direct))
            return projects
        if not direct and len(children) == 1:
            return split(children[0])
        return [Project(_project_name(folder, root_name), folder, under(folder))]

    return split("")


def _project_name(folder: str, root_name: str) -> str:
    base = PurePosixPath(folder).name if folder else _strip_suffixes(root_name)
    return strip_numbering(base)


def _strip_suffixes(name: str) -> str:
    lowered = name.lower()
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".zip", ".rar", ".7z", ".tar", ".tgz"):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name
