"""Transfers over an account's file-count limit, split by sub-folder (both account routes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from intake.fetchers.base import NeedsStaff, RemoteFile, sanitise
from intake.fetchers.baidu_web import Entry

DEFAULT_LIMIT = 500  # files per transfer reported for non-members, when Baidu does not say


def plan(entries: list[Entry], limit: int, parent: str = "") -> list[tuple[str, list[Entry]]]:
    """(destination sub-folder relative to the message's folder, entries) per transfer,
    each at most ``limit`` files; a folder over the limit is transferred by its children."""
    batches: list[tuple[str, list[Entry]]] = []
    current: list[Entry] = []
    count = 0
    for entry in entries:
        files = max(len(entry.files()), 1)
        if files > limit:
            if not entry.isdir or not entry.children:
                raise NeedsStaff(f"百度网盘分享中的“{entry.rel}”超过账号单次转存的文件数上限（{limit}），"
                                 "请工作人员手工转存")
            batches += plan(entry.children, limit, entry.rel)
            continue
        if current and count + files > limit:
            batches.append((parent, current))
            current, count = [], 0
        current.append(entry)
        count += files
    if current:
        batches.append((parent, current))
    return batches


def message_folder(inbox: str, key: str | None, dest: Path, share_url: str) -> str:
    """The account folder for one message's link: the same on every retry."""
    basis = f"{key or dest.resolve()}\0{share_url}"
    return f"{inbox.rstrip('/')}/{hashlib.sha256(basis.encode()).hexdigest()[:20]}"


def listing(entries: list[Entry]) -> list[RemoteFile]:
    return [RemoteFile(sanitise(e.rel), e.size, e.md5) for e in entries]
