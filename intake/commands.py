"""The daemon's commands (``intake run``, ``poll --once``, ``submissions`` …): parse
nothing, decide nothing; call the daemon's stages and print for staff."""

from __future__ import annotations

import json
import logging
import sys
import signal
import time
from argparse import Namespace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from intake import log_config
from intake.daemon import delivery, queries, staff
from intake.daemon import digest as digests
from intake.daemon.claims import worker_id
from intake.demo import build_demo_maildir
from intake.export import export
from intake.doctor import run_doctor
from intake.fetchers import make_http, refresh_lock
from intake.fetchers.tokens import OAuth, TokenStore, device_login
from intake.kernel.errors import ConfigError, IntakeError, LoginRejected, PermanentError, TransientError
from intake.kernel.report import BEIJING, beijing_text
from intake.notifier.smtp import from_mismatch
from intake.notifier.transport import make_transport
from intake.service import Service, open_service, poll_and_process
from intake.settings import Settings, load_settings
from intake.staff_tables import (outbox_table, print_tables, quarantine_table, show_tables, status_tables,
                                 submissions_table)
from intake.sources import make_source
from intake.staff_words import OVERRIDE_NAMES, one_line, verdict_name
from intake.terminal_progress import RoundProgress
from intake.units import import_units

log = logging.getLogger("intake")


def dispatch(args: Namespace) -> int:
    if args.command == "doctor":  # before the settings are read: a bad one is its first line
        return run_doctor(args.config, args.json)
    settings = load_settings(args.config)
    log_config.configure(settings, debug=bool(getattr(args, "debug", False)))
    if args.command == "demo":
        return demo(settings)
    if args.command == "netdisk":  # needs no database
        return netdisk_login(settings)
    service = open_service(settings)
    if args.command != "run":  # `intake run` says it once its settings pass the preflight
        log_config.say_start(args.command, settings, loud=args.command in ("poll", "digest"))
    handler = {
        "run": run, "poll": poll_once, "submissions": submissions, "show": show, "quarantine": quarantine,
        "status": status, "reprocess": reprocess, "override": override, "resend": resend, "units": units,
        "outbox": outbox, "digest": digest, "db": lambda s, a: 0, "export": export_for_panel,
    }[args.command]
    return handler(service, args)


def poll_once(service: Service, args: Namespace) -> int:
    if sys.stderr.isatty():  # a person is watching: a line per message (piped: nothing extra)
        with RoundProgress(sys.stderr, lambda message_id: queries.outline(service.Session, message_id)) as shown:
            fetched, processed = poll_and_process(service, on_message=shown.on_message)
    else:
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
            log.error("round failed: %s; trying again at the next round", err,
                      exc_info=log.isEnabledFor(logging.DEBUG))  # the traceback with --debug
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
    log_config.say_start("run", service.settings, loud=True)
    _say_transport(service)


def _say_transport(service: Service) -> None:
    """Where mail goes (host:port/security and user for SMTP, never the password), and
    whether the SMTP login works now. As for IMAP: a refused login or an unreachable
    server is retried each round; a setting no round can mend (TLS on a plain port, a
    certificate that cannot be verified) stops `intake run` here."""
    transport = make_transport(service.settings)
    log.info("replies go to %s", transport.name)
    if transport.status_name != "smtp":
        return
    mismatch = from_mismatch(service.settings)
    if mismatch:
        log.warning("%s", mismatch)
    try:
        with transport.open():
            pass
    except LoginRejected as err:
        log.error("%s; trying again at each round", err)
    except TransientError as err:
        log.warning("SMTP not usable at start-up (%s); trying again at each round", err)


def submissions(service: Service, args: Namespace) -> int:
    messages = queries.judged_messages(service.Session, args.unit, args.verdict)
    items = [queries.submission(m) for m in messages]
    if args.json:
        return _print_json(items)
    print_tables(submissions_table(items, [m.from_header for m in messages]), sys.stdout)
    return 0


def show(service: Service, args: Namespace) -> int:
    found = queries.details(service.Session, args.receipt)
    if args.json:
        return _print_json(found)
    print_tables(show_tables(found), sys.stdout)
    return 0


def quarantine(service: Service, args: Namespace) -> int:
    """Messages that failed INTAKE_MAX_ATTEMPTS times (or permanently): staff look at
    them with `intake show` and replay them with `intake reprocess` (or `resend`)."""
    rows = queries.quarantined(service.Session)
    if args.json:
        return _print_json(rows)
    print_tables(quarantine_table(rows), sys.stdout)
    return 0


def status(service: Service, args: Namespace) -> int:
    """The last poll's and delivery's outcome (a rejected password shows here while
    `intake run` keeps trying each round) and how many messages are in each state;
    exit 1 while either fails."""
    found = queries.status(service.Session)
    if args.json:
        _print_json(found)
    else:
        print_tables(status_tables(found), sys.stdout)
    return 0 if all((found[part] or {}).get("ok", True) for part in ("mailbox", "smtp")) else 1


def _print_json(data: object) -> int:
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def reprocess(service: Service, args: Namespace) -> int:
    message = staff.reprocess(service.Session, args.receipt)
    print(f"{message.receipt}: queued for processing again")
    return 0


def override(service: Service, args: Namespace) -> int:
    message = staff.override(service.Session, args.receipt, "accepted" if args.accept else "rejected", args.note)
    print(f"{message.receipt}：{OVERRIDE_NAMES[message.override or '']}，结论现为{verdict_name(message.verdict)}"
          f"（说明：{one_line(args.note)}）")
    return 0


def resend(service: Service, args: Namespace) -> int:
    """A reply (by receipt) or any outgoing mail (by its `intake outbox` number) queued
    again; the next round delivers it."""
    target: str = args.receipt.strip().lstrip("#")
    if target.isdigit():
        staff.resend_mail(service.Session, int(target), service.settings, service.policy)
        print(f"mail {target}: queued again; the next round delivers it")
        return 0
    staff.resend(service.Session, target, service.settings, service.policy)
    print(f"{target}: its reply is queued again; the next round delivers it")
    return 0


def outbox(service: Service, args: Namespace) -> int:
    """Every outgoing mail not sent: queued (with its next attempt), being sent or
    uncertain, refused (with the server's answer), held (over the per-sender cap); and
    sent mail that some of its recipients refused (their answers)."""
    rows = delivery.unsent(service.Session, worker_id())
    if args.json:
        return _print_json(rows)
    print_tables(outbox_table(rows), sys.stdout)
    return 0


def units(service: Service, args: Namespace) -> int:
    count, contacts = import_units(service.Session, args.file)
    print(f"units: {count}; contact addresses: {contacts}")
    return 0


def digest(service: Service, args: Namespace) -> int:
    """`intake digest --preview FILE.html` writes today's digest (chart and workbook
    beside it); `--send` queues it (once a day; `--force` again), then runs one delivery
    pass now. Exit 1 when some mail did not go out (`intake outbox` lists it)."""
    now = datetime.now(timezone.utc)
    settings = service.settings
    if args.preview:
        page, chart, workbook = digests.preview(service.Session, settings, service.policy, now, Path(args.preview))
        print(f"digest written to {page} (chart {chart.name} and workbook {workbook.name} beside it); nothing sent")
        return 0
    if not settings.staff_emails:
        raise ConfigError(digests.NO_STAFF)
    key = digests.digest_key(now)
    if digests.queue_digest(service.Session, settings, service.policy, now, force=args.force) is None:
        at = digests.queued_at(service.Session, now)
        print(f"today's digest ({key}) was queued already"
              f"{' at ' + beijing_text(at) if at else ''}; it is sent once a day (--force sends it again)")
    else:
        print(f"today's digest ({key}) queued{' again' if args.force else ''} for {', '.join(settings.staff_emails)}")
    transport = make_transport(settings)
    done = delivery.deliver_pending(service.Session, transport, worker_id())
    print(f"delivery now via {transport.name}: {done.summary()}")
    if isinstance(done.error, PermanentError):
        raise done.error  # a setting to mend (the SMTP password, say): one line, exit 2
    if done.error is not None:
        print(f"not delivered now ({done.error}); the daemon's next round tries again (`intake outbox` lists it)")
    elif done.refused or done.uncertain:
        print("some mail was refused or may not have arrived; `intake outbox` lists it with the server's answer")
    return 1 if done.error or done.refused or done.uncertain else 0


def export_for_panel(service: Service, args: Namespace) -> int:
    """`intake export DIR` (issue #14 §4); exit 1 when some project could not be exported."""
    done = export(service.Session, service.settings.data_dir, service.policy, args.directory)
    print(f"导出目录：{Path(args.directory).resolve()}")
    print(f"项目 {done.projects} 个；复制文件 {done.copied} 个，未变化 {done.unchanged} 个，移除 {done.removed} 个。")
    for line in done.problems:
        print(f"未导出：{line}")
    return 1 if done.problems else 0


def demo(settings: Settings) -> int:
    """The README's main command: the daemon on embedded defaults over a sample Maildir."""
    if settings.maildir is None and not settings.imap_user:
        settings.maildir = build_demo_maildir(settings.data_dir / "demo-maildir")
        settings.fetch_links = False  # the sample's Baidu link is made up: no request leaves the machine
    service = open_service(settings)
    log_config.say_start("demo", settings, loud=False)  # the demo prints its own summary
    fetched, processed = poll_and_process(service)
    print(f"数据目录：{settings.data_dir.resolve()}")
    print(f"新邮件 {fetched} 封，本次处理 {processed} 封。")
    messages = queries.judged_messages(service.Session)
    print_tables(submissions_table([queries.submission(m) for m in messages], [m.from_header for m in messages]),
                 sys.stdout)
    outbox = settings.data_dir / "outbox"
    replies = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    print(f"回复邮件 {len(replies)} 封，已写入 {outbox.resolve()}")
    return 0


def netdisk_login(settings: Settings) -> int:
    """`intake netdisk login`: the device-code login of the openapi route. Staff open the
    page shown, enter the user code and approve; the tokens go to the data folder (0600)."""
    http = make_http(settings)
    store = TokenStore.in_data_dir(settings.data_dir)
    try:
        tokens = device_login(OAuth(http, settings.baidu_app_key, settings.baidu_secret_key), store,
                              lambda line: print(line, flush=True), lock=refresh_lock(settings))
    finally:
        http.close()
    print(f"授权成功，令牌已保存到 {store.path}（访问令牌有效期至 "
          f"{beijing_text(datetime.fromtimestamp(tokens.expires_at, timezone.utc))}，到期前自动续期）。")
    if settings.netdisk_route != "openapi":
        print("注意：INTAKE_NETDISK_ROUTE 尚未设为 openapi，守护进程不会使用这些令牌。")
    return 0
