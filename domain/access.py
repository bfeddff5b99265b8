"""People and access: which roles a person holds for a party, who granted them, and the grant rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import AUTHORITIES, Source, stable_id

HOSPITAL_ROLES = ("local-admin", "requester", "reporter", "viewer")
WHOLE_REGISTER = "*"
"""The party of an auditor: no party, the whole register."""


@dataclass(frozen=True)
class Role:
    name: str
    party_kinds: tuple[str, ...]
    sends: tuple[str, ...]
    """Command types a person holding the role may send for the party; `*`: all of the party's."""


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            "local-admin",
            ("hospital",),
            ("access.grant", "access.revoke", "round.apply", "round.withdraw", "round.object"),
        ),
        Role("requester", ("hospital",), ("midid.issue", "midid.cancel")),
        Role("reporter", ("hospital",), ("device.report", "device.change", "device.decommission")),
        Role("viewer", ("hospital",), ()),
        Role("operator", (*AUTHORITIES, "supplier"), ("*",)),
        Role("admin", ("fod",), ("access.grant", "access.revoke")),
        Role("auditor", (WHOLE_REGISTER,), ()),
    )
}
GRANTED_BY_THE_FOD = ("local-admin", "operator", "admin", "auditor")
GRANTED_BY_A_HOSPITAL = ("requester", "reporter", "viewer")


def access_id(person: str, party: str) -> UUID:
    return stable_id("access", f"{person}\x1f{party}")


def party_kind(party: str) -> str:
    return WHOLE_REGISTER if party == WHOLE_REGISTER else Source.parse(party, "data.party").kind


def check_role_fits_party(role: str, party: str) -> None:
    known = ROLES.get(role)
    if known is None:
        raise DomainError("schema", f"{role!r} is not a role ({', '.join(ROLES)})", "data.role")
    if party_kind(party) not in known.party_kinds:
        of = " or ".join("no party (*)" if k == WHOLE_REGISTER else k for k in known.party_kinds)
        raise DomainError("schema", f"the role {role} is held for {of}, not for {party}", "data.party")


def check_may_grant(grantor: Source, role: str, party: str) -> None:
    """The FOD grants local-admins and the authorities' roles; a hospital its own people's other roles."""
    check_role_fits_party(role, party)
    if grantor.kind == "fod":
        if role not in GRANTED_BY_THE_FOD:
            raise DomainError(
                "forbidden", f"the {role} role is granted by the hospital's local administrator", "data.role"
            )
        return
    if grantor.kind != "hospital":
        raise DomainError("forbidden", f"{grantor} grants no roles", "source")
    if party != str(grantor):
        raise DomainError(
            "forbidden", f"{grantor} grants roles of its own people only, not {party}'s", "data.party"
        )
    if role not in GRANTED_BY_A_HOSPITAL:
        raise DomainError("forbidden", f"only the FOD grants the {role} role", "data.role")


class Access(Aggregate):
    """The roles one person holds for one party, each with its grantor and optional end date."""

    @staticmethod
    def create_id(person: str, party: str) -> UUID:
        return access_id(person, party)

    class Created(Aggregate.Created):
        person: str
        party: str

    class Granted(Aggregate.Event):
        name: str
        role: str
        until: date | None
        granted_by: str
        source: str
        command_id: str

    class Revoked(Aggregate.Event):
        role: str
        reason: str
        revoked_by: str
        source: str
        command_id: str

    @event(Created)
    def __init__(self, person: str, party: str) -> None:
        self.person = person
        self.party = party
        self.name = ""
        self.roles: dict[str, dict[str, Any]] = {}

    # guards

    def holds(self, role: str, on: date) -> bool:
        held = self.roles.get(role)
        return held is not None and (held["until"] is None or on <= held["until"])

    def check_holds(self, role: str, on: date) -> None:
        if not self.holds(role, on):
            raise DomainError("forbidden", f"{self.person} is not {role} of {self.party}", "person")

    def check_may_send(self, command_type: str, on: date) -> None:
        """A person known to the register sends only what a role in force lets them."""
        for name in self.roles:
            if self.holds(name, on) and {"*", command_type} & set(ROLES[name].sends):
                return
        raise DomainError(
            "forbidden", f"{self.person} holds no role of {self.party} that may send {command_type}", "person"
        )

    # commands

    def grant(
        self,
        name: str,
        role: str,
        until: date | None,
        granted_by: str,
        source: str,
        command_id: str,
    ) -> None:
        self._granted(
            name=name, role=role, until=until, granted_by=granted_by, source=source, command_id=command_id
        )

    @event(Granted)
    def _granted(
        self, name: str, role: str, until: date | None, granted_by: str, source: str, command_id: str
    ) -> None:
        self.name = name
        self.roles[role] = {"until": until, "granted_by": granted_by}

    def revoke(self, role: str, reason: str, revoked_by: str, source: str, command_id: str) -> None:
        if role not in self.roles:
            raise DomainError("conflict", f"{self.person} holds no {role} role of {self.party}", "data.role")
        self._revoked(role=role, reason=reason, revoked_by=revoked_by, source=source, command_id=command_id)

    @event(Revoked)
    def _revoked(self, role: str, reason: str, revoked_by: str, source: str, command_id: str) -> None:
        del self.roles[role]
