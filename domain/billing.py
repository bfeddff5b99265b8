"""RIZIV billing numbers: each one sits on at most one device at a time."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import stable_id


def normalise_billing_number(billing_number: str) -> str:
    return "".join(billing_number.split()).upper()


def billing_number_id(billing_number: str) -> UUID:
    return stable_id("billing-number", normalise_billing_number(billing_number))


class BillingNumber(Aggregate):
    """A billing number and the MID-ID of the device it is on, if any.

    Keyed by the number itself, so two commands giving it to two devices write the same
    aggregate version and the event store lets only one of them through.
    """

    @staticmethod
    def create_id(billing_number: str) -> UUID:
        return billing_number_id(billing_number)

    @event("Assigned")
    def __init__(self, billing_number: str, mid_id: str, source: str, command_id: str) -> None:
        self.billing_number = billing_number
        self.mid_id: str | None = mid_id

    @classmethod
    def assign(cls, billing_number: str, mid_id: str, source: str, command_id: str) -> BillingNumber:
        return cls(
            billing_number=normalise_billing_number(billing_number),
            mid_id=mid_id,
            source=source,
            command_id=command_id,
        )

    def check_free_for(self, mid_id: str, field: str = "data.billing_number") -> None:
        if self.mid_id is not None and self.mid_id != mid_id:
            raise DomainError(
                "conflict",
                f"billing number {self.billing_number} is on the device of {self.mid_id}",
                field,
            )

    def reassign(self, mid_id: str, source: str, command_id: str) -> bool:
        """Puts a released number on a device; False when it already is on that device."""
        self.check_free_for(mid_id)
        if self.mid_id == mid_id:
            return False
        self._reassign(mid_id=mid_id, source=source, command_id=command_id)
        return True

    @event("Reassigned")
    def _reassign(self, mid_id: str, source: str, command_id: str) -> None:
        self.mid_id = mid_id

    def release(self, reason: str, source: str, command_id: str) -> None:
        if self.mid_id is None:
            return
        self._release(mid_id=self.mid_id, reason=reason, source=source, command_id=command_id)

    @event("Released")
    def _release(self, mid_id: str, reason: str, source: str, command_id: str) -> None:
        self.mid_id = None
