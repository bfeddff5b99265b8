"""FANC's side of the MID-ID: who is in its scope, and the old FANC unique numbers during the transition."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import Modality, stable_id

MIDID_IN_FORCE = date(2022, 10, 1)
"""Devices registered before this date had an old FANC unique number and may keep using it a while."""

LEGACY_NUMBERS_ACCEPTED_UNTIL = date(2023, 10, 1)
"""From this date on, transfers to FANC carry the MID-ID only."""


def normalise_legacy_number(legacy_number: str) -> str:
    return "".join(legacy_number.split()).upper()


def legacy_number_id(legacy_number: str) -> UUID:
    return stable_id("fanc-legacy-number", normalise_legacy_number(legacy_number))


def check_in_fanc_scope(mid_id: str, modality: str, field: str = "data.mid_id") -> None:
    if not Modality(modality).is_ionising:
        raise DomainError(
            "not_in_fanc_scope",
            f"{mid_id} is an {modality}, which emits no ionising radiation: FANC rules do not apply",
            field,
        )


def check_legacy_number_accepted(
    legacy_number: str, received_on: date, registered_before_midid: bool, field: str = "data.identifier"
) -> None:
    if received_on >= LEGACY_NUMBERS_ACCEPTED_UNTIL:
        raise DomainError(
            "legacy_number_expired",
            f"old FANC number {legacy_number} is no longer accepted: since "
            f"{LEGACY_NUMBERS_ACCEPTED_UNTIL.isoformat()} transfers carry the MID-ID",
            field,
        )
    if not registered_before_midid:
        raise DomainError(
            "legacy_number_expired",
            f"old FANC number {legacy_number} belongs to a device registered after "
            f"{MIDID_IN_FORCE.isoformat()}: its transfers carry the MID-ID only",
            field,
        )


class LegacyFancNumber(Aggregate):
    """An old FANC unique number, mapped to the one MID-ID that replaces it."""

    @staticmethod
    def create_id(legacy_number: str) -> UUID:
        return legacy_number_id(legacy_number)

    @event("Mapped")
    def __init__(self, legacy_number: str, mid_id: str, source: str, command_id: str) -> None:
        self.legacy_number = legacy_number
        self.mid_id = mid_id

    @classmethod
    def map(cls, legacy_number: str, mid_id: str, source: str, command_id: str) -> LegacyFancNumber:
        return cls(
            legacy_number=normalise_legacy_number(legacy_number),
            mid_id=mid_id,
            source=source,
            command_id=command_id,
        )

    def check_maps_to(self, mid_id: str, field: str = "data.legacy_number") -> None:
        if self.mid_id != mid_id:
            raise DomainError(
                "conflict",
                f"old FANC number {self.legacy_number} is already mapped to {self.mid_id}",
                field,
            )
