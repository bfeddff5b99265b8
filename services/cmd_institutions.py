"""The FOD's reference data on institutions: register one, update what changes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from domain.errors import DomainError
from domain.identifiers import PARTY_PATTERN
from domain.institution import Institution, institution_id
from domain.reference import province_named, region_named
from services.commands import Cause, CommandData, Result, command
from services.unit_of_work import UnitOfWork


def _region(value: Any) -> Any:
    """A region by any of its names (Vlaanderen, Wallonie); what is none stays for the schema to refuse."""
    if not isinstance(value, str):
        return value
    return region_named(value) or value.strip().lower()


def _province(value: Any) -> Any:
    """A province under its Dutch name when it is one of Belgium's (Anvers is Antwerpen)."""
    return (province_named(value) or value) if isinstance(value, str) else value


Party = Annotated[str, Field(pattern=PARTY_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Region = Annotated[Literal["flemish", "brussels", "wallonia"], BeforeValidator(_region)]
Province = Annotated[Text, BeforeValidator(_province)]
Campuses = Annotated[list[Text], Field(max_length=200)]


class RegisterInstitution(CommandData):
    institution: Party
    name: Text
    province: Province
    region: Region
    campuses: Campuses = Field(default_factory=list)


class UpdateInstitution(CommandData):
    institution: Party
    name: Text | None = None
    province: Province | None = None
    region: Region | None = None
    campuses: Campuses | None = None

    @model_validator(mode="after")
    def _names_a_change(self) -> UpdateInstitution:
        changed = self.model_fields_set - {"institution"}
        if not changed:
            raise ValueError("name at least one field that changes")
        emptied = sorted(key for key in changed if getattr(self, key) is None)
        if emptied:
            raise ValueError(f"{', '.join(emptied)} cannot be emptied")
        return self

    def changes(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in sorted(self.model_fields_set - {"institution"})}


def institution_result(institution: Institution, **extra: Any) -> Result:
    return {"institution": institution.institution, **institution.facts, **extra}


@command("institution.register", RegisterInstitution, {"fod"}, "Register an institution the kadaster knows")
def register(uow: UnitOfWork, data: RegisterInstitution, cause: Cause) -> Result:
    known = uow.get(Institution, institution_id(data.institution))
    if known is not None:
        known.check_registered_as(
            {"name": data.name, "province": data.province, "region": data.region, "campuses": data.campuses}
        )
        return institution_result(known, unchanged=True)
    institution = Institution.register(
        data.institution, data.name, data.province, data.region, list(data.campuses), **cause.provenance
    )
    uow.add(institution)
    return institution_result(institution, unchanged=False)


@command("institution.update", UpdateInstitution, {"fod"}, "Update what changes about an institution")
def update(uow: UnitOfWork, data: UpdateInstitution, cause: Cause) -> Result:
    institution = uow.get(Institution, institution_id(data.institution))
    if institution is None:
        # The contract has no institution_unknown code; the update conflicts with the register's state.
        raise DomainError("conflict", f"institution {data.institution} is not registered", "data.institution")
    changed = institution.update(data.changes(), **cause.provenance)
    return institution_result(institution, changed=changed)
