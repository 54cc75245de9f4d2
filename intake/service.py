"""Wiring for the daemon commands: settings, database, policy, worker."""

from __future__ import annotations

from dataclasses import dataclass

from intake import store
from intake.policy import load_policy


@dataclass
class Service:
    settings: object
    engine: object
    Session: object
    policy: object


def open_service(settings) -> Service:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = store.make_engine(settings.url)
    store.upgrade(engine)
    return Service(settings, engine, store.sessions(engine),
                   load_policy(settings.policy, settings.policy_overrides))


def poll_and_process(service: Service, should_stop=lambda: False) -> tuple[int, int]:
    """One round: fetch what is new, then work the queue (due retries included)."""
    from intake.daemon import Worker, archive_done, poll
    from intake.mailbox import make_source

    def source():
        return make_source(service.settings)

    try:
        fetched = poll(service.settings, service.Session, source)
    except Exception as err:
        # the mailbox is down: what is already in the ledger (new mail, due retries,
        # queued replies) is still worked, then the error is reported
        Worker(service.settings, service.Session, service.policy).drain(should_stop)
        raise err
    processed = Worker(service.settings, service.Session, service.policy).drain(should_stop)
    if not should_stop():
        archive_done(service.settings, service.Session, source)
    return fetched, processed
