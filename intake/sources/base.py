"""The interface every mail source offers the poller (as imapautofiler's ``Client``).

A source raises only the kernel's errors: ``TransientError`` for anything a later try
may mend (the network, a busy server), ``ConfigError`` (permanent) for a setting that is
wrong. Library exceptions never leave the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Fetched:
    uid: int
    internaldate: datetime  # when the mailbox received it: this decides lateness
    raw: bytes


class MailSource(Protocol):
    uidvalidity: int

    def connect(self) -> None: ...

    def uids_after(self, highest: int) -> list[int]: ...

    def sizes(self, uids: list[int]) -> dict[int, int]: ...

    def fetch(self, uids: list[int]) -> list[Fetched]: ...

    def archive(self, uids: list[int], folder: str) -> None: ...

    def close(self) -> None: ...
