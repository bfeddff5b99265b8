"""`kadaster rounds import|ranking|show|list`: send a care-region series, ask for rankings and rounds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from adapters.cli.common import emit, print_table, run_client
from adapters.nats.client import QueryFailed
from services.rounds import series_commands

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
