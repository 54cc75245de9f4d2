"""The ``intake`` command.

Exit status (contract): 0 accepted; 1 anything else that was checked; 2 usage,
configuration or internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from intake.errors import ConfigError, IntakeError

EXIT_ACCEPTED, EXIT_CHECKED, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 on usage errors, as the contract wants
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"intake: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="intake", description="Collection daemon for the '五小' roadshow submissions.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="check one package, archive or .eml offline")
    check.add_argument("path", type=Path)
    check.add_argument("--policy", default=None, help="policy name (default: roadshow)")
    check.add_argument("--received-at", default=None, help="when the mailbox received it (ISO 8601)")
    check.add_argument("--config", default=None, help="settings TOML; its [policy] table overrides the policy")
    check.add_argument("--json", action="store_true", help="print the contract's JSON object")

    sample = commands.add_parser("sample", help="build a sample package to try `intake check` on")
    sample.add_argument("directory", type=Path)

    commands.add_parser("policies", help="list the policies this installation knows")

    def daemon_command(name: str, help_text: str):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", default=None, help="settings TOML (else INTAKE_CONFIG)")
        return command

    daemon_command("run", "run the daemon until SIGTERM/SIGINT")
    poll = daemon_command("poll", "poll the mailbox and process what it found")
    poll.add_argument("--once", action="store_true", required=True, help="one round, then exit")
    listing = daemon_command("submissions", "list the messages processed")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--unit", default=None)
    listing.add_argument("--verdict", default=None)
    daemon_command("show", "show one submission").add_argument("receipt")
    daemon_command("quarantine", "list the messages that failed too often, for staff")
    daemon_command("reprocess", "replay a message from the start").add_argument("receipt")
    override = daemon_command("override", "staff decision on a submission")
    override.add_argument("receipt")
    decision = override.add_mutually_exclusive_group(required=True)
    decision.add_argument("--accept", action="store_true")
    decision.add_argument("--reject", action="store_true")
    override.add_argument("--note", required=True)
    units = daemon_command("units", "unit quotas and contacts")
    units.add_argument("action", choices=["import"])
    units.add_argument("file", type=Path)
    database = daemon_command("db", "database schema")
    database.add_argument("action", choices=["upgrade"])
    daemon_command("demo", "run the daemon once over a sample mailbox the project builds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "sample":
            return _sample(args)
        if args.command == "policies":
            from intake.policy import available_policies

            print("\n".join(available_policies()))
            return 0
        from intake import commands

        return commands.dispatch(args)
    except IntakeError as err:
        print(f"intake: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception:  # an internal error must still exit 2, with the traceback for staff
        traceback.print_exc()
        return EXIT_ERROR
    return EXIT_ERROR


def _check(args) -> int:
    import os

    from intake.core import ACCEPTED, check_message, check_package
    from intake.policy import load_config_file, load_policy, parse_instant
    from intake.report import render_text

    config = load_config_file(args.config) if args.config else {}
    policy_name = args.policy or os.environ.get("INTAKE_POLICY") or "roadshow"
    overrides = config.get("policy", {})
    if not isinstance(overrides, dict):
        raise ConfigError("policy: must be a table in the config file")
    policy = load_policy(policy_name, overrides)
    received_at = parse_instant(args.received_at, "--received-at") if args.received_at else None

    path: Path = args.path
    if not path.exists():
        raise ConfigError(f"check: no such file or folder: {path}")
    if path.suffix.lower() == ".eml" and path.is_file():
        report = check_message(path.read_bytes(), policy, received_at)
        report.source = str(path)
    else:
        report = check_package(path, policy, received_at)
    if args.json:
        json.dump(report.to_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report, policy.title))
    return EXIT_ACCEPTED if report.verdict == ACCEPTED else EXIT_CHECKED


def _sample(args) -> int:
    from intake.samples import build_sample_package

    archive = build_sample_package(args.directory)
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
