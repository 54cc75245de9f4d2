"""The ``intake`` command.

Exit status (contract): 0 accepted; 1 anything else that was checked; 2 usage,
configuration or internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn

from intake import logs
from intake.budgeted import check_message_within, check_package_within
from intake.kernel.errors import ConfigError, IntakeError
from intake.kernel.policy import available_policies, load_policy, parse_instant
from intake.kernel.verdicts import Verdict
from intake.samples import build_sample_package
from intake.check_links import fetch_for_check, listing_text
from intake.settings import load_settings, read_config
from intake.terminal_progress import judging_spinner
from intake.text_report import render_text

EXIT_ACCEPTED, EXIT_CHECKED, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 on usage errors, as the contract wants
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"intake: error: {message}\n")


VERDICTS = ["accepted", "partial", "rejected", "needs_review", "ignored"]


def _json_option(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="intake", description="Collection daemon for the '五小' roadshow submissions.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (or INTAKE_DEBUG=1)")
    # --debug is taken after the command too; SUPPRESS keeps a sub-parser from resetting it
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, **options: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], **options)

    check = add("check", help="check one package, archive or .eml offline")
    check.add_argument("path", type=Path, help="an .eml message, an archive or a folder holding a package")
    check.add_argument("--policy", default=None, help="policy name (default: roadshow)")
    check.add_argument("--received-at", default=None, help="when the mailbox received it (ISO 8601)")
    check.add_argument("--config", default=None, help="settings TOML; its [policy] table overrides the policy")
    check.add_argument("--json", action="store_true", help="print the contract's JSON object")

    sample = add("sample", help="build a sample package to try `intake check` on")
    sample.add_argument("directory", type=Path, help="a new or empty folder to write the sample zip into")

    add("policies", help="list the policies this installation knows")

    def daemon_command(name: str, help_text: str) -> argparse.ArgumentParser:
        command = add(name, help=help_text)
        command.add_argument("--config", default=None, help="settings TOML (else INTAKE_CONFIG)")
        return command

    daemon_command("run", "run the daemon until SIGTERM/SIGINT")
    poll = daemon_command("poll", "poll the mailbox and process what it found")
    poll.add_argument("--once", action="store_true", required=True, help="one round, then exit")
    listing = daemon_command("submissions", "list the messages processed (a table; --json for scripts)")
    _json_option(listing)
    listing.add_argument("--unit", default=None, help="only this unit's messages (its name, e.g. 湖北省总工会)")
    listing.add_argument("--verdict", default=None, choices=VERDICTS, help="only messages with this verdict")
    shown = daemon_command("show", "show one submission: state, findings, links, reply")
    shown.add_argument("receipt", help="the submission's receipt, e.g. WX2024-000001")
    _json_option(shown)
    _json_option(daemon_command("quarantine", "list the messages that failed too often, for staff"))
    _json_option(daemon_command("status", "the last poll's and delivery's outcome and the messages in each state"))
    daemon_command("reprocess", "replay a message from the start").add_argument(
        "receipt", help="the submission's receipt")
    daemon_command("resend", "queue a reply (RECEIPT) or mail (its `intake outbox` number) again that was not sent"
                   ).add_argument("receipt", help="a receipt (its reply) or a number from `intake outbox`")
    _json_option(daemon_command("outbox", "list outgoing mail not sent: queued, uncertain, refused, held"))
    override = daemon_command("override", "staff decision on a submission")
    override.add_argument("receipt", help="the submission's receipt")
    decision = override.add_mutually_exclusive_group(required=True)
    decision.add_argument("--accept", action="store_true", help="staff accept it")
    decision.add_argument("--reject", action="store_true", help="staff reject it")
    override.add_argument("--note", required=True, help="why (kept with the decision and in the audit)")
    units = daemon_command("units", "unit quotas and contacts")
    units.add_argument("action", choices=["import"], help="import: read quotas and contact addresses")
    units.add_argument("file", type=Path, help="a CSV or XLSX file (附件2/附件4)")
    digest = daemon_command("digest", "the daily digest for staff: write a preview, or send today's now")
    action = digest.add_mutually_exclusive_group(required=True)
    action.add_argument("--preview", metavar="FILE.html", default=None,
                        help="write today's digest to FILE.html (its chart and workbook beside it); send nothing")
    action.add_argument("--send", action="store_true",
                        help="queue today's digest to INTAKE_STAFF_EMAILS and deliver it now (once a day)")
    digest.add_argument("--force", action="store_true",
                        help="with --send: send today's digest again, even if it went out already")
    database = daemon_command("db", "database schema")
    database.add_argument("action", choices=["upgrade"], help="upgrade: bring the schema to the newest revision")
    daemon_command("demo", "run the daemon once over a sample mailbox the project builds")
    daemon_command("export", "lay out the current accepted projects in DIR for the expert panel (again: update it)"
                   ).add_argument("directory", type=Path, metavar="DIR",
                                  help="the folder to lay the projects out in (an earlier export there is updated)")
    daemon_command("doctor", "check settings, mailbox, SMTP, database, netdisk, tools, disk and clock; exit 0 "
                   "only when everything needed is fine").add_argument("--json", action="store_true",
                                                                       help="one JSON object, for monitoring")
    netdisk = daemon_command("netdisk", "the Baidu Netdisk account of the openapi route")
    netdisk.add_argument("action", choices=["login"], help="device-code login; stores the tokens in the data folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "digest" and args.force and not args.send:
        parser.error("digest: --force goes with --send")
    debug = args.debug or os.environ.get("INTAKE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "sample":
            return _sample(args)
        if args.command == "policies":
            print("\n".join(available_policies()))
            return 0
        # imported here: `intake check` does not pay for the daemon's imports
        # (SQLAlchemy, Alembic, APScheduler) that only the daemon commands need
        from intake import commands

        args.debug = debug
        return commands.dispatch(args)
    except IntakeError as err:  # an operator's matter: one line that names what to fix
        if debug:
            _traceback(f"{type(err).__name__}: {err}")
        print(f"intake: {logs.clean(str(err))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as err:  # an internal error still exits 2; the traceback on request
        if debug:
            _traceback(f"internal error: {type(err).__name__}")
        detail = logs.clean(" ".join(str(err).split())[:300])
        print(f"intake: internal error: {type(err).__name__}: {detail} (run with --debug or INTAKE_DEBUG=1 "
              "for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _traceback(summary: str) -> None:
    """The traceback as one event of the daemon's log (cleaned of secrets), once the
    daemon commands have set it up; before that, as Python prints it."""
    if not logs.log_traceback(summary):
        traceback.print_exc()


def _check(args: argparse.Namespace) -> int:
    # the file is read as the daemon reads it: an unknown key stops here too
    config, overrides = read_config(args.config) if args.config else ({}, {})
    policy_name = args.policy or os.environ.get("INTAKE_POLICY") or config.get("policy") or "roadshow"
    policy = load_policy(str(policy_name), overrides)
    received_at = parse_instant(args.received_at, "--received-at") if args.received_at else None

    path: Path = args.path
    if not path.exists():
        raise ConfigError(f"check: no such file or folder: {path}")
    # judged as the daemon judges: in a child process under the policy's budget
    fetched = None
    with tempfile.TemporaryDirectory(prefix="intake-check-") as tmp:
        if path.suffix.lower() == ".eml" and path.is_file():
            # its links are fetched first, with the daemon's settings (env, --config)
            fetched = fetch_for_check(path, load_settings(args.config), policy, received_at, Path(tmp) / "fetched")
            with judging_spinner(sys.stderr):
                report = check_message_within(path, policy, received_at, Path(tmp) / "judged", fetched=fetched)
            report.source = str(path)
        else:
            with judging_spinner(sys.stderr):
                report = check_package_within(path, policy, received_at)
    if args.json:
        json.dump(report.to_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report, policy.title))
        sys.stdout.write(listing_text(fetched))
    return EXIT_ACCEPTED if report.verdict == Verdict.ACCEPTED else EXIT_CHECKED


def _sample(args: argparse.Namespace) -> int:
    target: Path = args.directory
    if target.exists() and not target.is_dir():
        raise ConfigError(f"sample: {target} exists and is not a folder; name a new or empty folder")
    try:
        archive = build_sample_package(target)
    except OSError as err:
        raise ConfigError(f"sample: cannot write into {target} ({err.strerror or err}); "
                          "name a folder this user may write to") from None
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
