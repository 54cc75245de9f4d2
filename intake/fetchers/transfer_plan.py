"""Transfers over an account's file-count limit, split by sub-folder (both account routes)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from intake.fetchers.base import NeedsStaff, RemoteFile, sanitise
from intake.fetchers.baidu_share import TooManyFiles
from intake.fetchers.baidu_web import Entry

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


def transfer_all(top: list[Entry], send: Callable[[str, list[Entry]], None], mkdir: Callable[[str], None],
                 pause: Callable[[float], None], url: str) -> None:
    """The whole share in one transfer; over the account's limit, split by sub-folder with
    the limit Baidu names (else half as many files each round). ``send(sub, entries)``
    transfers into the message's folder/sub; what an earlier round already copied counts
    as done there ("already exists")."""
    try:
        send("", top)
        return
    except TooManyFiles as over:
        total = sum(max(len(e.files()), 1) for e in top)
        limit = over.limit if over.limit and over.limit < total else total // 2
    made: set[str] = set()
    while limit >= 1:
        try:
            for sub, entries in plan(top, limit):
                if sub and sub not in made:
                    mkdir(sub)
                    made.add(sub)
                send(sub, entries)
                pause(5.0)  # a pause between transfers keeps a long run clear of rate limits
            return
        except TooManyFiles as over:
            limit = over.limit if over.limit and over.limit < limit else limit // 2
    raise NeedsStaff(f"百度网盘分享 {url} 的文件数超过账号单次转存上限，拆分后仍无法转存，请工作人员手工转存")


def message_folder(inbox: str, key: str | None, dest: Path, share_url: str) -> str:
    """The account folder for one message's link: the same on every retry."""
    basis = f"{key or dest.resolve()}\0{share_url}"
    return f"{inbox.rstrip('/')}/{hashlib.sha256(basis.encode()).hexdigest()[:20]}"


def listing(entries: list[Entry]) -> list[RemoteFile]:
    return [RemoteFile(sanitise(e.rel), e.size, e.md5) for e in entries]
