"""The access aggregate and the grant rules: given grants, when a command, then events or a domain error."""

from __future__ import annotations

from datetime import date

import pytest

from domain.access import Access, check_may_grant
from domain.errors import DomainError
from domain.identifiers import Source

H001, H002, FOD = Source.parse("hospital/H001"), Source.parse("hospital/H002"), Source.parse("fod")
TODAY = date(2026, 12, 6)


def granted(role: str, until: date | None = None) -> Access:
    access = Access("bert", "hospital/H001")
    access.grant("Bert", role, until, "hospital/H001:anna", "hospital/H001", "c1")
    return access


def codes(rule: object, *args: object) -> str:
    with pytest.raises(DomainError) as refused:
        rule(*args)  # type: ignore[operator]
    return refused.value.code


def test_a_hospital_grants_its_own_requesters_reporters_and_viewers() -> None:
    for role in ("requester", "reporter", "viewer"):
        check_may_grant(H001, role, "hospital/H001")


def test_a_hospital_never_grants_for_another_hospital_nor_a_local_admin() -> None:
    assert codes(check_may_grant, H001, "requester", "hospital/H002") == "forbidden"
    assert codes(check_may_grant, H001, "local-admin", "hospital/H001") == "forbidden"
    assert codes(check_may_grant, H002, "operator", "fanc") == "forbidden"


def test_the_fod_grants_local_admins_and_authorities_roles_only() -> None:
    check_may_grant(FOD, "local-admin", "hospital/H002")
    check_may_grant(FOD, "operator", "riziv")
    check_may_grant(FOD, "auditor", "*")
    assert codes(check_may_grant, FOD, "requester", "hospital/H001") == "forbidden"
    assert codes(check_may_grant, FOD, "admin", "fanc") == "schema"
    assert codes(check_may_grant, FOD, "overlord", "fod") == "schema"


def test_a_grant_is_recorded_with_its_grantor_and_end_date() -> None:
    access = granted("requester", until=date(2026, 12, 31))
    events = access.collect_events()
    assert [type(e).__qualname__ for e in events] == ["Access.Created", "Access.Granted"]
    assert events[1].granted_by == "hospital/H001:anna" and events[1].until == date(2026, 12, 31)


def test_a_role_lets_its_holder_send_its_commands_until_its_last_day() -> None:
    access = granted("requester", until=date(2026, 12, 31))
    access.check_may_send("midid.issue", TODAY)
    access.check_may_send("midid.cancel", date(2026, 12, 31))
    assert codes(access.check_may_send, "midid.issue", date(2027, 1, 1)) == "forbidden"
    assert codes(access.check_may_send, "device.report", TODAY) == "forbidden"


def test_a_revoked_role_lets_nothing_through_and_cannot_be_revoked_twice() -> None:
    access = granted("requester")
    access.revoke("requester", "left", "hospital/H001:anna", "hospital/H001", "c2")
    assert codes(access.check_may_send, "midid.issue", TODAY) == "forbidden"
    assert codes(access.revoke, "requester", "again", "x", "hospital/H001", "c3") == "conflict"


def test_a_viewer_sends_nothing() -> None:
    assert codes(granted("viewer").check_may_send, "midid.issue", TODAY) == "forbidden"
