"""Access pinned down: every refusal's code, field and message, and every recorded event field."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest

from domain.access import Access, access_id, check_may_grant, check_role_fits_party
from domain.errors import DomainError
from domain.identifiers import Source

H001, FOD, FANC = Source.parse("hospital/H001"), Source.parse("fod"), Source.parse("fanc")
TODAY = date(2026, 12, 6)
LAST_DAY = date(2026, 12, 31)


def refusal(rule: object, *args: object) -> tuple[str, str, str | None]:
    with pytest.raises(DomainError) as refused:
        rule(*args)  # type: ignore[operator]
    detail = refused.value.details[0]
    assert str(refused.value) == detail.message
    return detail.code, detail.message, detail.field


def granted(role: str, until: date | None = None, party: str = "hospital/H001") -> Access:
    access = Access("bert", party)
    access.grant("Bert", role, until, "hospital/H001:anna", "hospital/H001", "c1")
    return access


def test_the_access_of_a_person_for_a_party_keeps_the_id_it_is_stored_under() -> None:
    # Stored access aggregates are found again by this id: changing how it is made loses them.
    assert access_id("bert", "hospital/H001") == UUID("d39352bc-ca45-51fd-989a-491a20d9c273")
    assert Access.create_id("bert", "hospital/H001") == access_id("bert", "hospital/H001")


def test_an_unknown_role_is_refused_naming_every_role_there_is() -> None:
    assert refusal(check_role_fits_party, "overlord", "fod") == (
        "schema",
        "'overlord' is not a role (local-admin, requester, reporter, viewer, operator, admin, auditor)",
        "data.role",
    )


def test_a_party_that_is_no_source_is_refused_on_the_party_field() -> None:
    code, _, field = refusal(check_role_fits_party, "requester", "nowhere")
    assert (code, field) == ("schema", "data.party")


def test_a_role_for_the_wrong_kind_of_party_says_which_parties_hold_it() -> None:
    assert refusal(check_role_fits_party, "operator", "hospital/H001") == (
        "schema",
        "the role operator is held for fod or fanc or riziv or vazg or supplier, not for hospital/H001",
        "data.party",
    )


def test_an_auditor_for_a_party_is_refused_saying_auditors_hold_no_party() -> None:
    assert refusal(check_role_fits_party, "auditor", "hospital/H001") == (
        "schema",
        "the role auditor is held for no party (*), not for hospital/H001",
        "data.party",
    )


def test_the_fod_granting_a_hospital_role_is_told_the_local_administrator_grants_it() -> None:
    assert refusal(check_may_grant, FOD, "requester", "hospital/H001") == (
        "forbidden",
        "the requester role is granted by the hospital's local administrator",
        "data.role",
    )


def test_an_authority_other_than_the_fod_grants_no_roles() -> None:
    assert refusal(check_may_grant, FANC, "viewer", "hospital/H001") == (
        "forbidden",
        "fanc grants no roles",
        "source",
    )


def test_a_hospital_granting_for_another_hospital_is_refused_on_the_party() -> None:
    assert refusal(check_may_grant, H001, "viewer", "hospital/H002") == (
        "forbidden",
        "hospital/H001 grants roles of its own people only, not hospital/H002's",
        "data.party",
    )


def test_a_hospital_granting_a_local_admin_is_told_only_the_fod_grants_it() -> None:
    assert refusal(check_may_grant, H001, "local-admin", "hospital/H001") == (
        "forbidden",
        "only the FOD grants the local-admin role",
        "data.role",
    )


def test_a_role_with_an_end_date_is_held_through_its_last_day_and_not_after() -> None:
    access = granted("requester", until=LAST_DAY)
    access.check_holds("requester", LAST_DAY)
    assert refusal(access.check_holds, "requester", date(2027, 1, 1)) == (
        "forbidden",
        "bert is not requester of hospital/H001",
        "person",
    )


def test_an_operator_sends_any_of_its_partys_commands() -> None:
    access = granted("operator", party="fanc")
    access.check_may_send("device.report", TODAY)
    access.check_may_send("round.decide", TODAY)


def test_a_command_no_role_allows_is_refused_naming_the_person_party_and_command() -> None:
    assert refusal(granted("viewer").check_may_send, "midid.issue", TODAY) == (
        "forbidden",
        "bert holds no role of hospital/H001 that may send midid.issue",
        "person",
    )


def test_a_grant_records_every_field_of_the_command() -> None:
    granted_event = granted("reporter", until=LAST_DAY).collect_events()[1]
    assert isinstance(granted_event, Access.Granted)
    assert (
        granted_event.name,
        granted_event.role,
        granted_event.until,
        granted_event.granted_by,
        granted_event.source,
        granted_event.command_id,
    ) == ("Bert", "reporter", LAST_DAY, "hospital/H001:anna", "hospital/H001", "c1")


def test_a_revocation_records_every_field_of_the_command() -> None:
    access = granted("reporter")
    access.revoke("reporter", "left the hospital", "hospital/H001:anna", "hospital/H001", "c2")
    revoked = access.collect_events()[2]
    assert isinstance(revoked, Access.Revoked)
    assert (revoked.role, revoked.reason, revoked.revoked_by, revoked.source, revoked.command_id) == (
        "reporter",
        "left the hospital",
        "hospital/H001:anna",
        "hospital/H001",
        "c2",
    )


def test_revoking_a_role_not_held_is_a_conflict_naming_the_person_role_and_party() -> None:
    assert refusal(granted("viewer").revoke, "requester", "why", "x", "hospital/H001", "c2") == (
        "conflict",
        "bert holds no requester role of hospital/H001",
        "data.role",
    )
