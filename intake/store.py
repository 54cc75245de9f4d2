"""The tracking database (SQLAlchemy 2; schema by Alembic, see intake/migrations).

Tables: the ledger of every message seen (``messages``), its projects, findings and
stored files, units and their contact addresses, the outbox (every outgoing mail is
a row before it is sent), per-mailbox poll state, and an audit event for every state
change and staff action.
"""

from __future__ import annotations

import os
import weakref
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, TypeDecorator, UniqueConstraint,
    create_engine, event,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from intake.kernel.errors import LoginRejected
from intake.states import OutboxState, State



def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (which keeps no offset) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Message(Base):
    """The ledger: one row per message seen, written before any other work."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_messages_mailbox_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    receipt: Mapped[str | None] = mapped_column(String(32), unique=True)
    mailbox: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(Text)  # None: no single mailbox, answered nowhere
    from_header: Mapped[str | None] = mapped_column(Text)  # the From header decoded, for staff
    subject: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=State.RECEIVED, index=True)
    verdict: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    unit_name: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # fetches of its linked files that failed on our side (or were cut short by a crash)
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    archived: Mapped[bool] = mapped_column(default=False)  # moved to INTAKE_IMAP_MOVE_TO
    override: Mapped[str | None] = mapped_column(String(20))
    override_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    projects: Mapped[list["Project"]] = relationship(
        back_populates="message", foreign_keys="Project.message_id", order_by="Project.id")
    findings: Mapped[list["FindingRow"]] = relationship(back_populates="message", order_by="FindingRow.id")


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    unit_name: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text, index=True)
    verdict: Mapped[str] = mapped_column(String(20))
    files: Mapped[dict | None] = mapped_column(JSON)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    late: Mapped[bool] = mapped_column(default=False)  # from a late (void) report: replaces nothing

    message: Mapped[Message] = relationship(back_populates="projects", foreign_keys=[message_id])


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    project: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(80))
    severity: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="findings")


class StoredFile(Base):
    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    quota: Mapped[int | None] = mapped_column(Integer)


class UnitContact(Base):
    __tablename__ = "unit_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)


class Outbox(Base):
    """Every outgoing mail is a row before it is sent: replies (one per message at most,
    the unique message_id), the digest and alerts (no message; a unique dedupe_key such
    as 'digest:2026-11-30' makes "once" a compare-and-set). States and their moves:
    ``intake.states.OutboxState``; only ``intake.daemon.delivery`` moves a row."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="reply")  # 'reply' | 'digest' | 'alert'
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), unique=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(Text, index=True)  # one or more addresses, ", " between
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)  # the whole .eml
    state: Mapped[str] = mapped_column(String(20), default=OutboxState.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # transient failures so far
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: due now
    last_error: Mapped[str | None] = mapped_column(Text)  # the server's answer, or why it is held/uncertain
    sending_by: Mapped[str | None] = mapped_column(String(200))  # the delivery pass that set it sending
    # the transport that took it last ('smtp' | 'folder'): only the folder's own rows are
    # the folder's to write again, and a reply only written to the folder may be resent
    via: Mapped[str | None] = mapped_column(String(20))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.recipient.split(",") if address.strip()]


class MailboxState(Base):
    """The highest UID seen per (mailbox, UIDVALIDITY): 163 sends no UIDNEXT."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    highest_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class ServiceStatus(Base):
    """How a part of the daemon fared last (``mailbox``: the last poll; ``smtp``: the last
    delivery batch that connected), for staff and for alerts."""

    __tablename__ = "service_status"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    ok: Mapped[bool] = mapped_column()
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def set_status(session: Session, name: str, ok: bool, detail: str | None = None) -> None:
    row = session.get(ServiceStatus, name)
    if row is None:
        row = ServiceStatus(name=name, ok=ok)
        session.add(row)
    row.ok, row.detail, row.at = ok, detail, utcnow()
    if ok:
        row.last_ok_at = row.at


LOGIN_REFUSED = "LoginRejected"  # how a status detail starts when a login was refused


def status_detail(err: BaseException) -> str:
    """A failure as a status row records it (the poll's 'mailbox', the delivery pass's
    'smtp'): its kind, then its line. A refused login reads ``LoginRejected: …`` whatever
    subclass raised it, so that alerts tell it by ``login_refused``."""
    kind = LOGIN_REFUSED if isinstance(err, LoginRejected) else type(err).__name__
    return f"{kind}: {err}"[:2000]


def login_refused(detail: str | None) -> bool:
    """True when a status detail says that the server refused our login."""
    return bool(detail) and str(detail).startswith(f"{LOGIN_REFUSED}:")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict | None] = mapped_column(JSON)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    else:
        engine = create_engine(url, pool_pre_ping=True)
    _ENGINES.add(engine)
    return engine


# A judgement runs in a forked child (intake.kernel.budget): it must never use the
# parent's pooled connections, so a child forgets them (without closing the parent's).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_pools_in_child() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pools_in_child)


MIGRATION_LOCK = 0x696E74616B65  # "intake": PostgreSQL's advisory lock for the schema


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (``intake db upgrade``). Workers
    that start together take turns: the first migrates holding a lock to its commit (on
    PostgreSQL an advisory lock, on SQLite the write lock, which pysqlite would otherwise
    take only at the first write, not before DDL), the others wait and find the schema
    done; without it they raced to CREATE the same tables and failed."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # waits up to the connection's timeout (60 s)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def audit(session: Session, message_id: int | None, actor: str, action: str, **detail: object) -> None:
    session.add(AuditEvent(message_id=message_id, actor=actor, action=action, detail=detail or None))
