"""The fetching stage: before judging, the files a message links to (Baidu Netdisk, 163
and QQ large attachments) are downloaded into its work folder, in this process (the
downloads stream to disk; nothing is held in memory).

- The links are read from the stored message as the core reads them (bodies only), in
  the judging child under the policy's budget (``intake.budgeted.message_links_within``:
  the sender's bytes are never parsed in the daemon; the child keeps what it parsed for
  the judgement). A message without fetchable links never enters ``fetching``.
- Each link's outcome is saved (``<data>/work/<receipt>/fetched/outcome.json``, its files
  in ``fetched/<n>/``) as soon as it is known, so a later attempt, a crash or a
  reprocess never fetches a link again that was fetched or was the sender's problem;
  a download cut short resumes from its ``.part`` file. The files stay after judging
  (a reprocess judges them again).
- Not fetched at all: a link in quoted text that the unit's earlier, recorded message
  already brought (``quoted``; judged or still waiting to be fetched), and every link of a message received after the deadline
  (``late``: it is void whatever the links hold).
- Our side's failure (``TransientError``, a ``ConfigError`` the operator must mend, an
  unexpected error): the message stays in ``fetching`` until ``next_attempt_at`` (the
  error's ``retry_after``, at least a backoff of 1, 2, 4 … minutes up to 6 hours), with
  ``last_error`` for staff. Each attempt is counted when it starts (``fetch_attempts``,
  apart from the judging attempts); after INTAKE_FETCH_ATTEMPTS the links still missing
  are ``failed`` and the message is judged: ``needs_review`` with ``link.fetch_failed``.
- One link the sender's problem (a wrong code, a dead share, too large) while another
  fails on our side: nothing waits. The other links are tried in the same attempt (a
  failure does not stop them), and when one is the sender's the message is judged at
  once (rejected: they must send again); the links not fetched are ``failed`` with
  ``RESEND`` as the reason, so the one reply asks for them in the new message too.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import intake.budgeted
from intake.daemon.claims import aware, locked
from intake.daemon.ledger import raw_file
from intake.daemon.rules import find_unit
from intake.daemon.transitions import LostClaim, move
from intake.fetchers import download_limits, make_fetchers
from intake.fetchers.base import Fetcher, Progress, ProgressEvent
from intake.fetchers.message import CONFIG, DISABLED, GAVE_UP, RESEND, failed, fetch_link, in_order, message_limits
from intake.logs import about
from intake.kernel.errors import ConfigError, TransientError
from intake.kernel.fetched import FAILED, LATE, QUOTED, SENDER, FetchedPackage, LinkFetch
from intake.kernel.policy import is_late
from intake.kernel.report import Report
from intake.parsers.links import Link
from intake.states import State
from intake.store import Message, utcnow

if TYPE_CHECKING:  # the worker calls this stage; typing only, no import cycle
    from intake.daemon.worker import Worker

log = logging.getLogger("intake")
MAX_WAIT = 6 * 3600.0  # seconds: the backoff's ceiling (an error's own retry_after may be longer)
CONFIG_RETRY = 3600.0  # a setting the operator must mend (a missing cookie, no tokens): hourly


def fetch(worker: Worker, message: Message) -> tuple[bool, FetchedPackage | None]:
    """Fetch the links of ``message`` (the claimed row, as the worker read it; detached).
    Returns (waiting, package): waiting when it stays in ``fetching`` for a later
    attempt; the package to judge with otherwise (None: no fetchable links)."""
    message_id, raw_path, state = message.id, raw_file(worker.settings.data_dir, message), State(message.state)
    name = message.receipt or str(message.id)
    received = aware(message.received_at) if message.received_at else None
    worker.over_budget.pop(message_id, None)  # from an earlier round, if any: read again
    with worker.leases.holding(message_id):  # read in the judging child, under the budget
        found = intake.budgeted.message_links_within(raw_path, worker.policy, worker.judges, received)
    if isinstance(found, Report):  # over the budget: that is its judgement (judging.judge saves it)
        worker.over_budget[message_id] = found
        return False, None
    links = [] if found.ignored else found.fetchable()
    if not links:
        return False, None
    root = worker.settings.data_dir / "work" / name / "fetched"
    package = FetchedPackage.load(root, root / "outcome.json")
    if state == State.RECEIVED:  # a fresh start (staff reprocessed it): what failed is tried again
        package.links = {n: link for n, link in package.links.items() if link.outcome != FAILED}
    with worker.Session() as session:
        _settle_without_fetching(worker, session, session.get(Message, message_id), package, links)
    pending = [(n, link) for n, link in in_order(links) if n not in package.links]
    if not pending:
        package.save(root / "outcome.json")
        return False, package
    worker.settle()  # downloads may be slow: the judged message before this one is saved first
    attempt = _start(worker, message_id)
    if attempt is None:  # the attempts ran out (the last one was cut short by a crash)
        _give_up(package, pending, None)
        return False, package
    try:
        with worker.leases.holding(message_id):
            err = _fetch_pending(worker, package, pending, name)
    except LostClaim:
        raise
    except Exception as unexpected:  # outside a link's fetch (the disk, a bug): tried again later too
        err = unexpected
    if err is None:
        return False, package
    if package.sender_problems():  # the sender must send again anyway: told now, the rest not waited for
        _give_up(package, pending, err, RESEND)
        return False, package
    if attempt >= worker.settings.fetch_attempts:
        _give_up(package, pending, err, CONFIG if isinstance(err, ConfigError) else GAVE_UP)
        return False, package
    _defer(worker, message_id, err, attempt)
    return True, None


def _settle_without_fetching(worker: Worker, session: Session, message: Message, package: FetchedPackage,
                             links: list[tuple[int, Link]]) -> None:
    """Outcomes that need no download: quoted links already received, a late message,
    fetching switched off (INTAKE_FETCH_LINKS=false)."""
    known = _already_received(session, message, [(n, link) for n, link in links if link.quoted], worker)
    late = message.received_at is not None and is_late(aware(message.received_at), worker.policy)
    for n, link in links:
        if n in package.links:
            continue
        if n in known:
            package.links[n] = LinkFetch(link.provider, link.url, QUOTED, earlier=known[n])
        elif late:
            package.links[n] = LinkFetch(link.provider, link.url, LATE)
        elif not worker.settings.fetch_links:
            package.links[n] = failed(link, DISABLED)


def _already_received(session: Session, message: Message, quoted: list[tuple[int, Link]],
                      worker: Worker) -> dict[int, str]:
    """position -> receipt of the unit's earlier, recorded message that carried the same
    link (same sender address, or the same unit by its contacts)."""
    if not quoted:
        return {}
    same = []
    if message.from_address:
        same.append(func.lower(Message.from_address) == message.from_address.lower())
        unit = find_unit(session, message.from_address, None)
        if unit is not None:
            same += [Message.unit_id == unit.id, Message.unit_name == unit.name]
    if not same:
        return {}
    earlier = session.scalars(select(Message).where(Message.id < message.id, or_(*same))
                              .order_by(Message.id)).all()
    found: dict[int, str] = {}
    for row in earlier:
        urls = _links_of(row, worker)
        for n, link in quoted:
            if link.url in urls and n not in found:
                found[n] = row.receipt or str(row.id)
    return found


def _links_of(row: Message, worker: Worker) -> set[str]:
    """The URLs an earlier message brought: from its report once judged; read from the
    stored mail while it still waits (in ``fetching``, say): a reply quoting a link that
    is still being fetched for the first message must not fetch it a second time. A
    link the earlier reply asked for again (``RESEND``) does not count."""
    if row.report is not None:
        # a link we asked the sender to send again (another of its links was theirs to mend)
        # was never fetched: quoted in the new message, it is fetched there
        asked_again = {link.get("url") for link in row.report.get("fetch", [])
                       if link.get("outcome") == FAILED and link.get("reason") == RESEND}
        return {link.get("url") for link in (row.report.get("message") or {}).get("links", [])} - asked_again
    if row.state == State.QUARANTINED or not row.raw_path:
        return set()
    try:  # read in the judging child, as every sender's message is, under the budget
        found = intake.budgeted.message_links_within(raw_file(worker.settings.data_dir, row), worker.policy,
                                                     worker.judges)
    except (OSError, ValueError):  # its stored mail is gone or unreadable: nothing to match
        return set()
    if isinstance(found, Report):  # too complex to read within the budget: nothing to match
        return set()
    return {link.url for _, link in ([] if found.ignored else found.fetchable())}


def _start(worker: Worker, message_id: int) -> int | None:
    """Count the attempt (when it starts: a crash counts too) and move to ``fetching``;
    None when the attempts have run out."""
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was taken over")
        if message.fetch_attempts >= worker.settings.fetch_attempts:
            return None
        message.fetch_attempts += 1
        message.next_attempt_at = None
        move(session, message, State.FETCHING, worker.me, attempt=message.fetch_attempts)
        return message.fetch_attempts


def _fetch_pending(worker: Worker, package: FetchedPackage, pending: list[tuple[int, Link]],
                   name: str) -> Exception | None:
    """Fetch each pending link; return the first failure on our side (None: every link
    has its outcome). A failure does not stop the other links, so that a wrong code or a
    dead share in the same message is found, and told, now: a host that failed is not
    asked to download again in this attempt, but Baidu links are still probed (share
    page and code only) when the route failed or its settings are wrong; their download
    waits for the next attempt."""
    fetchers, broken = _fetchers(worker)
    limits = message_limits(download_limits(worker.settings), package)  # one budget for the message
    held: dict[str, Exception] = {"baidu": broken} if broken is not None else {}  # provider -> why it waits
    first: Exception | None = None
    probing = True  # until a probe fails too: then Baidu is left alone for this attempt
    probe: Fetcher | None = None
    for n, link in pending:
        why = held.get(link.provider)
        if why is not None and (link.provider != "baidu" or not probing):
            first = first or why
            continue
        if why is None or broken is not None:
            fetcher = fetchers[link.provider]  # the route's own (the probe's when the route is broken)
        else:
            probe = probe or _probe(worker)
            fetcher = probe
        log.info("%s: %s %s link %s", name, "probing" if why else "fetching", link.provider, link.url,
                 extra=about(name))
        try:
            outcome = fetch_link(fetcher, link, package.root / str(n), limits, _progress(name), key=name,
                                 package_cap=worker.policy.archive.max_total_bytes)
            if why is not None and outcome.outcome != SENDER:
                raise why  # valid as far as the probe sees: downloaded at a later attempt
        except LostClaim:
            raise
        except Exception as err:  # ours: a rate limit, the network, a setting, a bug; tried again later
            log.warning("%s: %s link %s not fetched: %s: %s", name, link.provider, link.url, type(err).__name__, err,
                        extra=about(name))
            first = first or err
            held.setdefault(link.provider, err)
            probing = probing and (why is None or err is why)
            continue
        package.links[n] = outcome
        package.save(package.root / "outcome.json")
    if broken is not None and any(link.provider == "baidu" and n not in package.links for n, link in pending):
        return broken  # what staff must mend, whatever else the probe ran into
    return first


def _probe(worker: Worker) -> Fetcher:
    """The account-free Baidu fetcher: checks a link and its code without downloading."""
    return make_fetchers(dataclasses.replace(worker.settings, netdisk_route="probe"))["baidu"]


def _fetchers(worker: Worker) -> tuple[dict[str, Fetcher], ConfigError | None]:
    """The worker's fetchers, made once. Settings the Baidu route lacks leave the 163 and
    QQ fetchers working (they need none); Baidu links wait for the mended settings."""
    if worker.fetchers is None:
        try:
            worker.fetchers, worker.fetchers_broken = make_fetchers(worker.settings), None
        except ConfigError as err:
            log.error("netdisk links cannot be fetched: %s", err)
            probe = dataclasses.replace(worker.settings, netdisk_route="probe")
            worker.fetchers, worker.fetchers_broken = make_fetchers(probe), err
    return worker.fetchers, worker.fetchers_broken


def _progress(name: str) -> Progress:
    """One log line per file, when it is complete and checked."""
    def report(event: ProgressEvent) -> None:
        if event.finished:
            log.info("%s: fetched %s (%d bytes)", name, event.path, event.done, extra=about(name))
    return report


def _give_up(package: FetchedPackage, pending: list[tuple[int, Link]], err: BaseException | None,
             reason: str = GAVE_UP) -> None:
    for n, link in pending:
        if n not in package.links:
            package.links[n] = failed(link, reason, err)
    package.save(package.root / "outcome.json")


def _defer(worker: Worker, message_id: int, err: Exception, attempt: int) -> None:
    """Stay in ``fetching`` until the next attempt is due; staff see why."""
    delay = max(_retry_after(err), min(60.0 * 2 ** (attempt - 1), MAX_WAIT))
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        log.warning("message %s: fetching failed (attempt %d of %d), next attempt in %d min: %s",
                    message_id, attempt, worker.settings.fetch_attempts, delay // 60, err, exc_info=err,
                    extra=about(message.receipt, message.message_id))
        if message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was taken over")
        message.last_error = f"fetching, attempt {attempt} of {worker.settings.fetch_attempts}: {type(err).__name__}: {err}"
        message.traceback = "".join(traceback.format_exception(err))
        message.next_attempt_at = utcnow() + timedelta(seconds=delay)
        move(session, message, State.FETCHING, worker.me, release=True, action="fetch_deferred",
             error=message.last_error, next_attempt_at=_iso(message.next_attempt_at))


def _retry_after(err: Exception) -> float:
    if isinstance(err, TransientError):
        return err.retry_after or 0.0
    return CONFIG_RETRY if isinstance(err, ConfigError) else 0.0


def _iso(moment: datetime) -> str:
    return moment.isoformat()
