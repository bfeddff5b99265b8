"""A device's events with the fields `Device` records them with, and the life stage they make."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

ANNOUNCED = "announced"
REPORTED = "reported"
LINKED = "linked"
DECOMMISSIONED = "decommissioned"

STATUSES = (ANNOUNCED, REPORTED, LINKED, DECOMMISSIONED)


def device_status(*, reported: bool, linked: bool, decommissioned: bool) -> str:
    """Where a device is in its life: the latest step it took counts."""
    if decommissioned:
        return DECOMMISSIONED
    if linked:
        return LINKED
    if reported:
        return REPORTED
    return ANNOUNCED


class Opened(Aggregate.Created):
    mid_id: str
    institution: str
    modality: str
    source: str
    command_id: str


class Reported(Aggregate.Event):
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    installed_on: date
    use: str
    restated: bool
    source: str
    command_id: str


class Backfilled(Aggregate.Event):
    legacy_ref: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    installed_on: date
    use: str
    registered_on: date
    registered_before_midid: bool
    source: str
    command_id: str


class Changed(Aggregate.Event):
    changes: dict[str, Any]
    effective_on: date
    source: str
    command_id: str


class Corrected(Aggregate.Event):
    corrections: dict[str, Any]
    reason: str
    source: str
    command_id: str


class Decommissioned(Aggregate.Event):
    effective_on: date
    reason: str
    source: str
    command_id: str


class InstallationRecorded(Aggregate.Event):
    supplier: str
    institution: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    installed_on: date
    source: str
    command_id: str


class DiscrepancyRecorded(Aggregate.Event):
    field: str
    reported_value: str
    reported_source: str
    supplier_value: str
    supplier_source: str
    source: str
    command_id: str


class DiscrepancyResolved(Aggregate.Event):
    field: str
    value: str
    source: str
    command_id: str


class Linked(Aggregate.Event):
    mid_id: str
    source: str
    command_id: str


class LicenceRecorded(Aggregate.Event):
    licence_ref: str
    valid_from: date
    valid_until: date | None
    legacy_number: str | None
    source: str
    command_id: str


class LegacyNumberMapped(Aggregate.Event):
    legacy_number: str
    source: str
    command_id: str


class TransferReceived(Aggregate.Event):
    period: str
    received_on: date
    legacy_number: str | None
    source: str
    command_id: str


class BillingNumberAssigned(Aggregate.Event):
    billing_number: str
    source: str
    command_id: str


class BillingNumberWithdrawn(Aggregate.Event):
    billing_number: str
    reason: str
    effective_on: date | None
    source: str
    command_id: str
