"""The one place where mail leaves: a ``Transport`` takes a composed message and
delivers it, or raises the kernel's ``TransientError`` (try later) or
``PermanentError`` (no retry can help; the message goes to staff).

The outbox folder is the first transport (the demo, and any installation without an
SMTP password); SMTP is a second implementation of the same interface.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from intake.kernel.errors import PermanentError, TransientError
from intake.settings import Settings

# a full disk mends itself when staff free space: try again after ten minutes
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
DISK_FULL_RETRY_SECONDS = 600.0
# a path that cannot be the outbox folder (a file in its place, read-only, forbidden):
# no retry mends it, staff must; anything else (EIO, EMFILE, …) is retried with backoff
NOT_A_FOLDER = (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EROFS, errno.EACCES, errno.EPERM)


@dataclass(frozen=True)
class Outgoing:
    key: str  # unique per outbox row: a retried delivery of the same row is the same mail
    recipient: str
    raw: str  # the whole message, as composed


class Transport(Protocol):
    name: str  # said at start-up, so staff know where replies go

    def send(self, mail: Outgoing) -> None: ...


class OutboxFolder:
    """Writes each reply as ``<key>.eml`` into a folder, atomically: a retried delivery
    rewrites the same file, never a second one."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.name = f"the outbox folder {self.folder}"

    def send(self, mail: Outgoing) -> None:
        target = self.folder / f"{mail.key}.eml"
        temporary = target.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary.write_text(mail.raw, encoding="utf-8")
            os.replace(temporary, target)
        except OSError as err:
            if err.errno in DISK_FULL:
                raise TransientError(f"outbox folder {self.folder}: {err.strerror}",
                                     retry_after=DISK_FULL_RETRY_SECONDS) from err
            if err.errno not in NOT_A_FOLDER:
                raise TransientError(f"outbox folder {self.folder}: {err.strerror}") from err
            raise PermanentError(f"outbox folder {self.folder}: cannot write {target.name} ({err.strerror}); "
                                 "make the folder writable, then `intake resend` the receipt") from err


def make_transport(settings: Settings) -> Transport:
    return OutboxFolder(settings.data_dir / "outbox")
