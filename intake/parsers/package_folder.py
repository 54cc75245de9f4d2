"""One folder for a message's package: its attachments and the files its links brought,
laid side by side as if they had all been attached.

Files are hard-linked (a download of gigabytes is never copied); across file systems
they are copied. A name taken at the top already (an attachment and a share's file of
the same name, or two shares' folders) is numbered as the mail parser numbers
attachments: ``名称 (2).docx``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

UNFINISHED = ".intake-parts"  # intake.fetchers.base.PARTS_DIR: the downloads not finished


def gather(target: Path, attachments: Path, trees: list[Path]) -> Path:
    """``target`` holding every file of ``attachments`` and of each folder in ``trees``
    (their own layout kept below the top)."""
    target.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    sources = sorted(attachments.iterdir()) if attachments.is_dir() else []
    for tree in trees:
        sources += sorted(tree.iterdir()) if tree.is_dir() else []
    for source in sources:
        if _unfinished(source):  # a download cut short is not part of the package
            continue
        _place(source, target / _unique(source.name, taken))
    return target


def _unfinished(path: Path) -> bool:
    return path.name == UNFINISHED or path.name.endswith(".part")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    stem, dot, ext = name.rpartition(".")
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem} ({n}).{ext}" if dot and stem else f"{name} ({n})"
    taken.add(candidate.lower())
    return candidate


def _place(source: Path, target: Path) -> None:
    if source.is_symlink():
        return  # never followed: a fetcher writes plain files and folders only
    if source.is_dir():
        target.mkdir(exist_ok=True)
        for child in sorted(source.iterdir()):
            if not _unfinished(child):
                _place(child, target / child.name)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
