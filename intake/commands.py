"""The daemon's commands (``intake run``, ``poll --once``, ``submissions`` …): parse
nothing, decide nothing; call the daemon's stages and print for staff."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from argparse import Namespace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from intake.daemon import digest as digests
from intake.daemon import queries, staff
from intake.daemon.staff_delivery import deliver_staff_mail
from intake.demo import build_demo_maildir
from intake.kernel.errors import ConfigError, IntakeError, LoginRejected, TransientError
from intake.kernel.report import BEIJING, beijing_text
from intake.notifier.transport import make_transport
from intake.service import Service, open_service, poll_and_process
from intake.settings import Settings, load_settings
from intake.sources import make_source
from intake.units import import_units

log = logging.getLogger("intake")


def dispatch(args: Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = load_settings(args.config)
    if args.command == "demo":
        return demo(settings)
    service = open_service(settings)
    handler = {
        "run": run, "poll": poll_once, "submissions": submissions, "show": show, "quarantine": quarantine,
        "status": status, "reprocess": reprocess, "override": override, "resend": resend, "units": units,
        "digest": digest, "db": lambda s, a: 0,
    }[args.command]
    return handler(service, args)


def poll_once(service: Service, args: Namespace) -> int:
    fetched, processed = poll_and_process(service)
    print(f"new messages: {fetched}; processed: {processed}")
    return 0


def run(service: Service, args: Namespace) -> int:
    """APScheduler runs poll + process every N minutes; no overlapping runs; SIGTERM and
    SIGINT let the step in hand finish, then exit."""
    _preflight(service)
    signalled: list[int] = []  # the handler only appends: no lock it could wait on

    def round_() -> None:
        try:
            fetched, processed = poll_and_process(service, lambda: bool(signalled))
            log.info("round: %d new, %d processed", fetched, processed)
        except IntakeError as err:  # an operator's matter (a password, the server): one line
            log.error("round failed: %s; trying again at the next round", err)
        except Exception:  # logged with its traceback; the next round tries again
            log.exception("round failed; trying again at the next round")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # nothing that takes a lock (Event.set, logging): the handler runs in the main
        # thread between bytecodes, perhaps while that thread holds the very lock
        signalled.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(timezone="UTC")
    rounds = scheduler.add_job(round_, "interval", minutes=service.settings.poll_minutes, max_instances=1,
                               coalesce=True, next_run_time=datetime.now(timezone.utc))
    # The digest is queued by a round (from INTAKE_DIGEST_AT on, once a day: its dedupe
    # key); at that time a round is started at once rather than at the next interval
    hours, minutes = service.settings.digest_at.split(":")
    scheduler.add_job(lambda: rounds.modify(next_run_time=datetime.now(timezone.utc)), "cron",
                      hour=int(hours), minute=int(minutes), timezone=BEIJING)
    scheduler.start()
    if not service.settings.staff_emails:
        log.info("INTAKE_STAFF_EMAILS is not set: no daily digest and no alerts")
    # A sleep that wakes regularly: a signal the kernel hands to the scheduler's thread
    # only sets a flag, and a main thread blocked in an untimed wait may never run the
    # handler (seen in CI: every message done, SIGTERM ignored until a second one).
    while not signalled:
        time.sleep(0.5)
    log.info("signal %s: finishing the step in hand", signalled[0])
    scheduler.shutdown(wait=True)
    return 0


def _preflight(service: Service) -> None:
    """Settings that no round can mend stop `intake run` at start-up (exit 2): a Maildir
    that is not one, a move folder the server will not create, TLS on a plain port. A
    rejected password or an unreachable server does not: each round tries again, and
    `intake status` shows it."""
    source = make_source(service.settings)
    try:
        source.connect()
    except LoginRejected as err:
        log.error("%s; trying again at each round", err)
    except TransientError as err:
        log.warning("mailbox not reachable at start-up (%s); trying again at each round", err)
    finally:
        source.close()
    log.info("replies go to %s", make_transport(service.settings).name)


def submissions(service: Service, args: Namespace) -> int:
    messages = queries.judged_messages(service.Session, args.unit, args.verdict)
    items = [queries.submission(m) for m in messages]
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    for message, item in zip(messages, items):
        projects = "；".join(f"{p['name']}（{p['verdict']}）" for p in item["projects"])
        # mail with no single sender address is answered nowhere: staff see what it said
        sender = item["from"] or f"发件地址无法识别，未回复（From: {message.from_header or '无'}）"
        print(f"{item['receipt']}  {item['received_at']}  {item['verdict']:<12} {item['unit'] or '单位未识别'}  "
              f"{sender}  {projects}")
    return 0


def show(service: Service, args: Namespace) -> int:
    print(json.dumps(queries.details(service.Session, args.receipt), ensure_ascii=False, indent=2))
    return 0


def quarantine(service: Service, args: Namespace) -> int:
    """Messages that failed INTAKE_MAX_ATTEMPTS times (or permanently): staff look at
    them with `intake show` and replay them with `intake reprocess` (or `resend`)."""
    print(json.dumps(queries.quarantined(service.Session), ensure_ascii=False, indent=2))
    return 0


def status(service: Service, args: Namespace) -> int:
    """The last poll's outcome (a rejected password shows here while `intake run` keeps
    trying each round) and how many messages are in each state (JSON)."""
    found = queries.status(service.Session)
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0 if (found["mailbox"] or {}).get("ok", True) else 1


def reprocess(service: Service, args: Namespace) -> int:
    message = staff.reprocess(service.Session, args.receipt)
    print(f"{message.receipt}: queued for processing again")
    return 0


def override(service: Service, args: Namespace) -> int:
    message = staff.override(service.Session, args.receipt, "accepted" if args.accept else "rejected", args.note)
    print(f"{message.receipt}: {message.verdict} ({args.note})")
    return 0


def resend(service: Service, args: Namespace) -> int:
    message = staff.resend(service.Session, args.receipt)
    print(f"{message.receipt}: its reply will be delivered at the next round")
    return 0


def units(service: Service, args: Namespace) -> int:
    count, contacts = import_units(service.Session, args.file)
    print(f"units: {count}; contact addresses: {contacts}")
    return 0


def digest(service: Service, args: Namespace) -> int:
    """`intake digest --preview FILE.html` writes today's digest (chart and workbook
    beside it); `--send` queues it (once a day; `--force` again) and delivers it now."""
    now = datetime.now(timezone.utc)
    settings = service.settings
    if args.preview:
        page, chart, workbook = digests.preview(service.Session, settings, service.policy, now, Path(args.preview))
        print(f"digest written to {page} (chart {chart.name} and workbook {workbook.name} beside it); nothing sent")
        return 0
    if not settings.staff_emails:
        raise ConfigError(digests.NO_STAFF)
    row = digests.queue_digest(service.Session, settings, service.policy, now, force=args.force)
    if row is None:
        at = digests.queued_at(service.Session, now)
        print(f"today's digest ({digests.digest_key(now)}) was queued already"
              f"{' at ' + beijing_text(at) if at else ''}; it is sent once a day (--force sends it again)")
    transport = make_transport(settings)
    sent = deliver_staff_mail(service.Session, transport)
    print(f"staff mail delivered now: {sent}, to {', '.join(settings.staff_emails)} via {transport.name}")
    return 0


def demo(settings: Settings) -> int:
    """The README's main command: the daemon on embedded defaults over a sample Maildir."""
    if settings.maildir is None and not settings.imap_user:
        settings.maildir = build_demo_maildir(settings.data_dir / "demo-maildir")
    service = open_service(settings)
    fetched, processed = poll_and_process(service)
    print(f"数据目录：{settings.data_dir.resolve()}")
    print(f"新邮件 {fetched} 封，本次处理 {processed} 封。")
    for message in queries.judged_messages(service.Session):
        item = queries.submission(message)
        projects = "；".join(f"{p['name']}（{p['verdict']}）" for p in item["projects"]) or "—"
        print(f"  {item['receipt']}  {item['verdict']:<12} {item['from']}  {projects}")
    outbox = settings.data_dir / "outbox"
    replies = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    print(f"回复邮件 {len(replies)} 封，已写入 {outbox.resolve()}")
    return 0
