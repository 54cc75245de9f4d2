"""The worker: claims messages one at a time and takes each through its stages
(fetching its linked files, judging, then deciding and queueing the reply). Any failure is recorded and retried
with backoff; a permanent one, or too many, quarantines the message for staff. When
the queue is drained, one delivery pass sends every due outgoing mail."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import sessionmaker

from intake.daemon import delivery, fetching, judging, replying
from intake.daemon.claims import Leases, claim, locked, worker_id
from intake.daemon.transitions import LostClaim, move
from intake.fetchers.base import Fetcher
from intake.kernel.errors import ConfigError, PermanentError, TransientError
from intake.logs import about
from intake.kernel.judges import JudgingChild
from intake.kernel.policy import Policy
from intake.kernel.report import Report
from intake.notifier.transport import Transport, make_transport
from intake.settings import Settings
from intake.states import State
from intake.store import Message, utcnow

log = logging.getLogger("intake")


class Worker:
    def __init__(self, settings: Settings, Session: sessionmaker, policy: Policy, me: str | None = None,
                 transport: Transport | None = None) -> None:
        self.settings = settings
        self.Session = Session
        self.policy = policy
        self.me = me or worker_id()
        self.transport = transport or make_transport(settings)
        self.delivery = delivery.Delivery()  # what the last delivery pass did
        self.judges = JudgingChild()  # one judging child per drain, not a fork per message
        self.leases = Leases(Session, self.me)  # the claims in hand, renewed by one thread
        self.judged: judging.InFlight | None = None  # judged, saved once the next one is judged
        self.finished = 0  # messages processed in this drain
        # message id -> its judgement when reading its links already ran over the budget
        self.over_budget: dict[int, Report] = {}
        self.fetchers: dict[str, Fetcher] | None = None  # made when the first link is fetched
        self.fetchers_broken: ConfigError | None = None  # the Baidu route's settings are wrong
        # told (message id, finished?) around each message: `intake poll --once` draws
        # its progress from it on a terminal
        self.on_message: Callable[[int, bool], None] = lambda message_id, finished: None

    def drain(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Process every message that needs work, then deliver every due outgoing mail
        (one connection per batch); stop between messages when asked. Returns the number
        of messages processed; what delivery did is in ``self.delivery``."""
        try:
            done = self._work_queue(should_stop)
        finally:
            self.judges.close()
            self.leases.stop()
        if not should_stop():
            self.delivery = delivery.deliver_pending(self.Session, self.transport, self.me, should_stop)
        return done

    def _work_queue(self, should_stop: Callable[[], bool]) -> int:
        """Messages one after the other, pipelined by one: while the child judges a
        message, the worker claims the next one; once the next one is in the child's
        hands, it saves and answers the judged one (before, when the next one must
        download its links first: ``settle``). A judged message waits in memory only: a
        crash before its save judges it again (its claim is a dead worker's)."""
        self.finished = 0
        seen: set[int] = set()
        flight: judging.InFlight | None = None  # in the child, or judged and not yet saved
        while not should_stop():
            message_id = claim(self.Session, self.me, {flight.message_id} if flight else ())
            if message_id is not None and flight is not None:
                flight.wait()  # the child is free for the next message
            if message_id is not None and (message_id in seen or should_stop()):
                if message_id in seen:  # no progress on it since this drain began: stop rather than spin
                    log.error("message %s is claimable again right after processing; stopping this round", message_id)
                with self.Session.begin() as session:  # not begun: left to the next round (or worker)
                    locked(session, message_id).claimed_by = None
                message_id = None
            if message_id is None:
                break
            seen.add(message_id)
            self.judged = flight
            flight = self.begin(message_id)
            self.settle()
            self.on_message(message_id, False)
            if flight is None:  # it went no further (replied, waiting, failed)
                self.finished += 1
                self.on_message(message_id, True)
        self.judged = flight
        self.settle()
        return self.finished

    def settle(self) -> None:
        """Save and answer the judged message that waits for it, if any (the stages call
        it before a slow step of the next message: downloading its links)."""
        flight, self.judged = self.judged, None
        if flight is not None:
            self.complete(flight)
            self.finished += 1

    def process(self, message_id: int) -> None:
        """One claimed message through its stages, start to end."""
        flight = self.begin(message_id)
        if flight is not None:
            self.complete(flight)

    def begin(self, message_id: int) -> judging.InFlight | None:
        """Take a claimed message as far as the judging child: its judgement in flight,
        or None when it went no further for now (waiting for a fetch, quarantined,
        failed) or was judged before and is answered now."""
        try:
            with self.Session() as session:
                message = session.get(Message, message_id)  # one read for the stages' plain fields
            if message.report is None:
                waiting, fetched = fetching.fetch(self, message)
                if waiting:
                    return None  # stays in fetching until its next attempt is due
                return judging.start(self, message_id, fetched)  # None: quarantined as poison
            replying.reply(self, message_id)
        except LostClaim as lost:  # taken over or reprocessed meanwhile: nothing of ours to save
            log.info("%s", lost)
        except Exception as err:  # every failure is recorded and retried, never dropped
            self.failed(message_id, err)
        return None

    def complete(self, flight: judging.InFlight) -> None:
        """Save the judgement in flight (waiting for it if need be), then answer."""
        try:
            judging.finish(self, flight)
            replying.reply(self, flight.message_id)
        except LostClaim as lost:
            log.info("%s", lost)
        except Exception as err:
            self.failed(flight.message_id, err)
        self.on_message(flight.message_id, True)

    def failed(self, message_id: int, err: Exception) -> None:
        with self.Session.begin() as session:
            message = locked(session, message_id)
            log.error("message %s failed: %s", message_id, err, exc_info=err,
                      extra=about(message.receipt, message.message_id))
            if message.claimed_by != self.me or message.state in (State.DONE, State.QUARANTINED):
                return  # someone else's now (reprocess, a takeover): not ours to mark
            if message.report is not None or message.state != State.UNPACKING:
                # judging counts its attempts when it starts (UNPACKING); a failure before it
                # (the fetching stage could not read the message) or after it counts here
                message.attempts += 1
            message.last_error = f"{type(err).__name__}: {err}"
            message.traceback = traceback.format_exc()
            if isinstance(err, PermanentError) or message.attempts >= self.settings.max_attempts:
                move(session, message, State.QUARANTINED, self.me, release=True, error=message.last_error)
                return
            retry_after = err.retry_after if isinstance(err, TransientError) else None
            delay = retry_after or 60 * 2 ** (message.attempts - 1)
            message.next_attempt_at = utcnow() + timedelta(seconds=delay)
            move(session, message, State.FAILED, self.me, release=True, error=message.last_error,
                 next_attempt_at=message.next_attempt_at.isoformat())
