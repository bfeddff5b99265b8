"""`kadaster midid`, `send`, `query` and `outcome`: the plain clients of a running register."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from adapters.cli.common import EXIT_USAGE, emit, print_outcome, run_client


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
