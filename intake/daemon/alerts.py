"""Alerts to staff: the mailbox has not been polled for INTAKE_ALERT_AFTER_MINUTES
(from service_status 'mailbox'.last_ok_at), or the IMAP login is refused, or the SMTP
login is refused (service_status 'smtp', as the delivery pass records it). Both status
rows write a failure with ``intake.store.status_detail``, so a refused login reads
``LoginRejected: …`` on either side. One mail when it starts, one when it
recovers, never more than one alert mail of a kind per hour.

The state lives in the outbox: a kind's alert mails carry the dedupe keys
``alert:KIND:1:down``, ``alert:KIND:2:up``, ``alert:KIND:3:down`` … in turn, so an odd
last number means the alert stands. The next number is unique in the database, so
two workers that see the same change queue one mail between them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake.daemon.claims import aware
from intake.notifier.alert_mail import ALERTS, compose_alert
from intake.notifier.outbox import queue_mail
from intake.settings import Settings
from intake.store import Outbox, ServiceStatus, audit, login_refused

log = logging.getLogger("intake")
AT_MOST_EVERY = timedelta(hours=1)


@dataclass
class Condition:
    """What a status row says now about one alert kind."""

    kind: str
    failing: bool
    detail: str | None = None
    last_ok_at: datetime | None = None


def conditions(session: Session, settings: Settings, now: datetime) -> list[Condition]:
    mailbox, smtp = session.get(ServiceStatus, "mailbox"), session.get(ServiceStatus, "smtp")
    refused = mailbox is not None and not mailbox.ok and login_refused(mailbox.detail)
    # a refused login is its own alert at once; any other failure after the set time
    # (a mailbox never polled successfully has failed for as long as it has existed)
    limit = aware(now) - timedelta(minutes=settings.alert_after_minutes)
    down = (mailbox is not None and not mailbox.ok and not refused
            and (mailbox.last_ok_at is None or aware(mailbox.last_ok_at) <= limit))
    last_ok = aware(mailbox.last_ok_at) if mailbox is not None and mailbox.last_ok_at else None
    detail = mailbox.detail if mailbox is not None else None
    smtp_refused = smtp is not None and not smtp.ok and login_refused(smtp.detail)
    return [
        Condition("imap_login", refused, detail, last_ok),
        Condition("mailbox_down", down, detail, last_ok),
        Condition("smtp_login", smtp_refused, smtp.detail if smtp is not None else None,
                  aware(smtp.last_ok_at) if smtp is not None and smtp.last_ok_at else None),
    ]


def last_alert(session: Session, kind: str) -> tuple[int, datetime | None]:
    """The number of the kind's last alert mail (0: none yet) and when it was queued."""
    rows = session.execute(select(Outbox.dedupe_key, Outbox.created_at)
                           .where(Outbox.kind == "alert", Outbox.dedupe_key.startswith(f"alert:{kind}:", autoescape=True))).all()
    numbered = [(int(key.split(":")[2]), aware(at)) for key, at in rows if key and key.split(":")[2].isdigit()]
    return max(numbered, default=(0, None))


def check_alerts(Session: sessionmaker, settings: Settings, now: datetime) -> list[str]:
    """Queue the alert (or recovery) mails the status calls for; returns their keys."""
    if not settings.staff_emails:
        return []
    queued = []
    with Session.begin() as session:
        for condition in conditions(session, settings, now):
            key = _next_key(session, condition, now)
            if key is None:
                continue
            mail = compose_alert(condition.kind, recovered=not condition.failing, detail=condition.detail,
                                 last_ok_at=condition.last_ok_at, now=now, settings=settings)
            row = queue_mail(session, mail, kind="alert", recipients=settings.staff_emails, dedupe_key=key)
            if row is None:
                continue  # another worker queued this very alert
            row.created_at = aware(now)  # the hour between alerts counts from here
            audit(session, None, "daemon", "alert_queued", key=key, detail=condition.detail)
            queued.append(key)
    for key in queued:
        log.warning("alert queued for staff: %s", key)
    return queued


def _next_key(session: Session, condition: Condition, now: datetime) -> str | None:
    """The dedupe key of the mail this condition calls for, or None (no change, or
    the kind had an alert mail within the hour)."""
    if condition.kind not in ALERTS:
        return None
    number, at = last_alert(session, condition.kind)
    standing = number % 2 == 1
    if condition.failing == standing:
        return None  # no change since the last alert mail
    if at is not None and at > aware(now) - AT_MOST_EVERY:
        return None  # at most one a kind an hour: a later round sends it if it still holds
    number += 1
    return f"alert:{condition.kind}:{number}:{'down' if number % 2 else 'up'}"
