"""The daily digest for staff: what it says is read here from the database
(``gather``), rendered by ``intake.notifier.digest_render``, and queued once a day.

Once a day, across restarts and any number of workers: the day's outbox row carries
the dedupe key ``digest:YYYY-MM-DD`` (the Beijing day), unique in the database, so
whichever worker inserts it first wins and every other insert adds nothing. The round
queues it from INTAKE_DIGEST_AT on, so a daemon that was down at that time sends it
when it comes up later that day.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, defer, sessionmaker

from intake.daemon.claims import aware
from intake.daemon.digest_items import attention, failures, held_replies
from intake.kernel.errors import ConfigError
from intake.staff_words import staff_reason
from intake.kernel.policy import Policy
from intake.kernel.report import BEIJING
from intake.notifier.digest_data import (
    Digest, Disk, FindingLine, Health, ProjectLine, Totals, UnitLine,
)
from intake.notifier.digest_render import compose_digest, write_preview
from intake.notifier.outbox import queue_mail
from intake.settings import Settings
from intake.store import FindingRow, Message, Outbox, Project, ServiceStatus, Unit, audit

log = logging.getLogger("intake")
UNKNOWN_UNIT = "单位未识别"
NO_STAFF = ("INTAKE_STAFF_EMAILS: no staff address is configured; set it to one or more addresses, "
            "comma-separated, to send the digest")


def beijing_day(now: datetime) -> date:
    return aware(now).astimezone(BEIJING).date()


def digest_key(now: datetime) -> str:
    return f"digest:{beijing_day(now).isoformat()}"


def is_due(settings: Settings, now: datetime) -> bool:
    """From INTAKE_DIGEST_AT (Beijing time) to the end of that Beijing day."""
    hours, minutes = (int(part) for part in settings.digest_at.split(":"))
    return aware(now).astimezone(BEIJING).time() >= time(hours, minutes)


def queue_due_digest(Session: sessionmaker, settings: Settings, policy: Policy, now: datetime) -> Outbox | None:
    """The round's part: today's digest when it is due and no worker queued it yet."""
    if not settings.staff_emails or not is_due(settings, now):
        return None
    return queue_digest(Session, settings, policy, now)


def queue_digest(Session: sessionmaker, settings: Settings, policy: Policy, now: datetime, *,
                 force: bool = False) -> Outbox | None:
    """Queue today's digest to INTAKE_STAFF_EMAILS; None when it was queued already
    (``force`` queues another under a key of its own)."""
    if not settings.staff_emails:
        raise ConfigError(NO_STAFF)
    key = digest_key(now) + (f":again:{uuid.uuid4().hex[:12]}" if force else "")
    with Session() as session:
        if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
            return None  # the cheap look first: composing takes a second
        digest = gather(session, settings, policy, now)
    mail = compose_digest(digest, settings, settings.staff_emails)
    with Session.begin() as session:
        row = queue_mail(session, mail, kind="digest", recipients=settings.staff_emails, dedupe_key=key)
        if row is not None:
            audit(session, None, "daemon", "digest_queued", key=key, outbox=row.id)
    if row is not None:
        log.info("digest %s queued for %s", key, ", ".join(settings.staff_emails))
    return row


def queued_at(Session: sessionmaker, now: datetime) -> datetime | None:
    """When today's digest was queued, if it was."""
    with Session() as session:
        return session.scalar(select(Outbox.created_at).where(Outbox.dedupe_key == digest_key(now)))


def preview(Session: sessionmaker, settings: Settings, policy: Policy, now: datetime, target: Path) -> list[Path]:
    """``intake digest --preview FILE.html``: the digest written, nothing sent."""
    with Session() as session:
        digest = gather(session, settings, policy, now)
    return write_preview(digest, target)


def gather(session: Session, settings: Settings, policy: Policy, now: datetime) -> Digest:
    messages = list(session.scalars(select(Message).options(defer(Message.report), defer(Message.traceback))
                                    .order_by(Message.id)))
    late = set(session.scalars(select(FindingRow.message_id).where(FindingRow.code == "deadline.late")))
    since = aware(now) - timedelta(hours=24)
    projects = _projects(session)
    return Digest(
        day=beijing_day(now), made_at=aware(now), title=policy.title, deadline=policy.deadline,
        contact=settings.contact or policy.contact,
        last_day=_totals([m for m in messages if _when(m) > since], late),
        overall=_totals(messages, late),
        units=_units(session, messages, projects),
        attention=attention(session, messages, now), failures=failures(session, now), held=held_replies(session),
        health=_health(session), disk=_disk(settings.data_dir), projects=projects, findings=_findings(session),
    )


def _when(message: Message) -> datetime:
    """When the mailbox received it (INTERNALDATE), else when the ledger saw it."""
    return aware(message.received_at or message.created_at)


def category(message: Message, late: set[int]) -> str:
    """The one total a message counts in: its verdict, 'late' for a void (late) report
    that no staff decision overrode, 'in_progress' before a verdict."""
    if message.verdict is None:
        return "in_progress"
    if message.id in late and not message.override:
        return "late"
    return message.verdict


def _totals(messages: list[Message], late: set[int]) -> Totals:
    totals = Totals(received=len(messages))
    for message in messages:
        name = category(message, late)
        totals.counts[name if name in totals.counts else "in_progress"] += 1
    return totals


def _projects(session: Session) -> list[ProjectLine]:
    """Every project of the database, with the verdict a staff decision gives it
    (--accept: all the message's projects pass; --reject: none) and its standing."""
    rows = session.execute(
        select(Project, Message.receipt, Message.received_at, Message.override)
        .join(Message, Project.message_id == Message.id).order_by(Project.message_id, Project.id)).all()
    lines = []
    for project, receipt, received_at, override in rows:
        verdict = override or project.verdict
        standing = ("已被替换" if project.superseded_by is not None
                    else "逾期无效" if project.late and override != "accepted" else "当前有效")
        lines.append(ProjectLine(unit=project.unit_name, course=project.name, verdict=verdict, standing=standing,
                                 receipt=receipt or "", received_at=received_at, files=project.files or {}))
    return lines


def _units(session: Session, messages: list[Message], projects: list[ProjectLine]) -> list[UnitLine]:
    """Imported units first (their quotas, in import order), then names read from forms
    that match no imported unit, then the projects whose unit could not be told."""
    imported = session.scalars(select(Unit).order_by(Unit.id)).all()
    names = {unit.id: unit.name for unit in imported}
    sent = Counter(names.get(m.unit_id, m.unit_name) if m.unit_id else m.unit_name
                   for m in messages if m.verdict not in (None, "ignored"))
    current = [p for p in projects if p.standing == "当前有效"]
    counted = Counter(p.unit for p in current)
    passing = Counter(p.unit for p in current if p.verdict == "accepted")
    lines = [UnitLine(u.name, u.quota, passing[u.name], counted[u.name], sent[u.name]) for u in imported]
    others = sorted(name for name in set(sent) | set(counted) if name and name not in set(names.values()))
    lines += [UnitLine(name, None, passing[name], counted[name], sent[name], imported=False) for name in others]
    if sent[None] or counted[None]:
        lines.append(UnitLine(UNKNOWN_UNIT, None, passing[None], counted[None], sent[None],
                              known=False, imported=False))
    return lines


def _findings(session: Session) -> list[FindingLine]:
    rows = session.execute(select(FindingRow, Message.receipt, Message.unit_name)
                           .join(Message, FindingRow.message_id == Message.id)
                           .order_by(FindingRow.message_id, FindingRow.id)).all()
    return [FindingLine(receipt=receipt or "", unit=unit, project=f.project, code=f.code, severity=f.severity,
                        message=f.text, path=f.path) for f, receipt, unit in rows]


def _health(session: Session) -> list[Health]:
    parts = []
    for name in ("mailbox", "smtp"):  # smtp: recorded by a delivery pass that connected
        row = session.get(ServiceStatus, name)
        if row is not None:
            parts.append(Health(name, row.ok, aware(row.at), aware(row.last_ok_at) if row.last_ok_at else None,
                                staff_reason(row.detail)))  # in Chinese: no class names
    return parts


def _disk(data_dir: Path) -> Disk:
    """Free space of the data folder's file system, and what the folder itself holds."""
    try:
        usage = shutil.disk_usage(data_dir)
        free, total = usage.free, usage.total
    except OSError:
        free = total = 0
    return Disk(free_bytes=free, total_bytes=total, data_bytes=_folder_size(data_dir), data_dir=str(data_dir))


def _folder_size(folder: Path) -> int:
    total, pending = 0, [str(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue  # a folder removed meanwhile (a judgement's work folder) or unreadable
    return total
