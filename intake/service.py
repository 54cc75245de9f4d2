"""Wiring for the daemon commands: settings, database, policy, and one round of work
(poll, then the queue)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from intake import store
from intake.daemon.ledger import archive_done, poll
from intake.daemon.worker import Worker
from intake.kernel.errors import ConfigError, PermanentError, TransientError
from intake.kernel.policy import Policy, load_policy
from intake.settings import Settings
from intake.sources import MailSource, make_source


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


def poll_and_process(service: Service, should_stop: Callable[[], bool] = lambda: False) -> tuple[int, int]:
    """One round: fetch what is new, work the queue (due retries included), then deliver
    every due outgoing mail. A delivery that a setting stops (a refused SMTP login) is
    raised at the end, after everything else was done; a passing one (the server down)
    is logged, and the mail waits for the next round."""
    def source() -> MailSource:
        return make_source(service.settings)

    worker = Worker(service.settings, service.Session, service.policy)
    try:
        fetched = poll(service.settings, service.Session, source, should_stop=should_stop)
    except Exception as err:
        # the mailbox is down or refuses us: what is already in the ledger (new mail, due
        # retries, queued replies) is still worked, then the error is reported
        _mailbox_status(service, False, f"{type(err).__name__}: {err}"[:2000])
        worker.drain(should_stop)
        raise err
    _mailbox_status(service, True, f"{fetched} new")
    processed = worker.drain(should_stop)
    if not should_stop():
        archive_done(service.settings, service.Session, source)
    if isinstance(worker.delivery.error, PermanentError):
        raise worker.delivery.error
    return fetched, processed


def _mailbox_status(service: Service, ok: bool, detail: str) -> None:
    """The last poll's outcome, for staff (`intake status`): a rejected password shows
    here while `intake run` keeps trying at each round."""
    with service.Session.begin() as session:
        store.set_status(session, "mailbox", ok, detail)
