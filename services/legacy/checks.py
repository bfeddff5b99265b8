"""What no single cell shows: a row's values against each other, and rows against the rest of the file."""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from domain.fanc import MIDID_IN_FORCE
from domain.identifiers import Modality, SerialNumber
from domain.reference import vocabulary_key
from services.legacy.rows import LegacyDevice

Finding = tuple[str, str, str]
"""(column's field, reason, error code) of one problem."""


def row_findings(
    *,
    modality: str | None,
    use: str | None,
    fanc_number: str | None,
    billing_number: str | None,
    out_of_service: bool | None,
    installed_on: date | None,
    decommissioned_on: date | None,
    registered_on: date | None,
) -> list[Finding]:
    """The rules one row's values must keep together; values a cell did not give are None."""
    found: list[Finding] = []
    if modality == Modality.MRI.value and fanc_number is not None:
        found.append(
            ("fanc_number", "an MRI emits no ionising radiation: it has no FANC number", "not_in_fanc_scope")
        )
    if use == "research" and billing_number is not None:
        found.append(
            (
                "billing_number",
                "a research-only device gets no billing number (only clinical or mixed use)",
                "requirements_not_met",
            )
        )
    if decommissioned_on is not None:
        if out_of_service is False:
            found.append(("decommissioned_on", "the status says the device is still in service", "schema"))
        if installed_on is not None and decommissioned_on < installed_on:
            found.append(
                ("decommissioned_on", f"before the installation date {installed_on.isoformat()}", "schema")
            )
    if registered_on is not None and registered_on >= MIDID_IN_FORCE:
        found.append(
            (
                "registered_on",
                f"registered on or after {MIDID_IN_FORCE.isoformat()}: such a device gets its MID-ID from "
                "its hospital (midid.issue), not from the backfill",
                "schema",
            )
        )
    if registered_on is None and installed_on is not None and installed_on >= MIDID_IN_FORCE:
        found.append(
            (
                "installed_on",
                f"installed on or after {MIDID_IN_FORCE.isoformat()} with no earlier registration date: "
                "such a device gets its MID-ID from its hospital (midid.issue), not from the backfill",
                "schema",
            )
        )
    return found


K = TypeVar("K")


def _first_row(rows: dict[K, int], key: K, row: int) -> int | None:
    """The earlier row that already had `key`, or None when `row` is the first (and is noted)."""
    earlier = rows.setdefault(key, row)
    return None if earlier == row else earlier


class FileChecks:
    """One row per label, serial number, FANC number, billing number; one name and place per institution."""

    def __init__(self) -> None:
        self.labels: dict[tuple[str, str], int] = {}
        self.serials: dict[tuple[str, SerialNumber], int] = {}
        self.fanc_numbers: dict[str, int] = {}
        self.billing_numbers: dict[str, int] = {}
        self.institutions: dict[str, dict[str, tuple[str, int]]] = {}

    def check(self, device: LegacyDevice) -> list[Finding]:
        """What this row, checked after the earlier ones, repeats of them."""
        found: list[Finding] = []
        if (earlier := _first_row(self.labels, device.key, device.row)) is not None:
            found.append(
                (
                    "label",
                    f"label {device.label} of {device.institution} is already used on row {earlier}",
                    "conflict",
                )
            )
        # Two makers may share a serial number.
        serial = (vocabulary_key(device.manufacturer), SerialNumber(device.serial_number))
        if (earlier := _first_row(self.serials, serial, device.row)) is not None:
            found.append(
                (
                    "serial_number",
                    f"{device.manufacturer} serial number {device.serial_number} is already on row {earlier}",
                    "conflict",
                )
            )
        if (
            device.fanc_number is not None
            and (earlier := _first_row(self.fanc_numbers, device.fanc_number, device.row)) is not None
        ):
            found.append(("fanc_number", f"FANC number already given to row {earlier}", "conflict"))
        # A billing number sits on one device at a time; a retired device's number is not recorded.
        if (
            device.billing_number is not None
            and not device.out_of_service
            and (earlier := _first_row(self.billing_numbers, device.billing_number, device.row)) is not None
        ):
            found.append(
                (
                    "billing_number",
                    f"billing number already on the device in service of row {earlier}",
                    "conflict",
                )
            )
        stated = self.institutions.setdefault(device.institution, {})
        for name in ("name", "province", "region"):
            value = getattr(device, name)
            if value is None:
                continue
            first = stated.setdefault(name, (value, device.row))
            if first[0] != value:
                found.append(
                    (name, f"row {first[1]} gives {device.institution} the {name} {first[0]!r}", "conflict")
                )
        return found
