"""Poll the mailbox into the ledger: every message seen gets its raw bytes on disk
(content-addressed, fsynced) and its row, committed before any other work.

Each fetched batch is committed together with the highest UID it reached, so a drop
mid-poll resumes after the last committed batch and nothing is fetched twice.
"""

from __future__ import annotations

import email.parser
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from intake.logs import about
from intake.kernel.errors import TransientError
from intake.settings import Settings
from intake.parsers.mail_headers import decode_header, raw_header, sender_of
from intake.sources import Fetched, MailSource
from intake.states import State
from intake.store import MailboxState, Message, audit

log = logging.getLogger("intake")
HEADER_BYTES = 256 << 10  # the ledger's look at a header block; the judging child reads it all
HEADER_VALUE_CHARS = 8192  # a Subject or From longer than this is cut before it is decoded
# a batch's small messages are held in memory whole (one FETCH), so a batch stops at
# this size; a message larger than 8 MiB streams in slices instead (intake.sources.imap)
BATCH_BYTES = 8 << 20
INCOMING = "incoming"  # raw/incoming: messages being stored, under temporary names
INCOMING_STALE_SECONDS = 3600  # a temporary file untouched this long was left by a killed process
ShouldStop = Callable[[], bool]


def raw_path(data_dir: Path, digest: str) -> Path:
    return data_dir / "raw" / digest[:2] / digest[2:4] / f"{digest}.eml"


def raw_file(data_dir: Path, message: Message) -> Path:
    """The message's raw file under the data folder in force, found by its hash: a data folder
    restored from a backup under another path still works (the recorded path names the old one)."""
    path = raw_path(data_dir, message.sha256)
    return path if path.exists() or not message.raw_path else Path(message.raw_path)


@dataclass(frozen=True)
class StoredRaw:
    digest: str  # SHA-256, hex
    path: Path
    size: int


def store_raw(data_dir: Path, body: Iterable[bytes]) -> StoredRaw:
    """Write a message's pieces to the raw store as they come, hashing them on the way
    (a large message is never held whole). They go to a temporary file, fsynced, then
    renamed to their content's name: a body cut short (the source raises mid-way) or a
    crash leaves no file under a content name, only a temporary one, swept later."""
    incoming = data_dir / "raw" / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    temporary = incoming / f"{os.getpid()}-{uuid.uuid4().hex}.tmp"
    digest, size = hashlib.sha256(), 0
    try:
        with open(temporary, "wb") as out:
            for piece in body:
                digest.update(piece)
                out.write(piece)
                size += len(piece)
                del piece  # not held while the source fetches the next one
            out.flush()
            os.fsync(out.fileno())
        path = raw_path(data_dir, digest.hexdigest())
        if path.exists():
            temporary.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return StoredRaw(digest.hexdigest(), path, size)


def _sweep_incoming(data_dir: Path) -> None:
    """Temporary files left by a process killed while storing (the message is fetched
    again: it was never recorded); another worker's file in progress is younger."""
    incoming = data_dir / "raw" / INCOMING
    if not incoming.is_dir():
        return
    stale = time.time() - INCOMING_STALE_SECONDS
    for leftover in incoming.glob("*.tmp"):
        try:
            if leftover.stat().st_mtime < stale:
                leftover.unlink()
        except OSError:
            continue  # gone meanwhile


def _header_block(path: Path) -> bytes:
    """The start of a stored message, enough for its header block (bounded)."""
    with open(path, "rb") as fh:
        return fh.read(HEADER_BYTES)


def _headers(raw: bytes) -> dict:
    try:
        # the header block only: parsing a 60 MB message for its subject costs 300 MB
        # (and at most HEADER_BYTES of it: this runs in the daemon, outside any judging budget)
        block = raw[:HEADER_BYTES]  # the stored file's first HEADER_BYTES (_header_block)
        end = min((at for at in (block.find(b"\r\n\r\n"), block.find(b"\n\n")) if at != -1), default=len(block))
        parsed = email.parser.BytesHeaderParser().parsebytes(block[:end] + b"\r\n\r\n")
        for name in ("Message-ID", "Subject", "From"):  # cut before decoding, not after
            values = parsed.get_all(name) or []
            if any(len(str(value)) > HEADER_VALUE_CHARS for value in values):
                del parsed[name]
                for value in values:
                    parsed[name] = str(value)[:HEADER_VALUE_CHARS]
        return {  # clamped: a header is the sender's to make as long as they like
            "message_id": decode_header(parsed.get("Message-ID"))[:998] or None,
            "subject": decode_header(parsed.get("Subject"))[:2000],
            # the address only from the addr-spec, never from the (decoded) display name
            "from": sender_of(parsed)[1],
            "from_header": decode_header(raw_header(parsed, "from"))[:998] or None,
        }
    except Exception:  # headers so broken the parser gives up: the core will say more
        return {"message_id": None, "subject": None, "from": None, "from_header": None}


def record(session: Session, mailbox: str, uidvalidity: int, fetched: Fetched, stored: StoredRaw) -> Message | None:
    """The ledger row of one fetched (and stored) message, unless this content is already
    known here (after a UIDVALIDITY change the same mail comes back under new UIDs: never
    re-judge)."""
    digest, path = stored.digest, stored.path
    known = session.scalar(select(Message).where(Message.sha256 == digest).order_by(Message.id).limit(1))
    if known is not None:
        # seen before (a UIDVALIDITY change, a renamed mailbox setting): never re-judged;
        # its row follows the message to its new UID so that archiving still finds it
        if known.mailbox == mailbox and (known.uidvalidity, known.uid) != (uidvalidity, fetched.uid):
            known.uidvalidity, known.uid = uidvalidity, fetched.uid
            audit(session, known.id, "daemon", "uid_changed", uid=fetched.uid, uidvalidity=uidvalidity)
        return None
    headers = _headers(_header_block(path))
    message = Message(
        mailbox=mailbox, uidvalidity=uidvalidity, uid=fetched.uid, sha256=digest, raw_path=str(path),
        size=stored.size, received_at=fetched.internaldate, message_id=headers["message_id"],
        from_address=headers["from"], from_header=headers["from_header"], subject=headers["subject"],
        state=State.RECEIVED.value,
    )
    session.add(message)
    session.flush()
    message.receipt = f"WX{fetched.internaldate.year}-{message.id:06d}"
    audit(session, message.id, "daemon", State.RECEIVED.value, uid=fetched.uid, uidvalidity=uidvalidity)
    return message


def poll(settings: Settings, Session: sessionmaker, source_factory: Callable[[], MailSource], retries: int = 5, backoff: float = 2.0,
         should_stop: ShouldStop = lambda: False) -> int:
    """Fetch everything new into the ledger; reconnect with backoff after a drop (a
    source's TransientError). A stop request ends the backoff at once."""
    attempt = 0
    total = 0
    while not should_stop():
        source = source_factory()
        try:
            source.connect()
            total += _poll_batches(settings, Session, source)
            log.info("poll of %s: %d new", settings.mailbox_name, total)
            return total
        except TransientError as err:
            source.close()  # before the wait (close is idempotent)
            attempt += 1
            if attempt > retries:
                raise TransientError(f"mailbox: still failing after {retries} retries: {err}") from err
            wait = min(60.0, backoff * 2 ** (attempt - 1))
            log.warning("mailbox connection lost (%s); reconnecting in %.1fs", err, wait)
            _sleep(wait, should_stop)
        finally:  # whatever escapes (a database error too), the connection is closed
            source.close()
    return total


def _sleep(seconds: float, should_stop: ShouldStop) -> None:
    """Sleep, but wake within a fraction of a second of a stop request."""
    until = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < until:
        time.sleep(min(0.2, max(0.0, until - time.monotonic())))


def _batches(uids: list[int], sizes: dict[int, int], most: int) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= most or total + size > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _poll_batches(settings: Settings, Session: sessionmaker, source: MailSource) -> int:
    mailbox = settings.mailbox_name
    with Session.begin() as session:
        state = session.get(MailboxState, (mailbox, source.uidvalidity))
        highest = state.highest_uid if state else 0
    uids = source.uids_after(highest)
    _sweep_incoming(settings.data_dir)
    count = 0
    for batch in _batches(uids, source.sizes(uids), settings.fetch_batch):
        # stored before the transaction opens: a large message streams in for a while
        stored = [(item, store_raw(settings.data_dir, item.body)) for item in source.fetch(batch)]
        with Session.begin() as session:
            count += _record_batch(session, mailbox, source.uidvalidity, stored)
            reached = _advance(session, mailbox, source.uidvalidity, batch, {item.uid for item, _ in stored})
        if reached != batch[-1]:
            break
    return count


def _record_batch(session: Session, mailbox: str, uidvalidity: int, stored: list[tuple[Fetched, StoredRaw]]) -> int:
    count = 0
    for item, raw in stored:
        try:
            with session.begin_nested():  # another worker may record it first
                message = record(session, mailbox, uidvalidity, item, raw)
        except IntegrityError:
            continue
        if message is not None:
            count += 1
            log.info("message %s received: UID %s, %d bytes", message.id, item.uid, raw.size,
                     extra=about(message.receipt, message.message_id))
    return count


def _advance(session: Session, mailbox: str, uidvalidity: int, batch: list[int], got: set[int]) -> int:
    """Advance the highest UID only over UIDs whose bodies came: one that came back
    without its body (an unsolicited FETCH) is fetched again next time, not skipped."""
    state = session.get(MailboxState, (mailbox, uidvalidity))
    if state is None:
        state = MailboxState(mailbox=mailbox, uidvalidity=uidvalidity, highest_uid=0)
        session.add(state)
    reached = state.highest_uid
    for uid in batch:
        if uid not in got:
            log.warning("UID %s came back without its body; fetching it again next round", uid)
            break
        reached = uid
    state.highest_uid = max(state.highest_uid, reached)
    return reached


def archive_done(settings: Settings, Session: sessionmaker, source_factory: Callable[[], MailSource]) -> int:
    """Move processed mail to INTAKE_IMAP_MOVE_TO (COPY + \\Deleted + UID EXPUNGE on 163)."""
    if not settings.imap_move_to or settings.maildir is not None:
        return 0
    source = source_factory()
    try:
        source.connect()  # inside the try: a refused SELECT after LOGIN still closes it
        with Session.begin() as session:
            rows = session.scalars(select(Message).where(
                Message.mailbox == settings.mailbox_name, Message.uidvalidity == source.uidvalidity,
                Message.state == State.DONE.value, Message.archived.is_(False))).all()
            if rows:
                source.archive([m.uid for m in rows], settings.imap_move_to)
                for message in rows:
                    message.archived = True
                    audit(session, message.id, "daemon", "archived", folder=settings.imap_move_to)
            return len(rows)
    finally:
        source.close()
