"""Wiring for the daemon commands: settings, database, policy, and one round of work
(poll, the queue, delivery, then the staff mail the round calls for)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from intake import store
from intake.daemon.alerts import check_alerts
from intake.daemon.delivery import Delivery, deliver_pending
from intake.daemon.digest import queue_due_digest
from intake.daemon.ledger import archive_done, poll
from intake.daemon.worker import Worker
from intake.kernel.errors import ConfigError, PermanentError, TransientError
from intake.kernel.policy import Policy, load_policy
from intake.settings import Settings
from intake.sources import MailSource, make_source

log = logging.getLogger("intake")


@dataclass
class Service:
    settings: Settings
    engine: Engine
    Session: sessionmaker
    policy: Policy


def open_service(settings: Settings) -> Service:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"INTAKE_DATA_DIR: cannot create {settings.data_dir} ({err.strerror}); "
                          "choose a folder this user may write to") from None
    try:
        engine = store.make_engine(settings.url)
        store.upgrade(engine)
    except (DBAPIError, OSError) as err:
        if settings.database_url is None:  # SQLite in the data folder: the folder is at fault
            raise ConfigError(f"INTAKE_DATA_DIR: cannot write the database in {settings.data_dir} "
                              f"({_first_line(err)}); choose a folder this user may write to") from None
        raise TransientError(f"INTAKE_DATABASE_URL: cannot use the database {_shown(settings)} ({_first_line(err)}); "
                             "check that the server is running and the URL, user and password are right") from None
    return Service(settings, engine, store.sessions(engine),
                   load_policy(settings.policy, settings.policy_overrides))


def _shown(settings: Settings) -> str:
    return make_url(settings.url).render_as_string(hide_password=True)


def _first_line(err: Exception) -> str:
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def poll_and_process(service: Service, should_stop: Callable[[], bool] = lambda: False,
                     on_message: Callable[[int, bool], None] | None = None) -> tuple[int, int]:
    """One round: fetch what is new, work the queue (due retries included), deliver every
    due outgoing mail, then queue (and deliver) the staff mail the round calls for. A
    delivery that a setting stops (a refused SMTP login) is raised at the end, after
    everything else was done; a passing one (the server down) is logged, and the mail
    waits for the next round. ``on_message`` is told (message id, finished?) around
    each message worked."""
    def source() -> MailSource:
        return make_source(service.settings)

    worker = Worker(service.settings, service.Session, service.policy)
    if on_message is not None:  # (message id, finished?) around each message: a progress display
        worker.on_message = on_message
    try:
        fetched = poll(service.settings, service.Session, source, should_stop=should_stop)
    except Exception as err:
        # the mailbox is down or refuses us: what is already in the ledger (new mail, due
        # retries, queued replies) is still worked, staff are alerted, then the error is reported
        _mailbox_status(service, False, store.status_detail(err))
        worker.drain(should_stop)
        if not should_stop():
            staff_mail(service, worker=worker, should_stop=should_stop)
        raise err
    _mailbox_status(service, True, f"{fetched} new")
    processed = worker.drain(should_stop)
    deliveries: list[Delivery | None] = [worker.delivery]
    if not should_stop():
        archive_done(service.settings, service.Session, source)
        deliveries.append(staff_mail(service, worker=worker, should_stop=should_stop))
    for done in deliveries:
        if done is not None and isinstance(done.error, PermanentError):
            raise done.error
    return fetched, processed


def staff_mail(service: Service, now: datetime | None = None, *, worker: Worker | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> Delivery | None:
    """The round's mail to staff: the alerts the status rows call for and, from
    INTAKE_DIGEST_AT on, the day's digest, each queued once whatever the number of
    workers (their dedupe keys). When it queued any, one delivery pass sends it now
    (and whatever else is due) and is returned; else None. A failure to gather or
    compose is logged and never stops the round."""
    if not service.settings.staff_emails:
        return None
    now = now or store.utcnow()
    try:
        alerts = check_alerts(service.Session, service.settings, now)
        digest = queue_due_digest(service.Session, service.settings, service.policy, now)
    except Exception:  # staff mail must not hold up the senders' replies
        log.exception("staff mail (digest, alerts) could not be queued; the next round tries again")
        return None
    if not alerts and digest is None:
        return None
    worker = worker or Worker(service.settings, service.Session, service.policy)
    return deliver_pending(service.Session, worker.transport, worker.me, should_stop)


def _mailbox_status(service: Service, ok: bool, detail: str) -> None:
    """The last poll's outcome, for staff (`intake status`): a rejected password shows
    here while `intake run` keeps trying at each round."""
    with service.Session.begin() as session:
        store.set_status(session, "mailbox", ok, detail)
