"""People and access through the real command pipeline: grants, revokes, and the person in every command."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from adapters.bootstrap import all_projections
from projections.projector import Projector
from projections.queries import Queries
from projections.store import ReadModelStore
from services.register import Register
from tests.conftest import Sender


def send(sender: Sender, source: str, type_: str, data: dict[str, Any], person: str | None = None) -> Any:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": source,
        "type": type_,
        "datacontenttype": "application/json",
        "data": data,
    }
    if person is not None:
        envelope["person"] = person
    return sender.raw(json.dumps(envelope).encode(), sender.subject(source, type_))


def codes(outcome: dict[str, Any]) -> list[str]:
    return [error["code"] for error in outcome["errors"]]


def grant(sender: Sender, by: str, person: str, party: str, role: str, as_person: str | None = None) -> Any:
    data = {"person": person, "name": person.title(), "party": party, "role": role}
    return send(sender, by, "access.grant", data, as_person)


def with_a_local_admin_of_h001(sender: Sender) -> None:
    assert grant(sender, "fod", "anna", "hospital/H001", "local-admin")["status"] == "accepted"


def queries_of(register: Register, tmp_path: Path) -> Queries:
    store = ReadModelStore(f"sqlite:///{tmp_path / 'rm.db'}")
    projector = Projector(register, store, all_projections())
    projector.catch_up()
    return Queries(register, store, projector)


def test_a_local_admin_grants_a_requester_whose_mid_id_request_carries_the_person(
    sender: Sender, register: Register, tmp_path: Path
) -> None:
    with_a_local_admin_of_h001(sender)
    # The local administrator grants Bert the requester role of H001.
    granted = grant(sender, "hospital/H001", "bert", "hospital/H001", "requester", as_person="anna")
    assert granted["status"] == "accepted", granted
    assert granted["person"] == "anna"
    # Bert asks for a MID-ID: the outcome and the history name him.
    issued = send(sender, "hospital/H001", "midid.issue", {"modality": "CT"}, person="bert")
    assert issued["status"] == "accepted" and issued["person"] == "bert"
    mid_id = issued["result"]["mid_id"]
    queries = queries_of(register, tmp_path)
    history = queries.run("history", {"mid_id": mid_id})
    said = [item for item in history["items"] if item["source"] == "hospital/H001"]
    assert said and {item["person"] for item in said} == {"bert"}
    # The read model says who may do what, for whom, since when, granted by whom.
    (row,) = queries.run("access", {"person": "bert"})["items"]
    assert (row["party"], row["role"], row["granted_by"]) == (
        "hospital/H001",
        "requester",
        "hospital/H001:anna",
    )
    assert row["since"] and row["revoked_at"] is None


def test_after_revocation_the_same_person_is_refused(sender: Sender) -> None:
    with_a_local_admin_of_h001(sender)
    grant(sender, "hospital/H001", "bert", "hospital/H001", "requester", as_person="anna")
    revoked = send(
        sender,
        "hospital/H001",
        "access.revoke",
        {"person": "bert", "party": "hospital/H001", "role": "requester", "reason": "left the hospital"},
        person="anna",
    )
    assert revoked["status"] == "accepted", revoked
    refused = send(sender, "hospital/H001", "midid.issue", {"modality": "CT"}, person="bert")
    assert codes(refused) == ["forbidden"]


def test_a_role_ending_yesterday_no_longer_lets_its_holder_send(sender: Sender) -> None:
    with_a_local_admin_of_h001(sender)
    data = {
        "person": "bert",
        "name": "Bert",
        "party": "hospital/H001",
        "role": "requester",
        "until": "2020-01-01",
    }
    assert send(sender, "hospital/H001", "access.grant", data, "anna")["status"] == "accepted"
    assert codes(send(sender, "hospital/H001", "midid.issue", {"modality": "CT"}, "bert")) == ["forbidden"]


def test_a_local_admin_of_h001_cannot_grant_for_h002_nor_grant_local_admin(sender: Sender) -> None:
    with_a_local_admin_of_h001(sender)
    for_h002 = grant(sender, "hospital/H001", "bert", "hospital/H002", "requester", as_person="anna")
    local_admin = grant(sender, "hospital/H001", "bert", "hospital/H001", "local-admin", as_person="anna")
    # Sent as H002 by H001's local administrator: she is nobody there.
    as_h002 = grant(sender, "hospital/H002", "bert", "hospital/H002", "requester", as_person="anna")
    assert codes(for_h002) == codes(local_admin) == codes(as_h002) == ["forbidden"]


def test_a_requester_cannot_grant_and_a_revoked_local_admin_no_longer_can(sender: Sender) -> None:
    with_a_local_admin_of_h001(sender)
    grant(sender, "hospital/H001", "bert", "hospital/H001", "requester", as_person="anna")
    by_requester = grant(sender, "hospital/H001", "carla", "hospital/H001", "viewer", as_person="bert")
    revoke = {"person": "anna", "party": "hospital/H001", "role": "local-admin", "reason": "moved"}
    assert send(sender, "fod", "access.revoke", revoke)["status"] == "accepted"
    by_former_admin = grant(sender, "hospital/H001", "carla", "hospital/H001", "viewer", as_person="anna")
    assert codes(by_requester) == codes(by_former_admin) == ["forbidden"]


def test_the_fod_grants_local_admins_and_authorities_roles_but_not_a_hospitals_requester(
    sender: Sender,
) -> None:
    assert grant(sender, "fod", "dirk", "fanc", "operator")["status"] == "accepted"
    assert grant(sender, "fod", "eva", "*", "auditor")["status"] == "accepted"
    assert codes(grant(sender, "fod", "bert", "hospital/H001", "requester")) == ["forbidden"]
    assert codes(grant(sender, "fod", "eva", "hospital/H001", "auditor")) == ["schema"]
    assert codes(grant(sender, "riziv", "eva", "riziv", "operator")) == ["forbidden"]


def test_a_person_the_register_never_heard_of_is_the_partys_own_statement(sender: Sender) -> None:
    issued = send(sender, "hospital/H001", "midid.issue", {"modality": "MRI"}, person="their-own-user")
    assert issued["status"] == "accepted" and issued["person"] == "their-own-user"


def test_revoking_a_role_never_held_is_a_conflict(sender: Sender) -> None:
    revoke = {"person": "nobody", "party": "hospital/H001", "role": "requester", "reason": "-"}
    assert codes(send(sender, "fod", "access.revoke", revoke)) == ["forbidden"]
    assert codes(send(sender, "hospital/H001", "access.revoke", revoke)) == ["conflict"]


def test_the_kadaster_view_says_which_person_said_each_field(
    sender: Sender, register: Register, tmp_path: Path
) -> None:
    with_a_local_admin_of_h001(sender)
    grant(sender, "hospital/H001", "carla", "hospital/H001", "reporter", as_person="anna")
    mid_id = send(sender, "hospital/H001", "midid.issue", {"modality": "CT"})["result"]["mid_id"]
    report = {
        "mid_id": mid_id,
        "modality": "CT",
        "manufacturer": "Siemens",
        "model": "Somatom X",
        "serial_number": "SN-1",
        "campus": "Genk",
        "installed_on": "2024-03-01",
        "use": "clinical",
    }
    reported = send(sender, "hospital/H001", "device.report", report, person="carla")
    assert reported["status"] == "accepted", reported
    device = queries_of(register, tmp_path).run("device", {"mid_id": mid_id})
    assert device["provenance"]["model"]["person"] == "carla"
    assert "person" not in device["provenance"]["modality"]  # the MID-ID was requested by H001's system
