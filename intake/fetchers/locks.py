"""One download at a time per account: a lock that holds across threads (the daemon's
workers) and across processes (`intake check` beside `intake run`)."""

from __future__ import annotations

import fcntl
import hashlib
import threading
from pathlib import Path
from typing import IO

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_REGISTRY = threading.Lock()


def account_name(*secrets: str) -> str:
    """A stable name for an account that reveals nothing of its credentials."""
    return hashlib.sha256("\0".join(secrets).encode()).hexdigest()[:16]


class AccountLock:
    def __init__(self, name: str, folder: Path | None = None) -> None:
        self.name = name
        self.path = folder / f"{name}.lock" if folder is not None else None
        with _REGISTRY:
            self._thread_lock = _THREAD_LOCKS.setdefault(name, threading.Lock())
        self._file: IO[bytes] | None = None

    def __enter__(self) -> AccountLock:
        self._thread_lock.acquire()
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
                fcntl.flock(self._file, fcntl.LOCK_EX)  # waits while another process downloads
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
                self._file.close()
                self._file = None
        finally:
            self._thread_lock.release()
