"""The MID-ID aggregate: issued to one hospital for one modality, linked once, or cancelled."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import MIDID_MAX_SEQUENCE, MidId, Modality, stable_id

ISSUED = "issued"
LINKED = "linked"
CANCELLED = "cancelled"

SEQUENCE_ID = stable_id("mid-id-sequence", "kadaster")


def numbers_left_after(sequence: int) -> int:
    """MID-IDs still available once `sequence` has been handed out (0 when the format is exhausted)."""
    return MIDID_MAX_SEQUENCE - sequence


class MidIdSequence(Aggregate):
    """Hands out MID-ID sequence numbers; its version is the last number taken.

    Two processes taking the same number write the same aggregate version, which the event
    store refuses, so a number is never given twice; numbers of a transaction that never
    committed were never handed out, so nothing is reused either.
    """

    @staticmethod
    def create_id() -> UUID:
        return SEQUENCE_ID

    @event("Started")
    def __init__(self) -> None:
        self.last_number = 0

    @property
    def numbers_left(self) -> int:
        """How many MID-IDs the 7-digit format still allows."""
        return numbers_left_after(self.last_number)

    def check_not_exhausted(self) -> None:
        if self.last_number >= MIDID_MAX_SEQUENCE:
            raise DomainError(
                "conflict",
                f"the MID-ID sequence is exhausted: {MidId(MIDID_MAX_SEQUENCE)} was the last number "
                "the contract's format (7 digits) allows",
            )

    def take_next(self, command_id: str) -> MidId:
        self.check_not_exhausted()
        self._take(number=self.last_number + 1, command_id=command_id)
        return MidId(self.last_number)

    @event("NumberTaken")
    def _take(self, number: int, command_id: str) -> None:
        self.last_number = number


class MidIdRecord(Aggregate):
    """The register's record of one MID-ID."""

    @staticmethod
    def create_id(mid_id: str) -> UUID:
        return MidId.parse(mid_id).aggregate_id

    class Issued(Aggregate.Created):
        mid_id: str
        sequence: int
        institution: str
        modality: str
        note: str | None
        source: str
        command_id: str
        legacy_ref: str | None = None

    class Cancelled(Aggregate.Event):
        reason: str
        source: str
        command_id: str

    class Linked(Aggregate.Event):
        device_id: UUID
        source: str
        command_id: str

    @event(Issued)
    def __init__(
        self,
        mid_id: str,
        sequence: int,
        institution: str,
        modality: str,
        note: str | None,
        source: str,
        command_id: str,
        legacy_ref: str | None = None,
    ) -> None:
        self.mid_id = mid_id
        self.sequence = sequence
        self.institution = institution
        self.modality = modality
        self.note = note
        self.legacy_ref = legacy_ref
        self.status = ISSUED
        self.device_id: UUID | None = None
        self.cancel_reason: str | None = None

    @classmethod
    def issue(
        cls,
        number: MidId,
        institution: str,
        modality: Modality,
        note: str | None,
        source: str,
        command_id: str,
    ) -> MidIdRecord:
        return cls(
            mid_id=str(number),
            sequence=number.sequence,
            institution=institution,
            modality=modality.value,
            note=note,
            source=source,
            command_id=command_id,
        )

    @classmethod
    def backfill(
        cls,
        number: MidId,
        institution: str,
        modality: Modality,
        legacy_ref: str,
        source: str,
        command_id: str,
    ) -> MidIdRecord:
        """Issued by the FOD itself to a device the kadaster knew before MID-IDs existed."""
        return cls(
            mid_id=str(number),
            sequence=number.sequence,
            institution=institution,
            modality=modality.value,
            note=None,
            legacy_ref=legacy_ref,
            source=source,
            command_id=command_id,
        )

    # guards

    def check_held_by(self, institution: str, field: str = "data.mid_id") -> None:
        if self.institution != institution:
            raise DomainError(
                "midid_not_yours",
                f"{self.mid_id} was issued to another institution, not to {institution}",
                field,
            )

    def check_not_cancelled(self, field: str = "data.mid_id") -> None:
        if self.status == CANCELLED:
            raise DomainError("midid_cancelled", f"{self.mid_id} was cancelled", field)

    def check_modality(self, modality: Modality, field: str = "data.modality") -> None:
        if self.modality != modality.value:
            raise DomainError(
                "conflict",
                f"{self.mid_id} was issued for {self.modality}, not for {modality.value}",
                field,
            )

    def check_linkable_to(self, device_id: UUID, field: str = "data.mid_id") -> None:
        self.check_not_cancelled(field)
        if self.status == LINKED and self.device_id != device_id:
            raise DomainError(
                "midid_already_linked",
                f"{self.mid_id} is linked to another device for good",
                field,
            )

    # commands

    def cancel(self, institution: str, reason: str, source: str, command_id: str) -> None:
        self.check_held_by(institution)
        self.check_not_cancelled()
        if self.status == LINKED:
            raise DomainError(
                "midid_already_linked",
                f"{self.mid_id} is linked to a device and can no longer be cancelled",
                "data.mid_id",
            )
        self._cancel(reason=reason, source=source, command_id=command_id)

    @event(Cancelled)
    def _cancel(self, reason: str, source: str, command_id: str) -> None:
        self.status = CANCELLED
        self.cancel_reason = reason

    def link(self, device_id: UUID, source: str, command_id: str) -> bool:
        """Links the MID-ID to its device; False when it already was (nothing to record)."""
        self.check_linkable_to(device_id)
        if self.status == LINKED:
            return False
        self._link(device_id=device_id, source=source, command_id=command_id)
        return True

    @event(Linked)
    def _link(self, device_id: UUID, source: str, command_id: str) -> None:
        self.status = LINKED
        self.device_id = device_id


def legacy_ref_id(institution: str, legacy_ref: str) -> UUID:
    return stable_id("legacy-ref", f"{institution}\x1f{legacy_ref}")


class LegacyRef(Aggregate):
    """The FOD's pre-MID-ID reference of a device, so that backfilling it twice issues one MID-ID."""

    @staticmethod
    def create_id(institution: str, legacy_ref: str) -> UUID:
        return legacy_ref_id(institution, legacy_ref)

    @event("Assigned")
    def __init__(self, institution: str, legacy_ref: str, mid_id: str, source: str, command_id: str) -> None:
        self.institution = institution
        self.legacy_ref = legacy_ref
        self.mid_id = mid_id
