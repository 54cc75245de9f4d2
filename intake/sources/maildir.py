"""A Maildir read as if it were the mailbox: the demo, an exported mailbox, the tests."""

from __future__ import annotations

import contextlib
import hashlib
import mailbox as stdlib_mailbox
import os
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from intake.kernel.errors import ConfigError, TransientError
from intake.sources.base import Fetched

PIECE_BYTES = 1 << 20  # a message is read and stored in pieces of this size


class MaildirSource:
    """A Maildir, read as if it were a mailbox: INTERNALDATE is the file's mtime, a
    message's UID a hash of its unique Maildir key, and every poll lists every message
    (the ledger's SHA-256 dedupe keeps each one once). Nothing is changed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.uidvalidity = 1
        self._keys: list[str] = []

    def connect(self) -> None:
        if not (self.path / "new").is_dir() and not (self.path / "cur").is_dir():
            raise ConfigError(f"INTAKE_MAILDIR: not a Maildir: {self.path}")
        with _as_kernel_errors("listing"):
            self._list()

    def _list(self) -> None:
        box = stdlib_mailbox.Maildir(str(self.path), factory=None, create=False)
        entries = []
        for key in box.keys():
            path = self.path / box._lookup(key)  # type: ignore[attr-defined]  # the file's name is private
            entries.append((path.stat().st_mtime_ns, key, path))
        # delivery order: by time, then by the key read as numbers (the stdlib's keys are
        # "<sec>.M<usec>P<pid>Q<n>.<host>", its microseconds not zero-padded: as text,
        # M99999 would sort after M100000)
        entries.sort(key=lambda entry: (entry[0], _natural(entry[1])))
        # a Maildir key is unique and stable: its hash is the message's UID
        self._by_uid = {_key_uid(key): (mtime_ns, key, path) for mtime_ns, key, path in entries}
        self._order = [_key_uid(key) for _, key, _ in entries]

    def uids_after(self, highest: int) -> list[int]:
        return list(self._order)  # all, in delivery order: key hashes do not grow

    def sizes(self, uids: list[int]) -> dict[int, int]:
        with _as_kernel_errors("reading sizes"):
            return {uid: self._by_uid[uid][2].stat().st_size for uid in uids}

    def fetch(self, uids: list[int]) -> list[Fetched]:
        fetched = []
        for uid in uids:
            mtime_ns, _, path = self._by_uid[uid]
            moment = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)
            fetched.append(Fetched(uid, moment, _pieces(path)))
        return fetched

    def archive(self, uids: list[int], folder: str) -> None:
        return None  # a Maildir source is read-only

    def close(self) -> None:
        return None


@contextlib.contextmanager
def _as_kernel_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise TransientError(f"Maildir: {doing} failed: {err}") from err


def _pieces(path: Path) -> Iterator[bytes]:
    """The file, read in pieces when the ledger stores it (never whole in memory)."""
    with _as_kernel_errors("reading a message"):  # a mail client moved it meanwhile: listed again
        with open(path, "rb") as fh:
            yield from iter(lambda: fh.read(PIECE_BYTES), b"")


def _key_uid(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()[:7], "big")


def deliver_to_maildir(folder: Path, raw: bytes, received: datetime) -> Path:
    """Put a message into a Maildir with a chosen delivery time (demo and tests)."""
    box = stdlib_mailbox.Maildir(str(folder), create=True)
    key = box.add(raw)
    path = Path(folder) / box._lookup(key)  # type: ignore[attr-defined]  # the file's name is private
    stamp = received.timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _natural(key: str) -> tuple[tuple[int, int | str], ...]:
    """``key`` as runs of digits (compared as numbers) and of other characters."""
    return tuple((0, int(run)) if run.isdigit() else (1, run) for run in re.findall(r"\d+|\D+", key))
