"""A programme's running count of filled places per care region: baselines, grants and corrections."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.allocation_policies import CARE_REGIONS
from domain.errors import DomainError
from domain.identifiers import stable_id


def care_capacity_id(programme: str) -> UUID:
    return stable_id("capacity", programme)


class CareCapacity(Aggregate):
    """What each region has filled (recognised, in review, or granted in an earlier trimester).

    A care-region round's decision reads these figures, so places granted in one trimester
    and corrections made before a ranking count in that ranking, and each change keeps its
    own event with who made it and why.
    """

    @staticmethod
    def create_id(programme: str) -> UUID:
        return care_capacity_id(programme)

    @event("Started")
    def __init__(self, programme: str, source: str, command_id: str) -> None:
        self.programme = programme
        self.filled: dict[str, int] = {}

    @classmethod
    def start(cls, programme: str, source: str, command_id: str) -> CareCapacity:
        if programme != CARE_REGIONS:
            raise DomainError(
                "schema",
                f"only the {CARE_REGIONS} programme keeps a running count of places; an nmr round's "
                "recognised devices are given per province when it opens",
                "data.programme",
            )
        return cls(programme=programme, source=source, command_id=command_id)

    # guards

    def check_known(self, region: str, field: str = "data.region") -> int:
        if region not in self.filled:
            raise DomainError(
                "conflict",
                f"no filled figure is known for care region {region!r} yet: the opening of a round gives "
                "each region's starting figure (regions[].filled)",
                field,
            )
        return self.filled[region]

    def check_baseline(self, region: str, filled: int, field: str) -> None:
        known = self.filled.get(region)
        if known is not None and known != filled:
            raise DomainError(
                "conflict",
                f"care region {region!r} has {known} places filled in the register (starting figure, grants "
                f"and corrections), not {filled}: leave `filled` out to use the register's figure",
                field,
            )

    # commands

    def record_baseline(
        self, region: str, filled: int, round_id: str, field: str, source: str, command_id: str
    ) -> bool:
        """Sets a region's starting figure; False when the register already had that very figure."""
        self.check_baseline(region, filled, field)
        if region in self.filled:
            return False
        self._record_baseline(
            region=region, filled=filled, round_id=round_id, source=source, command_id=command_id
        )
        return True

    @event("BaselineRecorded")
    def _record_baseline(self, region: str, filled: int, round_id: str, source: str, command_id: str) -> None:
        self.filled = {**self.filled, region: filled}

    def correct(self, region: str, delta: int, reason: str, source: str, command_id: str) -> int:
        current = self.check_known(region)
        if current + delta < 0:
            raise DomainError(
                "conflict",
                f"care region {region!r} has {current} places filled; "
                f"a correction of {delta} would make it negative",
                "data.delta",
            )
        self._correct(
            region=region,
            delta=delta,
            reason=reason,
            filled=current + delta,
            source=source,
            command_id=command_id,
        )
        return self.filled[region]

    @event("Corrected")
    def _correct(
        self, region: str, delta: int, reason: str, filled: int, source: str, command_id: str
    ) -> None:
        self.filled = {**self.filled, region: filled}

    def grant_places(
        self, region: str, units: int, round_id: str, institution: str | None, source: str, command_id: str
    ) -> int:
        current = self.check_known(region)
        self._grant_places(
            region=region,
            units=units,
            round_id=round_id,
            institution=institution,
            filled=current + units,
            source=source,
            command_id=command_id,
        )
        return self.filled[region]

    @event("PlacesGranted")
    def _grant_places(
        self,
        region: str,
        units: int,
        round_id: str,
        institution: str | None,
        filled: int,
        source: str,
        command_id: str,
    ) -> None:
        self.filled = {**self.filled, region: filled}
