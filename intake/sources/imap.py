"""The collection mailbox over IMAP (imapclient): 163 in production.

163 has no IDLE, no UIDNEXT and no MOVE, and refuses SELECT ("Unsafe Login") until
the client has sent the IMAP ID command: we send ID whenever it is advertised, track
the highest UID seen per (folder, UIDVALIDITY) ourselves, fetch with BODY.PEEK[] (mail
is never marked read; a large message in BODY.PEEK[]<offset.length> slices, stored while
it arrives) and archive with COPY + \\Deleted + UID EXPUNGE.

imapclient's and the socket's exceptions stay in here: every method turns them into
the kernel's ``TransientError`` (the poller retries with backoff) or ``ConfigError``.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterator
from datetime import datetime, timezone

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from intake.kernel.errors import ConfigError, LoginRejected, TransientError, unverified_certificate
from intake.settings import Settings
from intake.sources.base import Fetched

# what a dropped connection, a timeout or a server's NO/BAD look like from imapclient
NETWORK_ERRORS = (OSError, EOFError, socket.timeout, imaplib.IMAP4.error)
# imaplib reads a FETCH literal whole and imapclient keeps it (with the repr() below,
# a 45 MB attachment cost the daemon 243 MiB): a message larger than STREAM_ABOVE is
# fetched in SLICE_BYTES slices and stored while it arrives, so the poll's memory stays
# flat whatever the size (videos of several hundred MB come by mail): measured, a
# 400 MiB message costs the poll about 10 MiB over an idle one. Below it, one FETCH for
# a batch of messages saves a round trip each, and the poller's batches bound what is
# held (intake.daemon.ledger.BATCH_BYTES).
STREAM_ABOVE = 8 << 20
SLICE_BYTES = 8 << 20


@contextlib.contextmanager
def _as_kernel_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except (LoginRejected, ConfigError):
        raise
    except NETWORK_ERRORS as err:
        raise TransientError(f"mailbox: {doing} failed: {_said(err)}") from err


class ImapSource:
    """The collection mailbox over IMAP (imapclient)."""

    stream_above = STREAM_ABOVE  # (class attributes: the tests lower them)
    slice_bytes = SLICE_BYTES

    def __init__(self, settings: Settings) -> None:
        if not settings.imap_user or settings.imap_password is None:
            raise ConfigError("INTAKE_IMAP_USER / INTAKE_IMAP_PASSWORD: needed to poll the mailbox "
                              "(or set INTAKE_MAILDIR to read a Maildir)")
        self.settings = settings
        self.client: IMAPClient | None = None
        self.uidvalidity = 0
        self._sizes: dict[int, int] = {}  # RFC822.SIZE by UID, as ``sizes`` found them

    def connect(self) -> None:
        with _as_kernel_errors("connecting"):
            self._connect()

    def _connect(self) -> None:
        s = self.settings
        try:
            client = IMAPClient(s.imap_host, port=s.imap_port, ssl=s.imap_ssl, timeout=60)
        except ssl.SSLCertVerificationError as err:  # never advise turning TLS off for this
            raise unverified_certificate("INTAKE_IMAP_HOST", f"{s.imap_host}:{s.imap_port}",
                                       err.verify_message or err.reason) from None
        except ssl.SSLError as err:
            if not _plain_port(err):
                raise  # a handshake cut short by the network: retried like any drop
            raise ConfigError(
                f"INTAKE_IMAP_SSL / INTAKE_IMAP_PORT: TLS with {s.imap_host}:{s.imap_port} failed ({err.reason or err}); "
                "the port may be a plain one (993 is TLS; set INTAKE_IMAP_SSL=false only for a plain port)") from None
        client.normalise_times = False  # keep INTERNALDATE's own offset
        # imapclient writes a command and its CRLF in two sends: with Nagle on, the
        # CRLF waits for the server's (delayed, up to 40 ms) ACK on every SEARCH and FETCH
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # imapclient sets imaplib's debug level to 5 to log through `logging`, and at that
        # level imaplib formats the repr() of every literal it reads, logged or not: three
        # times a message's size in memory, for nothing
        client._imap.debug = 0
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
        try:
            selected = client.select_folder(s.imap_folder, readonly=s.imap_move_to is None)
        except IMAPClientAbortError:
            raise  # the connection dropped: retried
        except IMAPClientError as err:
            if client.folder_exists(s.imap_folder):
                raise  # a NO on a folder that is there (163's "Unsafe Login", a busy server): retried
            self.close()
            raise ConfigError(f"INTAKE_IMAP_FOLDER: the server has no folder {s.imap_folder!r} "
                              f"({_said(err)}); check its name (for 163 the inbox is INBOX)") from None
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        self._sizes = {}

    def _create_folder(self, folder: str) -> None:
        """INTAKE_IMAP_MOVE_TO is created when missing (163 allows CREATE)."""
        try:
            self._client.create_folder(folder)
        except IMAPClientAbortError:
            raise  # the connection dropped: retried
        except IMAPClientError as err:
            if self._client.folder_exists(folder):
                return  # another worker created it meanwhile
            self.close()
            raise ConfigError(f"INTAKE_IMAP_MOVE_TO: the folder {folder!r} does not exist and the server "
                              f"would not create it ({_said(err)}); create it in the mailbox or change the setting"
                              ) from None

    def uids_after(self, highest: int) -> list[int]:
        # "n:*" always matches the last message even when its UID is below n
        with _as_kernel_errors("listing new mail"):
            uids = self._client.search(["UID", f"{highest + 1}:*"])
        return sorted(uid for uid in uids if uid > highest)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each message: the poller batches by it, and a large one is
        fetched in slices (``fetch``)."""
        sizes = {}
        with _as_kernel_errors("reading message sizes"):
            for start in range(0, len(uids), 500):
                for uid, item in self._client.fetch(uids[start:start + 500], ["RFC822.SIZE"]).items():
                    sizes[uid] = int(item.get(b"RFC822.SIZE", 0))
        self._sizes.update(sizes)
        return sizes

    def fetch(self, uids: list[int]) -> list[Fetched]:
        """Small messages in one FETCH, held whole; each one over ``stream_above`` as a
        body that fetches itself in slices while the ledger stores it. A UID the server
        no longer lists is left out (the poller fetches it again, or it is gone)."""
        missing = [uid for uid in uids if uid not in self._sizes]
        sizes = {**self._sizes, **(self.sizes(missing) if missing else {})}
        small = [uid for uid in uids if uid in sizes and sizes[uid] <= self.stream_above]
        large = [uid for uid in uids if uid in sizes and sizes[uid] > self.stream_above]
        found = {**self._fetch_whole(small), **self._fetch_sliced(large)}
        return [found[uid] for uid in uids if uid in found]

    def _fetch_whole(self, uids: list[int]) -> dict[int, Fetched]:
        if not uids:
            return {}
        with _as_kernel_errors("fetching mail"):
            data = self._client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        fetched = {}
        for uid in uids:
            item = data.get(uid) or {}
            body = item.get(b"BODY[]")
            if body is None:
                continue  # an unsolicited FETCH (flags changed elsewhere) carries no body
            fetched[uid] = Fetched(uid, _moment(item), (bytes(body),))
        return fetched

    def _fetch_sliced(self, uids: list[int]) -> dict[int, Fetched]:
        """INTERNALDATE and RFC822.SIZE now; the body later, slice by slice."""
        if not uids:
            return {}
        with _as_kernel_errors("fetching mail"):
            data = self._client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])
        fetched = {}
        for uid in uids:
            item = data.get(uid) or {}
            if b"RFC822.SIZE" in item:
                fetched[uid] = Fetched(uid, _moment(item), self._slices(uid, int(item[b"RFC822.SIZE"])))
        return fetched

    def _slices(self, uid: int, size: int) -> Iterator[bytes]:
        """The body of ``uid`` in ``BODY.PEEK[]<offset.length>`` slices, checked to add up
        to RFC822.SIZE exactly: the last slice asks for one byte more than should be
        left, so a message longer than announced shows in the same answer."""
        offset = 0
        while True:
            last = size - offset <= self.slice_bytes
            wanted = size - offset + 1 if last else self.slice_bytes
            piece = self._slice(uid, offset, wanted)
            expected = wanted - 1 if last else wanted
            if piece is None or len(piece) != expected:
                came = "nothing" if piece is None else f"{len(piece)} bytes"
                raise TransientError(
                    f"mailbox: UID {uid} changed or vanished while it was fetched in slices: the slice at byte "
                    f"{offset} brought {came}, not {expected} (RFC822.SIZE {size}); nothing of it is kept, "
                    "it is fetched again at the next try")
            offset += len(piece)
            if piece:
                yield piece
            del piece  # not held while the next slice arrives
            if last:
                return

    def _slice(self, uid: int, offset: int, length: int) -> bytes | None:
        """``length`` bytes of ``uid`` from ``offset`` (fewer at its end); None if the
        answer carries no such slice (the message is gone)."""
        with _as_kernel_errors(f"fetching UID {uid} (from byte {offset})"):
            item = self._client.fetch([uid], [f"BODY.PEEK[]<{offset}.{length}>"]).get(uid) or {}
        piece = item.get(f"BODY[]<{offset}>".encode("ascii"))  # imapclient's key for a partial answer
        if isinstance(piece, str):
            piece = piece.encode("latin-1")
        return piece

    def archive(self, uids: list[int], folder: str) -> None:
        """Move processed mail: MOVE where offered, else COPY + \\Deleted + UID EXPUNGE."""
        client = self._client
        with _as_kernel_errors("moving processed mail"):
            capabilities = client.capabilities()
            if b"MOVE" in capabilities:
                client.move(uids, folder)
                return
            client.copy(uids, folder)
            client.add_flags(uids, [b"\\Deleted"], silent=True)
            if b"UIDPLUS" in capabilities:
                client.uid_expunge(uids)
            else:
                client.expunge()

    @property
    def _client(self) -> IMAPClient:
        if self.client is None:
            raise TransientError("mailbox: not connected")
        return self.client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # the connection may already be gone
                pass
            self.client = None


def _moment(item: dict) -> datetime:
    """INTERNALDATE with its offset (now, should the server not send it)."""
    moment = item.get(b"INTERNALDATE")
    if moment is None:
        return datetime.now(timezone.utc)
    return moment if moment.tzinfo is not None else moment.astimezone()


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
