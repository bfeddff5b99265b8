"""`kadaster rounds ...`: import a care-region series, show rankings and rounds, verify decisions."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from adapters.bootstrap import open_register
from adapters.cli.common import add_client_options, emit, print_table, run_client, settings_or_exit
from adapters.nats.client import QueryFailed
from domain.errors import DomainError
from services.rounds import series_commands, verify_rounds

RANKING_COLUMNS = ["rank", "region", "programme_figure", "filled", "fill_rate"]


def cmd_import(args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8") as handle:
            document = json.load(handle)
        commands = series_commands(document)
    except (OSError, ValueError) as error:
        print(f"kadaster: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the series file itself is inconsistent
        print(f"kadaster: {args.file} is not a care-region series: {error}", file=sys.stderr)
        return 2

    async def work(client: Any) -> int:
        rejected = recorded_before = 0
        for number, command in enumerate(commands, start=1):
            try:
                # Sent before (the same file imported again): its first outcome stands, nothing is new.
                outcome = await client.outcome(command.command_id)
                recorded_before += 1
            except QueryFailed:
                outcome = await client.send(command.type, command.data, command_id=command.command_id)
            if outcome["status"] != "accepted":
                rejected += 1
                codes = ", ".join(f"{e['code']}: {e['message']}" for e in outcome["errors"])
                print(f"\nrejected {command.type} ({command.command_id}): {codes}", file=sys.stderr)
            if sys.stderr.isatty():
                print(f"\r{number}/{len(commands)} commands", end="", file=sys.stderr)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        summary = {
            "commands": len(commands),
            "accepted": len(commands) - rejected,
            "rejected": rejected,
            "recorded_before": recorded_before,
            "new": len(commands) - recorded_before,
        }
        if args.json:
            print(json.dumps(summary))
        elif recorded_before == len(commands):
            total = len(commands)
            print(f"nothing new: all {total} commands were recorded before ({rejected} of them rejected)")
        else:
            print(
                f"{summary['accepted']} of {summary['commands']} commands accepted, {rejected} rejected"
                + (f" ({recorded_before} recorded before)" if recorded_before else "")
            )
        return 1 if rejected else 0

    return run_client(args, "vazg", work)


def cmd_ranking(args: argparse.Namespace) -> int:
    filters = {"period": args.period} if not args.round else {"round_id": args.period}

    async def work(client: Any) -> int:
        answer = await client.query("ranking", filters)
        if args.json:
            print(json.dumps(answer.get("items", answer), indent=2))
        elif "items" in answer:
            print_table(sorted(answer["items"], key=lambda r: r["rank"]), RANKING_COLUMNS)
        else:
            print_table(
                answer.get("decisions") or [], ["institution", "province", "status", "reason", "message"]
            )
        return 0

    return run_client(args, "vazg", work)


def cmd_show(args: argparse.Namespace) -> int:
    async def work(client: Any) -> int:
        answer = await client.query("rounds", {"round_id": args.round_id})
        if args.json:
            print(json.dumps(answer, indent=2))
            return 0
        print(f"round {answer['round_id']} ({answer['programme']}, {answer['period']}): {answer['status']}")
        print(f"capacity {answer['capacity']}, policy {answer.get('policy_version') or '(not decided)'}")
        if answer.get("decisions"):
            print()
            print_table(answer["decisions"], ["institution", "province", "status", "reason", "message"])
        elif answer.get("ranking") and "regions" in answer["ranking"]:
            print()
            print_table(answer["ranking"]["regions"], RANKING_COLUMNS)
        return 0

    return run_client(args, "vazg", work)


def cmd_list(args: argparse.Namespace) -> int:
    async def work(client: Any) -> int:
        emit(
            args,
            await client.query("rounds"),
            ["round_id", "programme", "period", "status", "capacity", "applications", "policy_version"],
        )
        return 0

    return run_client(args, "vazg", work)


def cmd_verify(args: argparse.Namespace) -> int:
    """Reads the event store itself: an auditor should not have to trust the running service."""

    register = open_register(settings_or_exit())
    try:
        reports = verify_rounds(register, args.round_id)
    except DomainError as error:
        print(f"kadaster: {error}", file=sys.stderr)
        return 2
    finally:
        register.close()
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
    else:
        for report in reports:
            state = "ok" if report["ok"] else "DIFFERS"
            print(f"{report['round_id']}: {state} ({report['checked']} decision(s) recomputed)")
            for difference in report["differences"]:
                print(
                    f"  {difference['step']} {difference['path']}: recorded {difference['recorded']!r}, "
                    f"recomputed {difference['recomputed']!r}"
                )
    return 0 if all(r["ok"] for r in reports) else 1


def add_round_commands(sub: Any) -> None:
    rounds = sub.add_parser(
        "rounds",
        help="allocation rounds: import a series, rankings, decisions, verification",
        description="Allocation rounds for scarce capacity (new MRI devices, residential-care "
        "places). Every input is recorded; every decision can be recomputed and verified.",
    )
    actions = rounds.add_subparsers(dest="rounds_command", required=True, metavar="ACTION")

    importing = actions.add_parser(
        "import",
        help="record a care-region series file (CONTRACT.md) as commands",
        description="Records each trimester of the file through the same commands as "
        "live messages (open, corrections, close, decide, grants, finalise). Command ids "
        "derive from the file, so importing it again changes nothing.",
    )
    importing.add_argument("file", help="the series file (JSON)")
    add_client_options(importing)
    importing.set_defaults(func=cmd_import)

    ranking = actions.add_parser(
        "ranking",
        help="a trimester's care-region ranking (or a round's, with --round)",
        description="Prints region, programme figure, filled places, fill rate (percent, "
        "two decimals, rounded half-up) and rank (1 = lowest fill rate = priority).",
    )
    ranking.add_argument("period", help="trimester such as 2017Q1, or a round id with --round")
    ranking.add_argument("--round", action="store_true", help="PERIOD is a round id (e.g. an nmr round)")
    add_client_options(ranking)
    ranking.set_defaults(func=cmd_ranking)

    show = actions.add_parser("show", help="one round: inputs, ranking, decisions and reasons")
    show.add_argument("round_id")
    add_client_options(show)
    show.set_defaults(func=cmd_show)

    listing = actions.add_parser("list", help="every round with its status")
    add_client_options(listing)
    listing.set_defaults(func=cmd_list)

    verify = actions.add_parser(
        "verify",
        help="recompute decided rounds from their recorded inputs",
        description="Reads the event store directly (KADASTER_DATABASE_URL) and recomputes "
        "every decision with its recorded policy version; exit 1 on any difference.",
    )
    verify.add_argument("round_id", nargs="?", help="only this round")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)
