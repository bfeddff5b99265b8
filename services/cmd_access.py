"""People and access: grant a person a role for a party, revoke it; and a person's right to send a command."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import Field

from domain.access import WHOLE_REGISTER, Access, access_id, check_may_grant
from domain.errors import DomainError
from domain.identifiers import Source
from services.commands import Cause, CommandData, Result, command
from services.unit_of_work import UnitOfWork

Person = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f]+$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Party = Annotated[str, Field(min_length=1, max_length=200)]
RoleName = Annotated[str, Field(min_length=1, max_length=40)]


class GrantAccess(CommandData):
    person: Person
    name: Text
    party: Party
    role: RoleName
    until: date | None = None


class RevokeAccess(CommandData):
    person: Person
    party: Party
    role: RoleName
    reason: Text


def _day(cause: Cause) -> date:
    return (cause.received_at or datetime.now(UTC)).date()


def _granted_by(cause: Cause) -> str:
    return f"{cause.source}:{cause.person}" if cause.person else str(cause.source)


def _check_grantor(uow: UnitOfWork, cause: Cause) -> None:
    """A person granting speaks for their party only as its local-admin, or as the FOD's admin."""
    if cause.person is None:
        return  # the party's own system (its NATS credentials or an API token)
    needed = "admin" if cause.source.kind == "fod" else "local-admin"
    grantor = uow.get(Access, access_id(cause.person, str(cause.source)))
    if grantor is None:
        raise DomainError("forbidden", f"{cause.person} is not {needed} of {cause.source}", "person")
    grantor.check_holds(needed, _day(cause))


def _normalised_party(party: str) -> str:
    return party if party == WHOLE_REGISTER else str(Source.parse(party, "data.party"))


def access_result(access: Access, role: str) -> Result:
    held = access.roles.get(role)
    until = held["until"] if held else None
    return {
        "person": access.person,
        "party": access.party,
        "role": role,
        "held": held is not None,
        "until": until.isoformat() if until else None,
    }


def _grantable(uow: UnitOfWork, cause: Cause, role: str, party: str) -> str:
    """The normalised party, once the sender may grant or revoke `role` for it."""
    party = _normalised_party(party)
    check_may_grant(cause.source, role, party)
    _check_grantor(uow, cause)
    return party


@command("access.grant", GrantAccess, {"fod", "hospital"}, "Grant a person a role for a party")
def grant(uow: UnitOfWork, data: GrantAccess, cause: Cause) -> Result:
    party = _grantable(uow, cause, data.role, data.party)
    access = uow.get(Access, access_id(data.person, party))
    if access is None:
        access = Access(data.person, party)
        uow.add(access)
    access.grant(data.name, data.role, data.until, _granted_by(cause), **cause.provenance)
    return access_result(access, data.role)


@command("access.revoke", RevokeAccess, {"fod", "hospital"}, "Revoke a role a person holds for a party")
def revoke(uow: UnitOfWork, data: RevokeAccess, cause: Cause) -> Result:
    party = _grantable(uow, cause, data.role, data.party)
    access = uow.get(Access, access_id(data.person, party))
    if access is None:
        raise DomainError("conflict", f"{data.person} holds no role of {party}", "data.person")
    access.revoke(data.role, data.reason, _granted_by(cause), **cause.provenance)
    return access_result(access, data.role)


def check_person(uow: UnitOfWork, cause: Cause, command_type: str, known_only: bool) -> None:
    """Checks the person who entered a command against their roles on the day it was received.

    A person the register has never granted a role for this party is the party's own statement
    about its user (`known_only`, as over NATS); through the HTTP API every person must hold a role.
    Grants and revokes are judged by their own rules above.
    """
    if cause.person is None or command_type in ("access.grant", "access.revoke"):
        return
    access = uow.get(Access, access_id(cause.person, str(cause.source)))
    if access is None:
        if known_only:
            return
        raise DomainError("forbidden", f"{cause.person} holds no role of {cause.source}", "person")
    access.check_may_send(command_type, _day(cause))
