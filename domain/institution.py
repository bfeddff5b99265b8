"""Institutions (hospitals and their campuses) as the FOD keeps them: reference data of the kadaster."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import stable_id
from domain.reference import REGIONS

UPDATABLE_FIELDS = ("name", "province", "region", "campuses")


def institution_id(institution: str) -> UUID:
    return stable_id("institution", institution)


def check_region(region: str, field: str = "data.region") -> None:
    if region not in REGIONS:
        raise DomainError("schema", f"{region!r} is not a region ({', '.join(REGIONS)})", field)


class Institution(Aggregate):
    """One institution the register knows, under the identifier its hospital sources use."""

    @staticmethod
    def create_id(institution: str) -> UUID:
        return institution_id(institution)

    class Registered(Aggregate.Created):
        institution: str
        name: str
        province: str
        region: str
        campuses: list[str]
        source: str
        command_id: str

    class Updated(Aggregate.Event):
        changes: dict[str, Any]
        source: str
        command_id: str

    @event(Registered)
    def __init__(
        self,
        institution: str,
        name: str,
        province: str,
        region: str,
        campuses: list[str],
        source: str,
        command_id: str,
    ) -> None:
        self.institution = institution
        self.name = name
        self.province = province
        self.region = region
        self.campuses = list(campuses)

    @classmethod
    def register(
        cls,
        institution: str,
        name: str,
        province: str,
        region: str,
        campuses: list[str],
        source: str,
        command_id: str,
    ) -> Institution:
        check_region(region)
        return cls(
            institution=institution,
            name=name,
            province=province,
            region=region,
            campuses=list(campuses),
            source=source,
            command_id=command_id,
        )

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "province": self.province,
            "region": self.region,
            "campuses": list(self.campuses),
        }

    # guards

    def check_registered_as(self, facts: dict[str, Any], field: str = "data.institution") -> None:
        """Registering again is harmless when it says the same; otherwise it needs an update."""
        if facts != self.facts:
            raise DomainError(
                "conflict",
                f"institution {self.institution} is already registered differently; send institution.update",
                field,
            )

    # commands

    def update(self, changes: dict[str, Any], source: str, command_id: str) -> list[str]:
        """Records the fields that really change; returns their names (none: nothing recorded)."""
        for key in changes:
            if key not in UPDATABLE_FIELDS:
                raise DomainError("schema", f"{key!r} cannot be updated", f"data.{key}")
        if "region" in changes:
            check_region(changes["region"])
        delta = {key: value for key, value in changes.items() if self.facts[key] != value}
        if delta:
            self._update(changes=delta, source=source, command_id=command_id)
        return sorted(delta)

    @event(Updated)
    def _update(self, changes: dict[str, Any], source: str, command_id: str) -> None:
        for key, value in changes.items():
            setattr(self, key, list(value) if key == "campuses" else value)
