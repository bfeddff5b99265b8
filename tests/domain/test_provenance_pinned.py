"""Every recorded event says who said it and under which command: `history` and audits show exactly that.

Each step below runs under its own (source, command id) and every event it records must carry that pair.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from domain.billing import BillingNumber
from domain.care_capacity import CareCapacity
from domain.device import Device
from domain.errors import DomainError
from domain.fanc import LegacyFancNumber
from domain.identifiers import MidId, Modality
from domain.institution import Institution
from domain.mid_id import LegacyRef, MidIdRecord, MidIdSequence
from tests.domain.test_allocation_round import ON_TIME, application_of, open_round_2024
from tests.domain.test_device import NOTICE, STATEMENT, opened

FACTS: dict[str, Any] = {"name": "AZ", "province": "Antwerpen", "region": "flemish", "campuses": ["Noord"]}


def said_by(aggregate: Aggregate, source: str, command_id: str) -> list[str]:
    """The events the last step recorded, each checked to carry that step's source and command id."""
    events = aggregate.collect_events()
    assert events, "the step recorded nothing"
    for recorded in events:
        assert (recorded.source, recorded.command_id) == (source, command_id), type(recorded).__name__  # type: ignore[attr-defined]
    return [type(e).__name__ for e in events]


def steps_of(aggregate: Aggregate, steps: list[tuple[str, Callable[[dict[str, str]], Any]]]) -> list[str]:
    names = []
    for number, (source, step) in enumerate(steps):
        who = {"source": source, "command_id": f"cmd-{number}"}
        step(who)
        names += said_by(aggregate, who["source"], who["command_id"])
    return names


def test_a_devices_events_carry_who_said_what() -> None:
    device = opened()
    names = steps_of(
        device,
        [
            ("supplier/S1", lambda who: device.record_installation(**{**NOTICE, "model": "Other"}, **who)),
            ("hospital/H001", lambda who: device.report(**STATEMENT, **who)),
            ("hospital/H001", lambda who: device.change({"campus": "Zuid"}, date(2024, 6, 1), **who)),
            ("fod", lambda who: device.correct({"model": "Other"}, "type plate", **who)),
            ("fod", lambda who: device.link(**who)),
            ("fanc", lambda who: device.record_licence("L-1", date(2024, 1, 1), None, None, **who)),
            ("fanc", lambda who: device.map_legacy_number("FA-1", **who)),
            ("fanc", lambda who: device.receive_transfer("2023Q1", date(2023, 4, 1), None, **who)),
            ("riziv", lambda who: device.assign_billing_number("B-1", date(2024, 6, 1), **who)),
            ("riziv", lambda who: device.withdraw_billing_number("audit", None, **who)),
            ("riziv", lambda who: device.assign_billing_number("B-2", date(2024, 6, 1), **who)),
            ("hospital/H001", lambda who: device.decommission(date(2024, 7, 1), "replaced", **who)),
        ],
    )
    assert names == [
        "InstallationRecorded",
        "Reported",
        "DiscrepancyRecorded",
        "Changed",
        "Corrected",
        "DiscrepancyResolved",
        "Linked",
        "LicenceRecorded",
        "LegacyNumberMapped",
        "TransferReceived",
        "BillingNumberAssigned",
        "BillingNumberWithdrawn",
        "BillingNumberAssigned",
        "Decommissioned",
        "BillingNumberWithdrawn",
    ]


def test_a_backfilled_devices_events_carry_the_fod() -> None:
    device = opened()
    assert steps_of(
        device,
        [
            (
                "fod",
                lambda who: device.backfill(
                    "R1", "Siemens", "X", "SN", "Noord", date(2015, 1, 1), "clinical", None, **who
                ),
            )
        ],
    ) == ["Backfilled"]
    assert (device.registered_on, device.registered_before_midid, device.legacy_ref) == (
        date(2015, 1, 1),
        True,
        "R1",
    )


def test_a_device_registered_after_the_mid_id_came_into_force_is_not_registered_before_it() -> None:
    device = opened()
    device.backfill(
        "R1",
        "Siemens",
        "X",
        "SN",
        "Noord",
        date(2015, 1, 1),
        "clinical",
        date(2022, 10, 1),
        **{
            "source": "fod",
            "command_id": "b",
        },
    )
    assert (device.registered_on, device.registered_before_midid) == (date(2022, 10, 1), False)
    earlier = opened()
    earlier.backfill(
        "R1",
        "Siemens",
        "X",
        "SN",
        "Noord",
        date(2022, 9, 30),
        "clinical",
        None,
        **{
            "source": "fod",
            "command_id": "b",
        },
    )
    assert earlier.registered_before_midid is True


def test_a_mid_ids_events_carry_who_said_what() -> None:
    record = MidIdRecord.issue(MidId(1), "H001", Modality.CT, "note", "hospital/H001", "issue")
    assert said_by(record, "hospital/H001", "issue") == ["Issued"]
    assert (record.mid_id, record.sequence, record.modality, record.note) == (
        "MID-0000001-95",
        1,
        "CT",
        "note",
    )
    record.link(opened().id, "fod", "link")
    assert said_by(record, "fod", "link") == ["Linked"]
    other = MidIdRecord.issue(MidId(2), "H001", Modality.MRI, None, "hospital/H001", "issue-2")
    other.collect_events()
    other.cancel("H001", "order cancelled", "hospital/H001", "cancel")
    assert said_by(other, "hospital/H001", "cancel") == ["Cancelled"]
    assert (other.status, other.cancel_reason) == ("cancelled", "order cancelled")


def test_a_backfilled_mid_id_and_its_legacy_reference_carry_the_fod() -> None:
    record = MidIdRecord.backfill(MidId(3), "H001", Modality.PET_CT, "OLD-1", "fod", "backfill")
    assert said_by(record, "fod", "backfill") == ["Issued"]
    assert (record.legacy_ref, record.note, record.modality, record.sequence) == ("OLD-1", None, "PET-CT", 3)
    ref = LegacyRef(
        institution="H001", legacy_ref="OLD-1", mid_id=record.mid_id, source="fod", command_id="b"
    )
    assert said_by(ref, "fod", "b") == ["Assigned"]
    assert ref.id == LegacyRef.create_id("H001", "OLD-1")


def test_the_mid_id_record_refusals_name_the_mid_id() -> None:
    record = MidIdRecord.issue(MidId(1), "H001", Modality.CT, None, "hospital/H001", "issue")
    with pytest.raises(DomainError) as refused:
        record.cancel("H002", "r", "hospital/H002", "c")
    assert refused.value.details[0].as_dict() == {
        "code": "midid_not_yours",
        "message": "MID-0000001-95 was issued to another institution, not to H002",
        "field": "data.mid_id",
    }
    with pytest.raises(DomainError) as refused:
        record.check_modality(Modality.MRI)
    assert refused.value.details[0].as_dict() == {
        "code": "conflict",
        "message": "MID-0000001-95 was issued for CT, not for MRI",
        "field": "data.modality",
    }
    device = opened()
    record.link(device.id, "fod", "link")
    assert record.link(device.id, "fod", "again") is False
    with pytest.raises(DomainError) as refused:
        record.link(MidId(9).aggregate_id, "fod", "other")
    assert refused.value.details[0].as_dict() == {
        "code": "midid_already_linked",
        "message": "MID-0000001-95 is linked to another device for good",
        "field": "data.mid_id",
    }
    with pytest.raises(DomainError) as refused:
        record.cancel("H001", "r", "hospital/H001", "c")
    assert refused.value.details[0].as_dict() == {
        "code": "midid_already_linked",
        "message": "MID-0000001-95 is linked to a device and can no longer be cancelled",
        "field": "data.mid_id",
    }
    cancelled = MidIdRecord.issue(MidId(2), "H001", Modality.CT, None, "hospital/H001", "issue")
    cancelled.cancel("H001", "r", "hospital/H001", "c")
    with pytest.raises(DomainError) as refused:
        cancelled.check_linkable_to(device.id, "data.identifier")
    assert refused.value.details[0].as_dict() == {
        "code": "midid_cancelled",
        "message": "MID-0000002-92 was cancelled",
        "field": "data.identifier",
    }


def test_the_mid_id_sequence_records_who_took_each_number() -> None:
    sequence = MidIdSequence()
    sequence.collect_events()
    sequence.take_next("issue-7")
    (taken,) = sequence.collect_events()
    assert (type(taken).__name__, taken.number, taken.command_id) == ("NumberTaken", 1, "issue-7")  # type: ignore[attr-defined]


def test_institution_billing_number_and_legacy_number_events_carry_who_said_what() -> None:
    institution = Institution.register("H001", **FACTS, source="fod", command_id="register")
    assert said_by(institution, "fod", "register") == ["Registered"]
    assert institution.update({"name": "AZ Nieuw", "region": "flemish"}, "fod", "update") == ["name"]
    assert said_by(institution, "fod", "update") == ["Updated"]
    number = BillingNumber.assign("B-1", "MID-0000001-95", "riziv", "assign")
    assert said_by(number, "riziv", "assign") == ["Assigned"]
    number.release("withdrawn", "riziv", "release")
    assert said_by(number, "riziv", "release") == ["Released"]
    legacy = LegacyFancNumber.map("FA-1", "MID-0000001-95", "fanc", "map")
    assert said_by(legacy, "fanc", "map") == ["Mapped"]
    capacity = CareCapacity.start("care-regions", "vazg", "start")
    assert said_by(capacity, "vazg", "start") == ["Started"]


def test_an_institution_registered_again_differently_is_told_to_send_an_update() -> None:
    institution = Institution.register("H001", **FACTS, source="fod", command_id="register")
    institution.check_registered_as(dict(FACTS))
    with pytest.raises(DomainError) as refused:
        institution.check_registered_as({**FACTS, "name": "Other"})
    assert refused.value.details[0].as_dict() == {
        "code": "conflict",
        "message": "institution H001 is already registered differently; send institution.update",
        "field": "data.institution",
    }
    with pytest.raises(DomainError) as refused:
        institution.update({"institution": "H002"}, "fod", "u")
    assert refused.value.details[0].as_dict() == {
        "code": "schema",
        "message": "'institution' cannot be updated",
        "field": "data.institution",
    }
    with pytest.raises(DomainError) as refused:
        institution.update({"region": "lapland"}, "fod", "u")
    assert refused.value.details[0].field == "data.region"
    assert institution.update({"campuses": ["Noord"]}, "fod", "u") == []


def test_an_application_and_its_withdrawal_carry_the_hospital() -> None:
    round_ = open_round_2024()
    round_.collect_events()
    application = application_of("ZNA")
    round_.file_application(
        **application, received_at=ON_TIME, sent_at=ON_TIME, source="hospital/ZNA", command_id="apply"
    )
    assert said_by(round_, "hospital/ZNA", "apply") == ["ApplicationFiled"]
    round_.withdraw_application("ZNA", ON_TIME, "hospital/ZNA", "withdraw")
    assert said_by(round_, "hospital/ZNA", "withdraw") == ["ApplicationWithdrawn"]
    round_.close("vazg", "close")
    assert said_by(round_, "vazg", "close") == ["Closed"]


def test_discrepancies_found_by_any_step_carry_that_steps_source() -> None:
    device = Device.open("MID-0000001-95", "H001", "CT", source="hospital/H001", command_id="open")
    assert said_by(device, "hospital/H001", "open") == ["Opened"]
    device.report(**STATEMENT, source="hospital/H001", command_id="report")
    device.collect_events()
    device.record_installation(**{**NOTICE, "model": "Other"}, source="supplier/S1", command_id="notice")
    assert said_by(device, "supplier/S1", "notice") == ["InstallationRecorded", "DiscrepancyRecorded"]
    device.change({"serial_number": "SN-9"}, date(2024, 6, 1), source="hospital/H001", command_id="change")
    assert said_by(device, "hospital/H001", "change") == ["Changed", "DiscrepancyRecorded"]
    fresh = opened()
    fresh.record_installation(**{**NOTICE, "model": "Other"}, source="supplier/S1", command_id="notice")
    fresh.collect_events()
    fresh.backfill(
        "R1",
        "Siemens",
        "X",
        "SN-1001",
        "Noord",
        date(2024, 3, 1),
        "clinical",
        None,
        source="fod",
        command_id="b",
    )
    assert said_by(fresh, "fod", "b") == ["Backfilled", "DiscrepancyRecorded"]


def test_a_cancelled_mid_id_is_refused_under_the_mid_id_field() -> None:
    record = MidIdRecord.issue(MidId(2), "H001", Modality.CT, None, "hospital/H001", "issue")
    record.cancel("H001", "r", "hospital/H001", "c")
    with pytest.raises(DomainError) as refused:
        record.cancel("H001", "r", "hospital/H001", "c2")
    assert (refused.value.code, refused.value.details[0].field) == ("midid_cancelled", "data.mid_id")
