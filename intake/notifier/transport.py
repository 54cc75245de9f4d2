"""The one place where mail leaves: a ``Transport`` opens a connection that delivers
composed mail one at a time, or raises the kernel's ``TransientError`` (try later) or
``PermanentError`` (no retry can help: the row records why, staff decide).

Two transports: SMTP (``intake.notifier.smtp``) when an SMTP password is configured,
else the outbox folder (the demo, and any installation without one). One connection
serves a batch; the delivery pass (``intake.daemon.delivery``) decides what each
outcome does to the outbox row.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Protocol

from intake.kernel.errors import IntakeError, PermanentError, TransientError
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
    recipients: tuple[str, ...]  # the envelope's recipients
    raw: str  # the whole message, as composed


# the server refused our envelope sender for good (SMTP not enabled for the account, its
# daily quota spent): the mail in hand waits this long, uncharged, and the batch ends
SENDER_REFUSED_RETRY_SECONDS = 3600.0


class ConnectionLost(TransientError):
    """The connection is gone (or the server is closing it) before the mail in hand was
    taken: that mail is retried later, and the batch ends. ``charged`` is False when the
    mail in hand is not at fault (the connection was unusable before any of it was
    sent): it is put back without counting an attempt."""

    def __init__(self, message: str, *, retry_after: float | None = None, charged: bool = True) -> None:
        super().__init__(message, retry_after=retry_after)
        self.charged = charged


class SenderRefused(ConnectionLost):
    """The server refused our envelope sender (MAIL FROM): about our account or this
    connection, never about the mail in hand, which is put back uncharged. ``permanent``
    (5xx: SMTP not enabled, authentication needed, the daily quota spent) makes it wait
    an hour and the pass an error; a 4xx (too many mails on this connection, too many
    in a short time) ends the batch, and a new connection may take the rest."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message, retry_after=SENDER_REFUSED_RETRY_SECONDS if permanent else None, charged=False)
        self.permanent = permanent


class DeliveryUncertain(IntakeError):
    """All of the mail's data was sent but the server's answer never came (a timeout, a
    dropped connection): it may have been delivered. Never repeated automatically; the
    batch ends."""


@dataclass(frozen=True)
class Refusals:
    """Recipients the server refused while others took the mail."""

    note: str  # each refused address with the server's answer, for the record
    accepted: tuple[str, ...]  # the recipients that took it
    later: tuple[str, ...] = ()  # refused for now (4xx): the row stays queued for them alone


class Connection(Protocol):
    def send(self, mail: Outgoing) -> Refusals | None:
        """Deliver one mail; return the recipients refused while others took it, else None."""
        ...


class Transport(Protocol):
    name: str  # said at start-up, so staff know where mail goes (never a password)
    via: str  # recorded on each row it takes ('smtp' | 'folder')
    status_name: str | None  # the `intake status` part a batch's outcome is recorded under
    # True when delivering a row again can deliver nothing new (the folder rewrites one
    # file): a row a dead process left in `sending` through this same transport (its
    # `via`) is then simply delivered again
    repeatable: bool

    def open(self) -> ContextManager[Connection]: ...


class OutboxFolder:
    """Writes each mail as ``<key>.eml`` into a folder, atomically: a retried delivery
    rewrites the same file, never a second one."""

    status_name: str | None = None
    repeatable = True
    via = "folder"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.name = f"the outbox folder {self.folder}"

    def open(self) -> ContextManager[Connection]:
        return contextlib.nullcontext(self)  # nothing to connect to

    def send(self, mail: Outgoing) -> Refusals | None:
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
        return None


def make_transport(settings: Settings) -> Transport:
    """SMTP when an SMTP password is configured, else the outbox folder."""
    if settings.smtp_password:
        # here, not at the top: intake.notifier.smtp builds on this module's interface
        from intake.notifier.smtp import SMTPTransport

        return SMTPTransport(settings)
    return OutboxFolder(settings.data_dir / "outbox")
