"""The read side's parsers: `devices`, `device`, `history`, `discrepancies`, `capacity`, `projections`."""

from __future__ import annotations

import argparse

from adapters.cli.arguments.common import (
    as_of_option,
    client_options,
    hospital_option,
    in_force_on_option,
    page_options,
)
from domain.obligations import DEADLINES


def devices(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The kadaster view over NATS (query `devices`): one row per device with its MID-ID, "
        "institution, province, campus, modality, make, status, FANC licence and billing number, as the "
        "hospital stated it and the FOD linked or corrected it (a supplier's values only show as "
        "discrepancies)."
    )


def devices_list(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Lists devices. Filters combine (AND). `--sort` takes comma-separated columns, a leading "
        '- sorts descending, e.g. --sort=province,-installed_on (with "=" when it starts with -); ties '
        "keep MID-ID order."
    )
    p.add_argument("--institution", help="only this institution's devices")
    p.add_argument("--modality", help="CT, PET, PET-CT, PET-MRI, SPECT-CT or MRI")
    p.add_argument("--province", help="the institution's province, e.g. Antwerpen")
    p.add_argument("--status", choices=["announced", "reported", "linked", "decommissioned"])
    p.add_argument("--campus", help="the campus the device is on")
    p.add_argument("--sort", help="e.g. --sort=province,-installed_on (default mid_id)")
    page_options(p)
    hospital_option(p)
    as_of_option(p)
    in_force_on_option(p)
    client_options(p)


def device(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Shows one device: every field of the kadaster view, the source, command id and time "
        "behind each, its FANC licences and its open discrepancies."
    )
    p.add_argument("mid_id", help="the MID-ID, e.g. MID-0000001-95 (dashes and case do not matter)")
    hospital_option(p)
    as_of_option(p)
    in_force_on_option(p)
    client_options(p)


def history(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The audit history: each event recorded about a MID-ID and its device (or a round, or an "
        "institution) in the order it was recorded, with its source, command id, time of recording and the "
        "business date it refers to. --json adds each event's data."
    )
    p.add_argument("mid_id", nargs="?", help="a MID-ID")
    p.add_argument("--round", metavar="ID", help="an allocation round instead")
    p.add_argument(
        "--institution", metavar="ID", help="an institution instead (with a MID-ID or round: only its events)"
    )
    page_options(p)
    hospital_option(p)
    as_of_option(p)
    client_options(p)


def discrepancies(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Discrepancies as they stand on a day (default today): supplier and hospital disagree "
        "(statement_mismatch), announced but not reported (not_reported), "
        f"{DEADLINES}, billing number without FANC licence (billing_without_licence) or after "
        "decommissioning (billing_after_decommission), "
        "licence recorded under an old FANC number after the transition (legacy_number_after_transition)."
    )
    p.add_argument("--institution", help="only this institution's")
    p.add_argument("--kind", help="one kind (see above)")
    p.add_argument(
        "--status",
        choices=["open", "resolved", "pending", "all"],
        help="open (default), resolved, pending (not yet due) or all that came due",
    )
    p.add_argument("--today", help="judge deadlines on this day instead, e.g. 2025-01-31")
    p.add_argument("--mid-id", dest="mid_id", help="only this MID-ID's")
    page_options(p)
    hospital_option(p)
    as_of_option(p)
    client_options(p)


def capacity(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Devices in service (reported or linked, not decommissioned) per province and modality. "
        "Population comes from the latest nmr allocation round that gave it; without one, per_100k is empty."
    )
    p.add_argument("--modality", help="one modality: every known province, even with none")
    p.add_argument("--province", help="one province")
    hospital_option(p)
    as_of_option(p)
    client_options(p)


def projections(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Works on the configured databases directly (KADASTER_DATABASE_URL, "
        "KADASTER_READMODEL_URL), "
        "in this process; the service may keep running."
    )


def projections_rebuild(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Builds the read model again from the first event into shadow tables, then swaps them in "
        "one transaction; queries keep getting the old tables until then. Without NAME, every read model."
    )
    p.add_argument("name", nargs="?", help="one read model, e.g. kadaster_view (see `projections status`)")
    p.add_argument("--batch-size", type=int, default=500, help="events per transaction (default 500)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def projections_status(p: argparse.ArgumentParser) -> None:
    p.description = "Exit 1 when a read model was built by another version of its projection (rebuild it)."
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
