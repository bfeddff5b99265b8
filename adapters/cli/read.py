"""`kadaster devices|device|history|discrepancies|capacity|projections`: the read side from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from adapters.bootstrap import open_projector_for_maintenance
from adapters.cli.common import add_client_options, emit, print_table, run_client, settings_or_exit
from adapters.cli.progress import ProgressBar
from adapters.logging import configure_logging
from domain.obligations import DEADLINES
from projections.projector import Projector
from projections.rebuild import rebuild, status
from projections.store import ReadModelStore
from services.register import Register

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
STATUS_COLUMNS = ["name", "version", "code_version", "position", "head", "lag", "state"]

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


# the read models themselves, in this process


def _open_projector() -> tuple[Register, ReadModelStore, Projector]:
    return open_projector_for_maintenance(settings_or_exit())


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    register, store, projector = _open_projector()
    try:
        names = [args.name] if args.name else [p.name for p in projector.projections]
        unknown = [name for name in names if name not in {p.name for p in projector.projections}]
        if unknown:
            known = ", ".join(p.name for p in projector.projections)
            print(f"kadaster: no read model named {unknown[0]!r} (known: {known})", file=sys.stderr)
            return 2
        results = []
        for name in names:
            bar = ProgressBar(name)
            try:
                results.append(rebuild(projector, name, progress=bar, batch_size=args.batch_size).as_dict())
            finally:
                bar.close()
            if not args.json:
                done = results[-1]
                print(
                    f"{name}: rebuilt from {done['events']:,} events up to position {done['position']:,} "
                    f"in {done['seconds']:.1f}s"
                )
        if args.json:
            print(json.dumps(results, indent=2))
        return 0
    finally:
        store.close()
        register.close()


def cmd_projections_status(args: argparse.Namespace) -> int:
    register, store, projector = _open_projector()
    try:
        items = status(projector)
    finally:
        store.close()
        register.close()
    emit(args, {"items": items}, STATUS_COLUMNS)
    return 0 if all(item["state"] != "outdated" for item in items) else 1


# the parser


def _hospital_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hospital", help="ask as this hospital (institution id): only its own rows are answered")


def as_of_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as-of",
        metavar="T",
        help="what the register said at this moment (ISO 8601, UTC unless a zone is given; "
        "a bare date is the end of that day): every store transaction recorded by then, none after",
    )


def in_force_on_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--in-force-on",
        metavar="DAY",
        help="each device as in force on this business date (YYYY-MM-DD): changes and "
        "decommissionings dated later do not show yet (default: today, or the --as-of day)",
    )


def _page_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, help="rows per page, 1..1000 (default 100)")
    p.add_argument("--offset", type=int, help="rows to skip (default 0)")


def add_read_commands(sub: Any) -> None:
    """Adds the kadaster view, device, history, discrepancy, capacity and read-model commands."""
    devices = sub.add_parser(
        "devices",
        help="the kadaster view: every device as the register shows it",
        description="The kadaster view over NATS (query `devices`): one row per device with its MID-ID, "
        "institution, province, campus, modality, make, status, FANC licence and billing number, as the "
        "hospital stated it and the FOD linked or corrected it (a supplier's values only show as "
        "discrepancies).",
    )
    actions = devices.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="list devices, filtered and sorted, a page at a time",
        description="Lists devices. Filters combine (AND). `--sort` takes comma-separated columns, a leading "
        '- sorts descending, e.g. --sort=province,-installed_on (with "=" when it starts with -); ties '
        "keep MID-ID order.",
    )
    listing.add_argument("--institution", help="only this institution's devices")
    listing.add_argument("--modality", help="CT, PET, PET-CT, PET-MRI, SPECT-CT or MRI")
    listing.add_argument("--province", help="the institution's province, e.g. Antwerpen")
    listing.add_argument("--status", choices=["announced", "reported", "linked", "decommissioned"])
    listing.add_argument("--campus", help="the campus the device is on")
    listing.add_argument("--sort", help="e.g. --sort=province,-installed_on (default mid_id)")
    _page_options(listing)
    _hospital_option(listing)
    as_of_option(listing)
    in_force_on_option(listing)
    add_client_options(listing)
    listing.set_defaults(func=cmd_devices_list)

    device = sub.add_parser(
        "device",
        help="one device by MID-ID, with who said each field and when",
        description="Shows one device: every field of the kadaster view, the source, command id and time "
        "behind each, its FANC licences and its open discrepancies.",
    )
    device.add_argument("mid_id", help="the MID-ID, e.g. MID-0000001-95 (dashes and case do not matter)")
    _hospital_option(device)
    as_of_option(device)
    in_force_on_option(device)
    add_client_options(device)
    device.set_defaults(func=cmd_device)

    history = sub.add_parser(
        "history",
        help="every event about a MID-ID, a round or an institution, in order",
        description="The audit history: each event recorded about a MID-ID and its device (or a round, or an "
        "institution) in the order it was recorded, with its source, command id, time of recording and the "
        "business date it refers to. --json adds each event's data.",
    )
    history.add_argument("mid_id", nargs="?", help="a MID-ID")
    history.add_argument("--round", metavar="ID", help="an allocation round instead")
    history.add_argument(
        "--institution", metavar="ID", help="an institution instead (with a MID-ID or round: only its events)"
    )
    _page_options(history)
    _hospital_option(history)
    as_of_option(history)
    add_client_options(history)
    history.set_defaults(func=cmd_history)

    discrepancies = sub.add_parser(
        "discrepancies",
        help="where sources disagree, deadlines passed or numbers were misused",
        description="Discrepancies as they stand on a day (default today): supplier and hospital disagree "
        "(statement_mismatch), announced but not reported (not_reported), "
        f"{DEADLINES}, billing number without FANC licence (billing_without_licence) or after "
        "decommissioning (billing_after_decommission), "
        "licence recorded under an old FANC number after the transition (legacy_number_after_transition).",
    )
    discrepancies.add_argument("--institution", help="only this institution's")
    discrepancies.add_argument("--kind", help="one kind (see above)")
    discrepancies.add_argument(
        "--status",
        choices=["open", "resolved", "pending", "all"],
        help="open (default), resolved, pending (not yet due) or all that came due",
    )
    discrepancies.add_argument("--today", help="judge deadlines on this day instead, e.g. 2025-01-31")
    discrepancies.add_argument("--mid-id", dest="mid_id", help="only this MID-ID's")
    _page_options(discrepancies)
    _hospital_option(discrepancies)
    as_of_option(discrepancies)
    add_client_options(discrepancies)
    discrepancies.set_defaults(func=cmd_discrepancies)

    capacity = sub.add_parser(
        "capacity",
        help="devices in service per province and modality, per 100,000 inhabitants",
        description="Devices in service (reported or linked, not decommissioned) per province and modality. "
        "Population comes from the latest nmr allocation round that gave it; without one, per_100k is empty.",
    )
    capacity.add_argument("--modality", help="one modality: every known province, even with none")
    capacity.add_argument("--province", help="one province")
    _hospital_option(capacity)
    as_of_option(capacity)
    add_client_options(capacity)
    capacity.set_defaults(func=cmd_capacity)

    projections = sub.add_parser(
        "projections",
        help="the read models: rebuild one from the first event, or show where each stands",
        description="Works on the configured databases directly (KADASTER_DATABASE_URL, "
        "KADASTER_READMODEL_URL), "
        "in this process; the service may keep running.",
    )
    read_models = projections.add_subparsers(dest="projections_command", required=True, metavar="ACTION")
    rebuild = read_models.add_parser(
        "rebuild",
        help="rebuild read models from position 0 while the service keeps answering",
        description="Builds the read model again from the first event into shadow tables, then swaps them in "
        "one transaction; queries keep getting the old tables until then. Without NAME, every read model.",
    )
    rebuild.add_argument(
        "name", nargs="?", help="one read model, e.g. kadaster_view (see `projections status`)"
    )
    rebuild.add_argument("--batch-size", type=int, default=500, help="events per transaction (default 500)")
    rebuild.add_argument("--json", action="store_true", help="print JSON for scripts")
    rebuild.set_defaults(func=cmd_projections_rebuild)
    status = read_models.add_parser(
        "status",
        help="each read model's position, version and lag behind the event store",
        description="Exit 1 when a read model was built by another version of its projection (rebuild it).",
    )
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.set_defaults(func=cmd_projections_status)


def main(argv: Sequence[str] | None = None) -> int:
    """These commands alone, e.g. `python -m adapters.cli.read devices list`."""

    parser = argparse.ArgumentParser(prog="kadaster", description=__doc__)
    add_read_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    configure_logging("auto", "warning")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
