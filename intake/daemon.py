"""The daemon's shell around the pure core: poll, record, claim, judge, reply.

Every message seen gets a ledger row (and its raw bytes on disk, content-addressed)
committed before any other work. Work is claimed with a compare-and-set on the row
(``SELECT … FOR UPDATE SKIP LOCKED`` first on PostgreSQL), so several workers, on one
machine or several, never process a message twice. Each step commits its result with
the next state, so a crash at any moment resumes where the last commit left off:
judged results are never judged again, and a reply row is never sent twice.
"""

from __future__ import annotations

import email.parser
import hashlib
import imaplib
import logging
import os
import shutil
import socket
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from intake.kernel.errors import PermanentError, TransientError
from intake.store import (
    DONE, FAILED, JUDGED, UNPACKING, QUARANTINED, RECEIVED, REPLYING, FindingRow, MailboxState, Message,
    Outbox, Project, StoredFile, Unit, UnitContact, audit, utcnow,
)

log = logging.getLogger("intake")
LEASE = timedelta(minutes=30)  # a claim older than this is another machine's lost work


def worker_id(pid: int | None = None) -> str:
    """host:pid:node:start — unique to one process's life. A pid alone is not: pids are
    reused, and a claim "held" by an unrelated process would never be taken over. The
    node (boot id and PID namespace) tells apart containers that share a host name."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_node()}:{_start_time(pid)}"


def _node() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "-"
    return f"{boot}.{namespace}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat[stat.rindex(")") + 2:].split()[19]  # the name may hold spaces and ")"


# ---------------------------------------------------------------- recording

def raw_path(data_dir: Path, digest: str) -> Path:
    return data_dir / "raw" / digest[:2] / digest[2:4] / f"{digest}.eml"


def store_raw(data_dir: Path, raw: bytes) -> tuple[str, Path]:
    digest = hashlib.sha256(raw).hexdigest()
    path = raw_path(data_dir, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    return digest, path


def _headers(raw: bytes) -> dict:
    from intake.parsers.messages import decode_header, raw_header, sender_of

    try:
        # the header block only: parsing a 60 MB message for its subject costs 300 MB
        end = min((at for at in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if at != -1), default=len(raw))
        parsed = email.parser.BytesHeaderParser().parsebytes(raw[:end] + b"\r\n\r\n")
        raw_from = raw_header(parsed, "from")
        return {  # clamped: a header is the sender's to make as long as they like
            "message_id": decode_header(parsed.get("Message-ID"))[:998] or None,
            "subject": decode_header(parsed.get("Subject"))[:2000],
            # the address only from the addr-spec, never from the (decoded) display name
            "from": sender_of(parsed)[1],
            "from_header": decode_header(raw_from)[:998] or None,
        }
    except Exception:  # headers so broken the parser gives up: the core will say more
        return {"message_id": None, "subject": None, "from": None, "from_header": None}


def record(session, settings, mailbox: str, uidvalidity: int, fetched) -> Message | None:
    """The ledger row of one fetched message, unless this content is already known here
    (after a UIDVALIDITY change the same mail comes back under new UIDs: never re-judge)."""
    digest, path = store_raw(settings.data_dir, fetched.raw)
    known = session.scalar(select(Message).where(Message.sha256 == digest).order_by(Message.id).limit(1))
    if known is not None:
        # seen before (a UIDVALIDITY change, a renamed mailbox setting): never re-judged;
        # its row follows the message to its new UID so that archiving still finds it
        if known.mailbox == mailbox and (known.uidvalidity, known.uid) != (uidvalidity, fetched.uid):
            known.uidvalidity, known.uid = uidvalidity, fetched.uid
            audit(session, known.id, "daemon", "uid_changed", uid=fetched.uid, uidvalidity=uidvalidity)
        return None
    headers = _headers(fetched.raw)
    message = Message(
        mailbox=mailbox, uidvalidity=uidvalidity, uid=fetched.uid, sha256=digest, raw_path=str(path),
        size=len(fetched.raw), received_at=fetched.internaldate, message_id=headers["message_id"],
        from_address=headers["from"], from_header=headers["from_header"], subject=headers["subject"],
        state=RECEIVED,
    )
    session.add(message)
    session.flush()
    message.receipt = f"WX{fetched.internaldate.year}-{message.id:06d}"
    audit(session, message.id, "daemon", "received", uid=fetched.uid, uidvalidity=uidvalidity)
    return message


def poll(settings, Session, source_factory, retries: int = 5, backoff: float = 2.0,
         should_stop=lambda: False) -> int:
    """Fetch everything new into the ledger; reconnect with backoff after a drop.

    Each batch is committed together with the highest UID it reached, so a drop
    mid-poll resumes after the last committed batch and nothing is fetched twice.
    A stop request ends the backoff at once (SIGTERM never waits out the retries).
    """
    attempt = 0
    total = 0
    while not should_stop():
        source = source_factory()
        try:
            source.connect()
            total += _poll_batches(settings, Session, source)
            return total
        except (OSError, imaplib.IMAP4.error, EOFError, socket.timeout) as err:
            source.close()  # before the wait (close is idempotent)
            attempt += 1
            if attempt > retries:
                raise TransientError(f"mailbox unreachable after {retries} retries: {err}") from err
            wait = min(60.0, backoff * 2 ** (attempt - 1))
            log.warning("mailbox connection lost (%s); reconnecting in %.1fs", err, wait)
            _sleep(wait, should_stop)
        finally:  # whatever escapes (a database error too), the connection is closed
            source.close()
    return total


def _sleep(seconds: float, should_stop) -> None:
    """Sleep, but wake within a fraction of a second of a stop request."""
    until = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < until:
        time.sleep(min(0.2, max(0.0, until - time.monotonic())))


BATCH_BYTES = 64 << 20  # a batch is held in memory whole: 50 messages of 45 MB would not fit


def _batches(uids: list[int], sizes: dict[int, int], most: int):
    batch, total = [], 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= most or total + size > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _poll_batches(settings, Session, source) -> int:
    mailbox = settings.mailbox_name
    with Session.begin() as session:
        state = session.get(MailboxState, (mailbox, source.uidvalidity))
        highest = state.highest_uid if state else 0
    uids = source.uids_after(highest)
    count = 0
    for batch in _batches(uids, source.sizes(uids), settings.fetch_batch):
        fetched = source.fetch(batch)
        reached = None
        with Session.begin() as session:
            for item in fetched:
                try:
                    with session.begin_nested():  # another worker may record it first
                        if record(session, settings, mailbox, source.uidvalidity, item) is not None:
                            count += 1
                except IntegrityError:
                    continue
            state = session.get(MailboxState, (mailbox, source.uidvalidity))
            if state is None:
                state = MailboxState(mailbox=mailbox, uidvalidity=source.uidvalidity, highest_uid=0)
                session.add(state)
            # advance only over UIDs whose bodies came: one that came back without its
            # body (an unsolicited FETCH) is fetched again next time, not skipped
            got = {item.uid for item in fetched}
            reached = state.highest_uid
            for uid in batch:
                if uid not in got:
                    log.warning("UID %s came back without its body; fetching it again next round", uid)
                    break
                reached = uid
            state.highest_uid = max(state.highest_uid, reached)
        if reached != batch[-1]:
            break
    return count


def archive_done(settings, Session, source_factory) -> int:
    """Move processed mail to INTAKE_IMAP_MOVE_TO (COPY + \\Deleted + UID EXPUNGE on 163)."""
    if not settings.imap_move_to or settings.maildir is not None:
        return 0
    source = source_factory()
    try:
        source.connect()  # inside the try: a refused SELECT after LOGIN still closes it
        with Session.begin() as session:
            rows = session.scalars(select(Message).where(
                Message.mailbox == settings.mailbox_name, Message.uidvalidity == source.uidvalidity,
                Message.state == DONE, Message.archived.is_(False))).all()
            if rows:
                source.archive([m.uid for m in rows], settings.imap_move_to)
                for message in rows:
                    message.archived = True
                    audit(session, message.id, "daemon", "archived", folder=settings.imap_move_to)
            return len(rows)
    finally:
        source.close()


# ---------------------------------------------------------------- claiming

def _gone(claimed_by: str) -> bool:
    """True when the claiming worker is known to be dead: a worker of this host whose
    process (pid, boot and start time) no longer runs. Unknown (another host, an id in
    the old host:pid form) is not gone: such a claim waits for its lease to run out."""
    host, pid, node, started = (claimed_by.split(":") + ["", "", ""])[:4]
    if host != socket.gethostname() or node in ("", "-") or node != _node() or not pid.isdigit() or not started:
        return False  # another machine, boot or container: its pids are not ours to look up
    return worker_id(int(pid)) != claimed_by


def _claimable(claimed_by: str | None, claimed_at: datetime | None, me: str, now: datetime) -> bool:
    if not claimed_by or claimed_by == me:
        return True
    if claimed_at is None or _aware(claimed_at) <= now - LEASE:
        return True  # every claim has a lease: a live worker renews it at each step
    return _gone(claimed_by)


def claim(Session, me: str) -> int | None:
    """Take the next message that needs work, or None. Safe with many workers."""
    now = utcnow()
    with Session.begin() as session:
        query = (
            select(Message.id, Message.claimed_by, Message.claimed_at)
            .where(or_(
                Message.state == RECEIVED,
                (Message.state == FAILED) & (Message.next_attempt_at <= now),
                Message.state.in_((UNPACKING, JUDGED, REPLYING)),
            ))
            .order_by(Message.id)
            .limit(20)
        )
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for message_id, claimed_by, claimed_at in session.execute(query).all():
            if not _claimable(claimed_by, claimed_at, me, now):
                continue  # a live worker's, within its lease
            taken = session.execute(
                update(Message)
                .where(Message.id == message_id,
                       Message.claimed_by.is_(None) if claimed_by is None else Message.claimed_by == claimed_by)
                .values(claimed_by=me, claimed_at=now)
            )
            if taken.rowcount == 1:
                return message_id
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- processing

class Worker:
    def __init__(self, settings, Session, policy, me: str | None = None):
        self.settings = settings
        self.Session = Session
        self.policy = policy
        self.me = me or worker_id()

    def drain(self, should_stop=lambda: False) -> int:
        """Process every message that needs work; stop between messages when asked."""
        done = 0
        seen: set[int] = set()
        while not should_stop():
            message_id = claim(self.Session, self.me)
            if message_id is None:
                return done
            if message_id in seen:
                # no progress on it since this drain began: stop rather than spin
                log.error("message %s is claimable again right after processing; stopping this round", message_id)
                with self.Session.begin() as session:
                    session.get(Message, message_id).claimed_by = None
                return done
            seen.add(message_id)
            self.process(message_id)
            done += 1
        return done

    def process(self, message_id: int) -> None:
        try:
            with self.Session() as session:
                message = session.get(Message, message_id)
                judged = message.report is not None
            if not judged:
                self.judge(message_id)
                with self.Session() as session:
                    if session.get(Message, message_id).state not in (JUDGED, REPLYING):
                        return  # quarantined, or no longer ours
            self.reply(message_id)
        except Exception as err:  # every failure is recorded and retried, never dropped
            self.failed(message_id, err)

    def judge(self, message_id: int) -> None:
        from intake.core import check_message

        with self.Session.begin() as session:
            message = _locked(session, message_id)
            if message.claimed_by != self.me:
                return
            if message.state == UNPACKING and message.attempts >= self.settings.max_attempts:
                # it was in hand when its worker died, max_attempts times: a poison message
                message.state = QUARANTINED
                message.claimed_by = None
                message.last_error = "the worker died while processing this message"
                audit(session, message_id, self.me, "quarantined", error=message.last_error)
                return
            message.state = UNPACKING
            message.claimed_at = utcnow()  # the lease is renewed at each step
            message.attempts += 1  # counted when work starts: a crash counts too
            audit(session, message_id, self.me, "unpacking", attempt=message.attempts)
        workdir = self.settings.data_dir / "work" / f"{message.receipt or message_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            with (open(message.raw_path, "rb") as fh, _mapped(fh) as raw,  # no heap copy of large mail
                  _LeaseRenewal(self.Session, message_id, self.me)):
                report = check_message(raw, self.policy,
                                       _aware(message.received_at) if message.received_at else None, workdir)
            attachments = _attachment_digests(workdir / "attachments")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        with self.Session.begin() as session:
            message = _locked(session, message_id)
            if message.report is not None or message.claimed_by != self.me:
                return  # judged by someone else meanwhile: never twice
            self._save(session, message, report, attachments)

    def _save(self, session, message: Message, report, attachments) -> None:
        from intake.kernel.findings import Finding

        data = report.to_json()
        unit = find_unit(session, message.from_address, report.unit)
        message.unit_id = unit.id if unit else None
        message.unit_name = unit.name if unit else report.unit
        extra: list[Finding] = []
        rows = []
        for project in report.projects:
            key = name_key(project.name)
            row = Project(message_id=message.id, unit_id=message.unit_id, unit_name=message.unit_name,
                          name=project.name, name_key=key, verdict=project.verdict, files=project.files)
            session.add(row)
            rows.append(row)
        session.flush()
        late = any(f["code"] == "deadline.late" for f in data["findings"])
        for row in rows:
            row.late = late
        if message.unit_name and not late:  # a late report is void: it replaces nothing
            extra += self._supersede(session, message, rows)
        if unit is not None and unit.quota is not None:
            current = session.scalar(
                select(_count()).select_from(Project)
                .where(Project.unit_id == unit.id, Project.superseded_by.is_(None), Project.late.is_(False)))
            if current > unit.quota:
                extra.append(Finding("quota.exceeded",
                                     f"{unit.name}的报送名额为 {unit.quota} 个，目前已报送 {current} 个，超出名额。"
                                     "请确认需要保留的项目，工作人员将与贵单位联系。"))
        data["findings"] += [f.to_json() for f in extra]
        data["unit"] = message.unit_name
        for finding in data["findings"]:
            session.add(FindingRow(message_id=message.id, project=finding["project"], code=finding["code"],
                                   severity=finding["severity"], text=finding["message"], path=finding["path"]))
        for name, digest, size in attachments:
            session.add(StoredFile(message_id=message.id, name=name, sha256=digest, size=size))
        message.report = data
        message.verdict = message.override or data["verdict"]  # a staff decision stands
        message.state = JUDGED
        message.claimed_at = utcnow()
        message.last_error = None
        audit(session, message.id, self.me, "judged", verdict=data["verdict"])

    def _supersede(self, session, message: Message, rows: list[Project]) -> list:
        """The newest report of a course wins, whatever order the reports are judged in
        (a retry, two workers, a reprocess): earlier ones point to it."""
        from intake.kernel.findings import Finding

        if _pg(session):  # one unit's reports are matched up one at a time
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:unit))"), {"unit": message.unit_name})
        mine = (_aware(message.received_at) if message.received_at else utcnow(), message.id)
        findings = []
        for row in rows:
            others = session.execute(
                select(Project, Message.received_at, Message.id, Message.receipt)
                .join(Message, Project.message_id == Message.id)
                .where(Project.unit_name == message.unit_name, Project.name_key == row.name_key,
                       Project.message_id != message.id, Project.superseded_by.is_(None),
                       Project.late.is_(False))
            ).all()
            ranked = sorted(((_aware(at) if at else mine[0], mid), project, receipt)
                            for project, at, mid, receipt in others)
            later = [(key, project) for key, project, _ in ranked if key > mine]
            current = later[-1][1] if later else row
            if later:
                row.superseded_by = current.id
                audit(session, message.id, self.me, "superseded", project=row.id, by=current.id)
            for key, project, receipt in ranked:
                if project is current:
                    continue
                project.superseded_by = current.id
                audit(session, message.id, self.me, "superseded", project=project.id, by=current.id)
                if key < mine and not later:
                    findings.append(Finding("duplicate.resubmission",
                                            f"本项目替换此前报送的同名项目（回执号 {receipt}），以本次为准。",
                                            row.name, None))
        return findings

    def reply(self, message_id: int) -> None:
        from intake.notifier.replies import compose_reply

        with self.Session.begin() as session:
            message = _locked(session, message_id)
            if message.state == DONE or message.claimed_by != self.me:
                return
            message.claimed_at = utcnow()
            outbox = session.scalar(select(Outbox).where(Outbox.message_id == message_id))
            if outbox is not None and outbox.state == "sent":
                # answered before (a reprocessed message): never a second reply
                message.state = DONE
                message.claimed_by = None
                audit(session, message_id, self.me, "done", replied=False, already_answered=True)
                return
            if outbox is not None:
                message.state = REPLYING
            if outbox is None:
                reason = self._no_reply_reason(message)
                if reason:
                    message.state = DONE
                    message.claimed_by = None
                    audit(session, message_id, self.me, "done", replied=False, reason=reason)
                    return
                raw = compose_reply(message, self.settings)
                outbox = Outbox(message_id=message_id, recipient=message.from_address,
                                subject=raw["Subject"], raw=raw.as_string())
                session.add(outbox)
                message.state = REPLYING
                audit(session, message_id, self.me, "reply_queued")
        self._deliver(message_id)

    def _no_reply_reason(self, message: Message) -> str | None:
        """Why this message gets no reply, or None when it gets one."""
        if message.verdict == "ignored":
            return "ignored"
        if not message.from_address:
            # several addresses, or none that parses: never answered to a guess;
            # `intake submissions` lists it for staff with the From header as written
            return "no_sender_address"
        since = self.settings.reply_since
        if since and message.received_at and _aware(message.received_at) < since:
            return "before_reply_since"
        return None

    def _deliver(self, message_id: int) -> None:
        """Until the notifier issue: a reply is written to the outbox folder as .eml.
        Named by its outbox row, so a retried delivery rewrites the same file."""
        with self.Session.begin() as session:
            message = _locked(session, message_id)
            if message.claimed_by != self.me or message.state != REPLYING:
                return  # reprocessed or taken over meanwhile
            outbox = session.scalar(select(Outbox).where(Outbox.message_id == message_id))
            if outbox.state != "sent":
                folder = self.settings.data_dir / "outbox"
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / f"{message.receipt}-{outbox.id}.eml"
                temporary = target.with_suffix(".tmp")
                temporary.write_text(outbox.raw, encoding="utf-8")
                os.replace(temporary, target)
                outbox.state = "sent"
                outbox.sent_at = utcnow()
            message.state = DONE
            message.claimed_by = None
            audit(session, message_id, self.me, "done", replied=True)

    def failed(self, message_id: int, err: Exception) -> None:
        log.error("message %s failed: %s", message_id, err)
        with self.Session.begin() as session:
            message = _locked(session, message_id)
            if message.claimed_by != self.me or message.state in (DONE, QUARANTINED):
                return  # someone else's now (reprocess, a takeover): not ours to mark
            if message.report is not None:
                message.attempts += 1  # judging attempts are counted when they start
            message.last_error = f"{type(err).__name__}: {err}"
            message.traceback = traceback.format_exc()
            message.claimed_by = None
            permanent = isinstance(err, PermanentError)
            if permanent or message.attempts >= self.settings.max_attempts:
                message.state = QUARANTINED
                audit(session, message_id, self.me, "quarantined", error=message.last_error)
            else:
                message.state = FAILED
                delay = getattr(err, "retry_after", None) or 60 * 2 ** (message.attempts - 1)
                message.next_attempt_at = utcnow() + timedelta(seconds=delay)
                audit(session, message_id, self.me, "failed", error=message.last_error,
                      next_attempt_at=message.next_attempt_at.isoformat())


RENEW_EVERY = LEASE / 6


class _LeaseRenewal:
    """Renews this worker's claim while a long judgement runs, so that a live worker's
    claim never runs out (only a dead one's does: its renewals stop)."""

    def __init__(self, Session, message_id: int, me: str):
        self.Session, self.message_id, self.me = Session, message_id, me
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew, name=f"lease-{message_id}", daemon=True)

    def __enter__(self) -> "_LeaseRenewal":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def _renew(self) -> None:
        while not self.stopped.wait(RENEW_EVERY.total_seconds()):
            try:
                with self.Session.begin() as session:
                    session.execute(update(Message).where(Message.id == self.message_id,
                                                          Message.claimed_by == self.me)
                                    .values(claimed_at=utcnow()))
            except Exception as err:  # the next renewal tries again; the lease is long
                log.warning("could not renew the claim on message %s: %s", self.message_id, err)


def _locked(session, message_id: int) -> Message:
    """The message row, locked for the rest of this transaction before anything is read.

    The first statement writes the row: on PostgreSQL that is a row lock, on SQLite the
    database's write lock, and what is read after it is the newest state. Workers and
    staff actions take it the same way, so a reprocess never interleaves with a save
    or a delivery (two replies, or a reprocess silently undone, otherwise)."""
    session.execute(update(Message).where(Message.id == message_id).values(updated_at=utcnow()))
    return session.get(Message, message_id, populate_existing=True)


def _mapped(fh):
    import contextlib
    import mmap

    if os.fstat(fh.fileno()).st_size == 0:
        return contextlib.nullcontext(b"")
    return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _pg(session) -> bool:
    return session.bind.dialect.name == "postgresql"


def _count():
    from sqlalchemy import func

    return func.count(Project.id)


def _attachment_digests(folder: Path) -> list[tuple[str, str, int]]:
    found = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file():
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                found.append((path.name, digest.hexdigest(), path.stat().st_size))
    return found


def name_key(name: str) -> str:
    from intake.parsers.text import squash

    return squash(name)


def find_unit(session, sender: str | None, form_unit: str | None) -> Unit | None:
    """The unit: by the sender's address, else the form's 上报单位 matched to a unit name."""
    if sender:
        contact = session.scalar(select(UnitContact).where(UnitContact.email == sender.lower()))
        if contact is not None:
            return session.get(Unit, contact.unit_id)
    if form_unit:
        key = name_key(form_unit)
        units = session.scalars(select(Unit)).all()
        exact = [u for u in units if name_key(u.name) == key]
        if exact:
            return exact[0]
        near = [u for u in units if key and (key in name_key(u.name) or name_key(u.name) in key)]
        if len(near) == 1:
            return near[0]
    return None


# ---------------------------------------------------------------- staff actions

def reprocess(Session, receipt: str, actor: str = "staff") -> Message:
    """Replay a message from the start (a quarantined one, say); never a second reply."""
    with Session.begin() as session:
        message = _locked(session, _by_receipt(session, receipt).id)
        session.execute(delete(FindingRow).where(FindingRow.message_id == message.id))
        session.execute(delete(StoredFile).where(StoredFile.message_id == message.id))
        session.execute(update(Project).where(Project.superseded_by.in_(
            select(Project.id).where(Project.message_id == message.id))).values(superseded_by=None))
        session.execute(delete(Project).where(Project.message_id == message.id))
        # a reply not yet sent holds the old judgement: it goes, and the new one is
        # composed after judging again; a sent one stays and is never repeated
        dropped = session.execute(delete(Outbox).where(Outbox.message_id == message.id, Outbox.state != "sent"))
        session.execute(update(Message).where(Message.id == message.id).values(
            report=None, verdict=None, state=RECEIVED, attempts=0, next_attempt_at=None, claimed_by=None))
        audit(session, message.id, actor, "reprocess", unsent_reply_dropped=bool(dropped.rowcount))
    with Session() as session:
        return session.get(Message, message.id)


def override(Session, receipt: str, verdict: str, note: str, actor: str = "staff") -> Message:
    with Session.begin() as session:
        message = _locked(session, _by_receipt(session, receipt).id)
        message.override = verdict
        message.override_note = note
        message.verdict = verdict
        audit(session, message.id, actor, "override", verdict=verdict, note=note)
        return message


def _by_receipt(session, receipt: str) -> Message:
    message = session.scalar(select(Message).where(Message.receipt == receipt))
    if message is None:
        from intake.kernel.errors import ConfigError

        raise ConfigError(f"no submission with receipt {receipt}")
    return message


def submission(message: Message) -> dict:
    report = message.report or {}
    return {
        "receipt": message.receipt,
        "message_id": message.message_id,
        "from": message.from_address,
        "received_at": _aware(message.received_at).isoformat() if message.received_at else None,
        "verdict": message.verdict,
        "unit": message.unit_name,
        "projects": [{"name": p["name"], "verdict": p["verdict"]} for p in report.get("projects", [])],
    }
