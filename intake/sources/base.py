"""The interface every mail source offers the poller (as imapautofiler's ``Client``).

A source raises only the kernel's errors: ``TransientError`` for anything a later try
may mend (the network, a busy server), ``ConfigError`` (permanent) for a setting that is
wrong. Library exceptions never leave the source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Fetched:
    """One message as a source hands it over. Its bytes come as ``body``, pieces to be
    iterated once, in order (the ledger writes and hashes them as they come), so that a
    large message is never held whole: a small one is one piece, a large one is read
    (over IMAP: fetched) piece by piece while it is iterated. A body that cannot be read
    whole raises ``TransientError`` during the iteration, before its last piece has
    been taken, so an incomplete body is never mistaken for a complete one."""

    uid: int
    internaldate: datetime  # when the mailbox received it: this decides lateness
    body: Iterable[bytes]


class MailSource(Protocol):
    uidvalidity: int

    def connect(self) -> None: ...

    def uids_after(self, highest: int) -> list[int]: ...

    def sizes(self, uids: list[int]) -> dict[int, int]: ...

    def fetch(self, uids: list[int]) -> list[Fetched]: ...

    def archive(self, uids: list[int], folder: str) -> None: ...

    def close(self) -> None: ...
