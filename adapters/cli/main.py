"""The `kadaster` command: run the service or one of its roles, and talk to a running register."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from adapters.bootstrap import ROLES, Running, freeze_startup_heap, serve
from adapters.cli.access import add_access_commands
from adapters.cli.audit import add_audit_commands, add_export_commands
from adapters.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    add_client_options,
    client_url,
    emit,
    print_outcome,
    run_client,
    settings_or_exit,
)
from adapters.cli.legacy import add_legacy_commands
from adapters.cli.read import add_read_commands
from adapters.cli.rounds import add_round_commands
from adapters.cli.supervisor import READY_LINE, supervise
from adapters.config import describe_settings
from adapters.contract.docs import add_contract_commands
from adapters.http.health import check_health
from adapters.logging import configure_logging, uses_console
from adapters.nats.accounts import add_nats_config_command

DESCRIPTION = """\
kadaster: the register of Belgium's heavy medical imaging devices (CT, PET, PET-CT, PET-MRI,
SPECT-CT, MRI). Hospitals, suppliers, the FOD, FANC, RIZIV and VAZG send it messages over NATS;
it issues MID-IDs in real time, keeps every event, and answers queries.

Run `kadaster serve` to start everything in one process (with no configuration it starts its own
nats-server on 127.0.0.1:4322 and keeps events in SQLite under ./.kadaster). The other commands
are clients of a running service.
"""

ROLE_HELP = {
    "ingest": "consume KADASTER_CMD in batches and record every command exactly once",
    "rpc": "answer real-time MID-ID requests (kadaster.rpc.hospital.<id>.midid.issue)",
    "projector": "keep the read models up to date from the event store",
    "relay": "publish every public domain event once, as a CloudEvent, on kadaster.evt.<aggregate>.<event>",
    "api": "answer queries over NATS (kadaster.query.>) and the read-only HTTP API",
}


# commands


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "serve" and settings.serve_mode == "processes":
        try:
            return asyncio.run(supervise(settings, console=uses_console(settings.log_format)))
        except (RuntimeError, TimeoutError, OSError) as error:
            print(f"kadaster: {error}", file=sys.stderr)
            return 1
    if args.command == "serve":
        roles: Sequence[str] = ROLES
    elif args.command == "run":
        roles = args.roles
    else:
        roles = (args.command,)
    freeze_startup_heap()
    on_ready = tell_supervisor_ready if getattr(args, "supervised", False) else None
    try:
        clean = asyncio.run(serve(settings, roles, on_ready=on_ready))
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"kadaster: {error}", file=sys.stderr)
        return 1
    return 0 if clean else 1


def tell_supervisor_ready(running: Running) -> None:
    print(READY_LINE, flush=True)


def cmd_midid_issue(args: argparse.Namespace) -> int:
    async def work(client: Any) -> int:
        outcome = await client.issue_mid_id(args.modality, note=args.note, command_id=args.id)
        return print_outcome(args, outcome)

    return run_client(args, f"hospital/{args.hospital}", work)


def cmd_midid_cancel(args: argparse.Namespace) -> int:
    async def work(client: Any) -> int:
        outcome = await client.send(
            "midid.cancel", {"mid_id": args.mid_id, "reason": args.reason}, command_id=args.id
        )
        return print_outcome(args, outcome)

    return run_client(args, f"hospital/{args.hospital}", work)


def cmd_midid_list(args: argparse.Namespace) -> int:
    filters = {
        k: v for k, v in (("modality", args.modality), ("status", args.status), ("as_of", args.as_of)) if v
    }

    async def work(client: Any) -> int:
        answer = await client.query("midids", filters)
        emit(args, answer, ["mid_id", "modality", "status", "device_id", "issued_at"])
        return 0

    return run_client(args, f"hospital/{args.hospital}", work)


def cmd_send(args: argparse.Namespace) -> int:
    raw = args.data
    if raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as handle:
                raw = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            print(f"kadaster: cannot read --data file {raw[1:]}: {reason}", file=sys.stderr)
            return EXIT_USAGE
    try:
        data = json.loads(raw)
    except ValueError as error:
        print(f"kadaster: --data is not JSON: {error}", file=sys.stderr)
        return 2

    async def work(client: Any) -> int:
        return print_outcome(args, await client.send(args.type, data, command_id=args.id))

    return run_client(args, args.source, work)


def cmd_query(args: argparse.Namespace) -> int:
    filters: dict[str, Any] = {}
    for item in args.filter or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"kadaster: filter {item!r} is not key=value", file=sys.stderr)
            return 2
        filters[key] = value
    source = f"hospital/{args.hospital}" if args.hospital else "fod"

    async def work(client: Any) -> int:
        print(json.dumps(await client.query(args.name, filters), indent=2, default=str))
        return 0

    return run_client(args, source, work)


def cmd_outcome(args: argparse.Namespace) -> int:
    filters = {"command_id": args.command_id}
    if args.source:
        filters["source"] = args.source

    async def work(client: Any) -> int:
        print(json.dumps(await client.query("outcome", filters), indent=2))
        return 0

    return run_client(args, "fod", work)


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when this role's dependencies answer: NATS, the event store, and its own endpoints."""
    settings = settings_or_exit()
    problems = asyncio.run(check_health(settings, args.role, client_url(args, settings)))
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.role}: healthy")
    return 1 if problems else 0


def cmd_config(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    if args.json:
        print(settings.model_dump_json(indent=2))
    else:
        print("Settings in force:")
        for name, value in settings.model_dump().items():
            shown = "***" if ("password" in name or "secret" in name) and value else value
            print(f"  {name} = {shown}")
        print("\nEnvironment variables:\n" + describe_settings())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kadaster",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configuration (environment variables, or a TOML file named by KADASTER_SETTINGS_FILE):\n"
        + describe_settings(),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    client_options = add_client_options

    serve = sub.add_parser(
        "serve",
        help="run every role (embedded NATS and SQLite by default)",
        description="Runs ingest, rpc, projector, relay and api together: by default as child "
        "processes under one supervisor (ingest and rpc share the writer process), one log stream, "
        "a dead child restarted (KADASTER_RESTART_LIMIT within KADASTER_RESTART_WINDOW_SECONDS); "
        "KADASTER_SERVE_MODE=single runs them in one process. Stops cleanly on Ctrl-C or SIGTERM. "
        "The service is ready when `$SRV.PING.kadaster` answers.",
    )
    serve.set_defaults(func=cmd_serve)
    run = sub.add_parser(
        "run",
        help="run the given roles together in one process (what each of serve's children runs)",
        description="Runs the given roles in one process, against KADASTER_NATS_URL or an embedded server.",
    )
    run.add_argument("roles", nargs="+", choices=list(ROLE_HELP), metavar="ROLE", help=", ".join(ROLE_HELP))
    run.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_serve)
    for role, text in ROLE_HELP.items():
        sub.add_parser(
            role,
            help=f"run only the {role} role: {text}",
            description=f"Runs the {role} role: {text}. Several instances may run at once.",
        ).set_defaults(func=cmd_serve)

    midid = sub.add_parser("midid", help="request, list and cancel MID-IDs as a hospital")
    midid_sub = midid.add_subparsers(dest="midid_command", required=True, metavar="ACTION")
    issue = midid_sub.add_parser(
        "issue",
        help="request a MID-ID in real time",
        description="Asks the register for "
        "the next MID-ID for one modality. Granted unconditionally; grants no rights.",
    )
    issue.add_argument(
        "--hospital", required=True, help="institution id of the requesting hospital, e.g. H001"
    )
    issue.add_argument("--modality", required=True, help="CT, PET, PET-CT, PET-MRI, SPECT-CT or MRI")
    issue.add_argument("--note", help="free text kept with the MID-ID, e.g. the tender it is for")
    issue.add_argument("--id", help="envelope id to use (re-using it returns the same MID-ID)")
    client_options(issue)
    issue.set_defaults(func=cmd_midid_issue)
    listing = midid_sub.add_parser(
        "list",
        help="a hospital's MID-IDs with modality and status",
        description="Lists the hospital's MID-IDs: issued (still free), linked "
        "(to a device in the kadaster) or cancelled.",
    )
    listing.add_argument("--hospital", required=True, help="institution id, e.g. H001")
    listing.add_argument("--modality", help="only this modality")
    listing.add_argument("--status", choices=["issued", "linked", "cancelled"], help="only this status")
    listing.add_argument("--as-of", metavar="T", help="the list as it stood at this moment (ISO 8601)")
    client_options(listing)
    listing.set_defaults(func=cmd_midid_list)
    cancel = midid_sub.add_parser("cancel", help="cancel an unlinked MID-ID of one's own (never reissued)")
    cancel.add_argument("mid_id", help="the MID-ID, e.g. MID-0000001-95 (dashes and case do not matter)")
    cancel.add_argument("--hospital", required=True, help="institution id of its holder")
    cancel.add_argument("--reason", required=True, help="why it is cancelled")
    cancel.add_argument("--id", help="envelope id to use")
    client_options(cancel)
    cancel.set_defaults(func=cmd_midid_cancel)

    send = sub.add_parser("send", help="send any command of the contract and print its outcome")
    send.add_argument("type", help="command type, e.g. device.report")
    send.add_argument(
        "--source", required=True, help="hospital/<id>, supplier/<id>, fod, fanc, riziv or vazg"
    )
    send.add_argument("--data", required=True, help="the command's data as JSON, or @file.json")
    send.add_argument("--id", help="envelope id (re-using one never has a second effect)")
    client_options(send)
    send.set_defaults(func=cmd_send)

    query = sub.add_parser("query", help="run any query of the contract and print its JSON answer")
    query.add_argument("name", help="midids, outcome, commands, ...")
    query.add_argument("-f", "--filter", action="append", help="key=value filter, repeatable")
    query.add_argument("--hospital", help="ask as this hospital (only its own data)")
    client_options(query)
    query.set_defaults(func=cmd_query)

    outcome = sub.add_parser("outcome", help="the outcome of a command, by envelope id")
    outcome.add_argument("command_id")
    outcome.add_argument("--source", help="the sender, when several used the same id")
    client_options(outcome)
    outcome.set_defaults(func=cmd_outcome)

    health = sub.add_parser(
        "health", help="check that a role's dependencies answer (for container healthchecks)"
    )
    health.add_argument("role", choices=[*ROLE_HELP, "serve"], help="the role to check")
    health.add_argument("--nats-url", help="NATS server (default: KADASTER_NATS_URL or the embedded one)")
    health.set_defaults(func=cmd_health)

    add_read_commands(sub)
    add_round_commands(sub)
    add_legacy_commands(sub)
    add_audit_commands(sub)
    add_export_commands(sub)
    add_contract_commands(sub)
    add_nats_config_command(sub)
    add_access_commands(sub)

    config = sub.add_parser("config", help="show the settings in force and every variable")
    config.add_argument("--json", action="store_true")
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("serve", "run") and args.command not in ROLE_HELP:
        configure_logging(
            "console" if sys.stderr.isatty() else "json",
            os.environ.get("KADASTER_LOG_LEVEL", "warning").lower(),
        )
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # The reader stopped early (`| head`): nothing more to say, and nothing to say it to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return result


if __name__ == "__main__":
    raise SystemExit(main())
