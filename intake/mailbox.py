"""Where mail comes from: the collection mailbox over IMAP (163 in production), or a
Maildir with the same interface (the embedded demo, an exported mailbox).

163 has no IDLE, no UIDNEXT and no MOVE, and refuses SELECT ("Unsafe Login") until
the client has sent the IMAP ID command: we send ID whenever it is advertised, track
the highest UID seen per (folder, UIDVALIDITY) ourselves, fetch with BODY.PEEK[] (mail
is never marked read) and archive with COPY + \\Deleted + UID EXPUNGE.
"""

from __future__ import annotations

import mailbox as stdlib_mailbox
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from intake.kernel.errors import ConfigError, LoginRejected


@dataclass(frozen=True)
class Fetched:
    uid: int
    internaldate: datetime  # when the mailbox received it: this decides lateness
    raw: bytes


class ImapSource:
    """The collection mailbox over IMAP (imapclient)."""

    def __init__(self, settings):
        if not settings.imap_user or settings.imap_password is None:
            raise ConfigError("INTAKE_IMAP_USER / INTAKE_IMAP_PASSWORD: needed to poll the mailbox "
                              "(or set INTAKE_MAILDIR to read a Maildir)")
        self.settings = settings
        self.client = None
        self.uidvalidity = 0

    def connect(self) -> None:
        from imapclient import IMAPClient
        from imapclient.exceptions import LoginError

        s = self.settings
        try:
            client = IMAPClient(s.imap_host, port=s.imap_port, ssl=s.imap_ssl, timeout=60)
        except ssl.SSLCertVerificationError as err:  # never advise turning TLS off for this
            raise ConfigError(
                f"INTAKE_IMAP_HOST: the certificate of {s.imap_host}:{s.imap_port} could not be verified "
                f"({err.verify_message or err.reason}); check the host name, this server's clock and its CA "
                "certificates (a proxy that intercepts TLS needs its CA installed); do not turn TLS off") from None
        except ssl.SSLError as err:
            if not _plain_port(err):
                raise  # a handshake cut short by the network: retried like any drop
            raise ConfigError(
                f"INTAKE_IMAP_SSL / INTAKE_IMAP_PORT: TLS with {s.imap_host}:{s.imap_port} failed ({err.reason or err}); "
                "the port may be a plain one (993 is TLS; set INTAKE_IMAP_SSL=false only for a plain port)") from None
        client.normalise_times = False  # keep INTERNALDATE's own offset
        self.client = client
        try:
            client.login(s.imap_user, s.imap_password)
        except LoginError as err:
            self.close()
            if _temporary(err):
                raise  # [UNAVAILABLE], [INUSE], [LIMIT] (RFC 5530): the server's moment, retried
            raise LoginRejected(
                f"INTAKE_IMAP_PASSWORD: {s.imap_host} rejected the login of {s.imap_user} ({_said(err)}); "
                "check INTAKE_IMAP_USER and INTAKE_IMAP_PASSWORD (for 163: the 客户端授权码, not the web password, "
                "with IMAP enabled in the mailbox settings)") from None
        if b"ID" in client.capabilities():
            # before SELECT on every connection: 163 answers "Unsafe Login" otherwise;
            # only when advertised (some servers drop the connection on an unknown ID)
            client.id_({"name": "intake", "version": "0.1", "vendor": "intake",
                        "support-email": s.imap_user})
        if s.imap_move_to and not client.folder_exists(s.imap_move_to):
            self._create_folder(s.imap_move_to)
        selected = client.select_folder(s.imap_folder, readonly=s.imap_move_to is None)
        self.uidvalidity = int(selected[b"UIDVALIDITY"])

    def _create_folder(self, folder: str) -> None:
        """INTAKE_IMAP_MOVE_TO is created when missing (163 allows CREATE)."""
        from imapclient.exceptions import IMAPClientError

        try:
            self.client.create_folder(folder)
        except IMAPClientError as err:
            if self.client.folder_exists(folder):
                return  # another worker created it meanwhile
            self.close()
            raise ConfigError(f"INTAKE_IMAP_MOVE_TO: the folder {folder!r} does not exist and the server "
                              f"would not create it ({_said(err)}); create it in the mailbox or change the setting"
                              ) from None

    def uids_after(self, highest: int) -> list[int]:
        # "n:*" always matches the last message even when its UID is below n
        uids = self.client.search(["UID", f"{highest + 1}:*"])
        return sorted(uid for uid in uids if uid > highest)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each message, to keep each fetched batch within memory."""
        sizes = {}
        for start in range(0, len(uids), 500):
            for uid, item in self.client.fetch(uids[start:start + 500], ["RFC822.SIZE"]).items():
                sizes[uid] = int(item.get(b"RFC822.SIZE", 0))
        return sizes

    def fetch(self, uids: list[int]) -> list[Fetched]:
        data = self.client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        fetched = []
        for uid in uids:
            item = data.get(uid) or {}
            body = item.get(b"BODY[]")
            if body is None:
                continue  # an unsolicited FETCH (flags changed elsewhere) carries no body
            moment = item.get(b"INTERNALDATE")
            if moment is None:
                moment = datetime.now(timezone.utc)
            elif moment.tzinfo is None:
                moment = moment.astimezone()
            fetched.append(Fetched(uid, moment, bytes(body)))
        return fetched

    def archive(self, uids: list[int], folder: str) -> None:
        """Move processed mail: MOVE where offered, else COPY + \\Deleted + UID EXPUNGE."""
        capabilities = self.client.capabilities()
        if b"MOVE" in capabilities:
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.add_flags(uids, [b"\\Deleted"], silent=True)
        if b"UIDPLUS" in capabilities:
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # the connection may already be gone
                pass
            self.client = None


def _plain_port(err: ssl.SSLError) -> bool:
    """A TLS failure that a retry cannot mend: the port speaks plain text."""
    return (err.reason or "") in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE",
                                  "TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL")


def _temporary(err: Exception) -> bool:
    """A login refused for the moment (RFC 5530 response codes), not for the password."""
    return any(code in str(err).upper() for code in ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]"))


def _said(err: Exception) -> str:
    """What the server said, on one line."""
    text = str(err)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return " ".join(text.split())[:200]


class MaildirSource:
    """A Maildir, read as if it were a mailbox: INTERNALDATE is the file's mtime, a
    message's UID a hash of its unique Maildir key, and every poll lists every message
    (the ledger's SHA-256 dedupe keeps each one once). Nothing is changed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.uidvalidity = 1
        self._keys: list[str] = []

    def connect(self) -> None:
        if not (self.path / "new").is_dir() and not (self.path / "cur").is_dir():
            raise ConfigError(f"INTAKE_MAILDIR: not a Maildir: {self.path}")
        box = stdlib_mailbox.Maildir(str(self.path), factory=None, create=False)
        entries = []
        for key in box.keys():
            path = self.path / box._lookup(key)
            entries.append((path.stat().st_mtime_ns, key, path))
        entries.sort()
        # a Maildir key is unique and stable: its hash is the message's UID
        self._by_uid = {_key_uid(key): (mtime_ns, key, path) for mtime_ns, key, path in entries}
        self._order = [_key_uid(key) for _, key, _ in entries]

    def uids_after(self, highest: int) -> list[int]:
        return list(self._order)  # all, in delivery order: key hashes do not grow

    def sizes(self, uids: list[int]) -> dict[int, int]:
        return {uid: self._by_uid[uid][2].stat().st_size for uid in uids}

    def fetch(self, uids: list[int]) -> list[Fetched]:
        fetched = []
        for uid in uids:
            mtime_ns, _, path = self._by_uid[uid]
            moment = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)
            fetched.append(Fetched(uid, moment, path.read_bytes()))
        return fetched

    def archive(self, uids: list[int], folder: str) -> None:
        return None  # a Maildir source is read-only

    def close(self) -> None:
        return None


def _key_uid(key: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()[:7], "big")


def make_source(settings):
    if settings.maildir is not None:
        return MaildirSource(settings.maildir)
    return ImapSource(settings)


def deliver_to_maildir(folder: Path, raw: bytes, received: datetime) -> Path:
    """Put a message into a Maildir with a chosen delivery time (demo and tests)."""
    box = stdlib_mailbox.Maildir(str(folder), create=True)
    key = box.add(raw)
    path = Path(folder) / box._lookup(key)
    stamp = received.timestamp()
    os.utime(path, (stamp, stamp))
    return path
