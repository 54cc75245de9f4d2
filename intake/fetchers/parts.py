"""Where a message's downloads land: unique paths in ``dest`` and the unfinished parts
kept out of the layout.

- Two remote paths that end up alike after ``sanitise`` (``a:b.mp4`` and ``a_b.mp4``),
  or a file and a folder of one name, get `` (2)``, `` (3)``… instead of overwriting or
  being taken for an earlier attempt's file.
- A part file lives in ``dest/.intake-parts/`` under a name derived from its target
  path, never beside the files (a share's own ``v.mp4.part`` is a file like any other).
  Beside it a small JSON validator records what the part was downloaded from (the
  listing's size and ids, the host's ETag/MD5): a part whose file changed since is
  started over rather than resumed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from intake.fetchers.base import PARTS_DIR, numbered


def unique_paths(paths: list[str]) -> list[str]:
    """The relative path on disk of each remote path, in order: none used twice, no file
    where a folder is (or the other way round), none inside PARTS_DIR."""
    files: set[str] = {PARTS_DIR}
    folders: set[str] = set()
    folder_on_disk: dict[str, str] = {}  # a remote folder path -> where it lands
    result = []
    for path in paths:
        names = path.split("/")
        parent, remote = "", ""
        for name in names[:-1]:
            remote = f"{remote}/{name}" if remote else name
            if remote not in folder_on_disk:
                folder_on_disk[remote] = _free(parent, name, files)
                folders.add(folder_on_disk[remote])
            parent = folder_on_disk[remote]
        chosen = _free(parent, names[-1], files | folders)
        files.add(chosen)
        result.append(chosen)
    return result


def _free(parent: str, name: str, taken: set[str]) -> str:
    def joined(text: str) -> str:
        return f"{parent}/{text}" if parent else text
    candidate, number = joined(name), 2
    while candidate in taken:
        candidate, number = joined(numbered(name, number)), number + 1
    return candidate


def part_path(dest: Path, rel: str) -> Path:
    """The unfinished download of ``dest/rel``."""
    return dest / PARTS_DIR / (hashlib.sha256(rel.encode("utf-8")).hexdigest()[:32] + ".part")


def validator_path(part: Path) -> Path:
    return part.with_suffix(".json")


def read_validator(part: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(validator_path(part).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_validator(part: Path, data: dict[str, Any]) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    validator_path(part).write_text(json.dumps(data, ensure_ascii=False), "utf-8")


def forget(part: Path) -> None:
    """The part and its validator gone; the parts folder too once empty."""
    part.unlink(missing_ok=True)
    validator_path(part).unlink(missing_ok=True)
    try:
        part.parent.rmdir()
    except OSError:  # other parts are still there (or it is gone already)
        pass
