"""The daemon's commands (``intake run``, ``poll --once``, ``submissions`` …)."""

from __future__ import annotations

import json
import logging
import signal
import sys

from sqlalchemy import select

from intake.kernel.errors import IntakeError
from intake.settings import load_settings

log = logging.getLogger("intake")


def dispatch(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = load_settings(args.config)
    if args.command == "demo":
        return demo(settings)
    from intake.service import open_service

    service = open_service(settings)
    handler = {
        "run": run, "poll": poll_once, "submissions": submissions, "show": show, "quarantine": quarantine,
        "status": status,
        "reprocess": reprocess, "override": override, "units": units, "db": lambda s, a: 0,
    }[args.command]
    return handler(service, args)


def poll_once(service, args) -> int:
    from intake.service import poll_and_process

    fetched, processed = poll_and_process(service)
    print(f"new messages: {fetched}; processed: {processed}")
    return 0


def run(service, args) -> int:
    """APScheduler runs poll + process every N minutes; no overlapping runs; SIGTERM and
    SIGINT let the step in hand finish, then exit."""
    import time
    from datetime import datetime, timezone

    from apscheduler.schedulers.background import BackgroundScheduler

    from intake.service import poll_and_process

    _preflight(service)
    signalled: list[int] = []  # the handler only appends: no lock it could wait on

    def round_():
        try:
            fetched, processed = poll_and_process(service, lambda: bool(signalled))
            log.info("round: %d new, %d processed", fetched, processed)
        except IntakeError as err:  # an operator's matter (a password, the server): one line
            log.error("round failed: %s; trying again at the next round", err)
        except Exception:  # logged with its traceback; the next round tries again
            log.exception("round failed; trying again at the next round")

    def on_signal(signum, frame):
        # nothing that takes a lock (Event.set, logging): the handler runs in the main
        # thread between bytecodes, perhaps while that thread holds the very lock
        signalled.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(round_, "interval", minutes=service.settings.poll_minutes, max_instances=1,
                      coalesce=True, next_run_time=datetime.now(timezone.utc))
    scheduler.start()
    # A sleep that wakes regularly: a signal the kernel hands to the scheduler's thread
    # only sets a flag, and a main thread blocked in an untimed wait may never run the
    # handler (seen in CI: every message done, SIGTERM ignored until a second one).
    while not signalled:
        time.sleep(0.5)
    log.info("signal %s: finishing the step in hand", signalled[0])
    scheduler.shutdown(wait=True)
    return 0


def _preflight(service) -> None:
    """Settings that no round can mend stop `intake run` at start-up (exit 2): a Maildir
    that is not one, a move folder the server will not create, TLS on a plain port. A
    rejected password or an unreachable server does not: each round tries again, and
    `intake status` shows it."""
    import imaplib

    from intake.kernel.errors import LoginRejected
    from intake.mailbox import make_source

    source = make_source(service.settings)
    try:
        source.connect()
    except LoginRejected as err:
        log.error("%s; trying again at each round", err)
    except (OSError, EOFError, imaplib.IMAP4.error) as err:
        log.warning("mailbox not reachable at start-up (%s); trying again at each round", err)
    finally:
        source.close()


def _messages(service, unit=None, verdict=None):
    from intake.store import Message

    with service.Session() as session:
        query = select(Message).where(Message.report.is_not(None)).order_by(Message.id)
        if unit:
            query = query.where(Message.unit_name == unit)
        if verdict:
            query = query.where(Message.verdict == verdict)
        return session.scalars(query).all()


def submissions(service, args) -> int:
    from intake.daemon import submission

    messages = _messages(service, args.unit, args.verdict)
    items = [submission(m) for m in messages]
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        for message, item in zip(messages, items):
            projects = "；".join(f"{p['name']}（{p['verdict']}）" for p in item["projects"])
            # mail with no single sender address is answered nowhere: staff see what it said
            sender = item["from"] or f"发件地址无法识别，未回复（From: {message.from_header or '无'}）"
            print(f"{item['receipt']}  {item['received_at']}  {item['verdict']:<12} {item['unit'] or '单位未识别'}  "
                  f"{sender}  {projects}")
    return 0


def show(service, args) -> int:
    from intake.daemon import _by_receipt, submission

    with service.Session() as session:
        message = _by_receipt(session, args.receipt)
        data = submission(message)
        data.update({
            "state": message.state, "attempts": message.attempts, "last_error": message.last_error,
            "override": message.override, "override_note": message.override_note,
            "subject": message.subject, "from_header": message.from_header,
            "findings": (message.report or {}).get("findings", []),
        })
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def quarantine(service, args) -> int:
    """Messages that failed INTAKE_MAX_ATTEMPTS times (or permanently): staff look at
    them with `intake show` and replay them with `intake reprocess`."""
    from intake.store import QUARANTINED, Message

    with service.Session() as session:
        rows = session.scalars(select(Message).where(Message.state == QUARANTINED).order_by(Message.id)).all()
    items = [{"receipt": m.receipt, "from": m.from_address, "subject": m.subject, "attempts": m.attempts,
              "last_error": m.last_error} for m in rows]
    print(json.dumps(items, ensure_ascii=False, indent=2))
    return 0


def status(service, args) -> int:
    """The last poll's outcome (a rejected password shows here while `intake run` keeps
    trying each round) and how many messages are in each state (JSON)."""
    from sqlalchemy import func

    from intake.store import Message, ServiceStatus

    with service.Session() as session:
        states = dict(session.execute(select(Message.state, func.count()).group_by(Message.state)).all())
        parts = {row.name: {"ok": row.ok, "detail": row.detail, "at": row.at.isoformat(),
                            "last_ok_at": row.last_ok_at.isoformat() if row.last_ok_at else None}
                 for row in session.scalars(select(ServiceStatus))}
    print(json.dumps({"mailbox": parts.get("mailbox"), "states": states}, ensure_ascii=False, indent=2))
    return 0 if (parts.get("mailbox") or {}).get("ok", True) else 1


def reprocess(service, args) -> int:
    from intake.daemon import reprocess as replay

    message = replay(service.Session, args.receipt)
    print(f"{message.receipt}: queued for processing again")
    return 0


def override(service, args) -> int:
    from intake.daemon import override as decide

    message = decide(service.Session, args.receipt, "accepted" if args.accept else "rejected", args.note)
    print(f"{message.receipt}: {message.verdict} ({args.note})")
    return 0


def units(service, args) -> int:
    from intake.units import import_units

    count, contacts = import_units(service.Session, args.file)
    print(f"units: {count}; contact addresses: {contacts}")
    return 0


def demo(settings) -> int:
    """The README's main command: the daemon on embedded defaults over a sample Maildir."""
    from intake.daemon import submission
    from intake.demo import build_demo_maildir
    from intake.service import open_service, poll_and_process

    if settings.maildir is None and not settings.imap_user:
        settings.maildir = build_demo_maildir(settings.data_dir / "demo-maildir")
    service = open_service(settings)
    fetched, processed = poll_and_process(service)
    print(f"数据目录：{settings.data_dir.resolve()}")
    print(f"新邮件 {fetched} 封，本次处理 {processed} 封。")
    for message in _messages(service):
        item = submission(message)
        projects = "；".join(f"{p['name']}（{p['verdict']}）" for p in item["projects"]) or "—"
        print(f"  {item['receipt']}  {item['verdict']:<12} {item['from']}  {projects}")
    outbox = settings.data_dir / "outbox"
    replies = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    print(f"回复邮件 {len(replies)} 封，已写入 {outbox.resolve()}")
    return 0
