"""`kadaster devices|device|history|discrepancies|capacity`: the read side from a terminal, over NATS."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from adapters.cli.common import emit, print_table, run_client

DEVICE_COLUMNS = [
    "mid_id",
    "institution",
    "province",
    "campus",
    "modality",
    "manufacturer",
    "model",
    "serial_number",
    "status",
    "billing_number",
]
HISTORY_COLUMNS = ["position", "recorded_at", "event_type", "source", "command_id", "business_date"]
DISCREPANCY_COLUMNS = ["kind", "mid_id", "institution", "field", "since", "due_on", "state", "detail"]
CAPACITY_COLUMNS = ["province", "modality", "devices", "linked", "population", "per_100k"]

DEVICE_FIELDS = [
    "mid_id",
    "device_id",
    "status",
    "institution",
    "institution_name",
    "province",
    "region",
    "campus",
    "modality",
    "manufacturer",
    "model",
    "serial_number",
    "use",
    "installed_on",
    "registered_on",
    "linked_on",
    "decommissioned_on",
    "decommission_reason",
    "licence_ref",
    "licence_valid_from",
    "licence_valid_until",
    "legacy_number",
    "legacy_ref",
    "billing_number",
]


def _filters(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _source(args: argparse.Namespace) -> str:
    """A hospital asks on its own subject and sees only its own rows; anyone else asks as an operator."""
    return f"hospital/{args.hospital}" if getattr(args, "hospital", None) else "fod"


def _summary(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, dict | list))


# clients of the running service


def cmd_devices_list(args: argparse.Namespace) -> int:
    filters = _filters(
        args,
        [
            "institution",
            "modality",
            "province",
            "status",
            "campus",
            "sort",
            "limit",
            "offset",
            "as_of",
            "in_force_on",
        ],
    )

    async def work(client: Any) -> int:
        answer = await client.query("devices", filters)
        emit(args, answer, DEVICE_COLUMNS)
        if not args.json and answer["items"]:
            first = answer["offset"] + 1
            print(f"\n{first}-{answer['offset'] + len(answer['items'])} of {answer['total']} devices")
        return 0

    return run_client(args, _source(args), work)


def cmd_device(args: argparse.Namespace) -> int:
    async def work(client: Any) -> int:
        device = await client.query(
            "device", {"mid_id": args.mid_id, **_filters(args, ["as_of", "in_force_on"])}
        )
        if args.json:
            print(json.dumps(device, indent=2))
            return 0
        width = max(len(f) for f in DEVICE_FIELDS)
        for field in DEVICE_FIELDS:
            if device.get(field) is not None:
                print(f"{field.ljust(width)}  {device[field]}")
        print("\nwho said what:")
        said = [{"field": field, **source} for field, source in device["provenance"].items()]
        print_table(said, ["field", "source", "command_id", "at"])
        if device["licences"]:
            print("\nFANC licences:")
            print_table(
                device["licences"], ["licence_ref", "valid_from", "valid_until", "legacy_number", "source"]
            )
        if device["discrepancies"]:
            print("\nopen discrepancies:")
            rows = [{**d, "detail": _summary(d["detail"])} for d in device["discrepancies"]]
            print_table(rows, ["kind", "field", "since", "detail"])
        return 0

    return run_client(args, _source(args), work)


def cmd_history(args: argparse.Namespace) -> int:
    filters = _filters(args, ["mid_id", "limit", "offset", "as_of"])
    if args.round:
        filters["round_id"] = args.round
    if args.institution:
        filters["institution"] = args.institution
    if not {"mid_id", "round_id", "institution"} & set(filters):
        print("kadaster: name a MID-ID, --round ID or --institution ID", file=sys.stderr)
        return 2

    async def work(client: Any) -> int:
        answer = await client.query("history", filters)
        emit(args, answer, HISTORY_COLUMNS)
        return 0

    return run_client(args, _source(args), work)


def cmd_discrepancies(args: argparse.Namespace) -> int:
    filters = _filters(args, ["institution", "kind", "status", "today", "mid_id", "limit", "offset", "as_of"])

    async def work(client: Any) -> int:
        answer = await client.query("discrepancies", filters)
        if args.json:
            print(json.dumps(answer, indent=2))
            return 0
        print_table([{**d, "detail": _summary(d["detail"])} for d in answer["items"]], DISCREPANCY_COLUMNS)
        print(f"\n{answer['status']} on {answer['today']}")
        return 0

    return run_client(args, _source(args), work)


def cmd_capacity(args: argparse.Namespace) -> int:
    filters = _filters(args, ["modality", "province", "as_of"])

    async def work(client: Any) -> int:
        emit(args, await client.query("capacity", filters), CAPACITY_COLUMNS)
        return 0

    return run_client(args, _source(args), work)
