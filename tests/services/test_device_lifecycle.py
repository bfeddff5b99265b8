"""A device's life through the real command pipeline and event store, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.device import device_id
from tests.conftest import Sender

HOSPITAL = "hospital/H001"
OTHER_HOSPITAL = "hospital/H002"
SUPPLIER = "supplier/SIEMENS"


def issue(sender: Sender, modality: str = "CT", hospital: str = HOSPITAL) -> str:
    mid_id: str = sender.accepted(hospital, "midid.issue", {"modality": modality})["mid_id"]
    return mid_id


def report(mid_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "mid_id": mid_id,
        "modality": "CT",
        "manufacturer": "Siemens",
        "model": "Somatom X.cite",
        "serial_number": "SN-1001",
        "campus": "Campus Noord",
        "installed_on": "2024-03-01",
        "use": "clinical",
        **overrides,
    }


def notice(mid_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "mid_id": mid_id,
        "institution": "H001",
        "modality": "CT",
        "manufacturer": "Siemens",
        "model": "Somatom X.cite",
        "serial_number": "SN-1001",
        "installed_on": "2024-03-01",
        **overrides,
    }


def backfill(legacy_ref: str = "CT1", **overrides: Any) -> dict[str, Any]:
    return {
        "institution": "H001",
        "modality": "CT",
        "legacy_ref": legacy_ref,
        "manufacturer": "GE",
        "model": "Revolution",
        "serial_number": "GE-77",
        "campus": "Campus Noord",
        "installed_on": "2016-06-01",
        "use": "clinical",
        **overrides,
    }


LICENCE = {"licence_ref": "FANC-L-1", "valid_from": "2024-01-01"}


def linked_device(sender: Sender, modality: str = "CT", **overrides: Any) -> str:
    mid_id = issue(sender, modality)
    sender.accepted(HOSPITAL, "device.report", report(mid_id, modality=modality, **overrides))
    sender.accepted("fod", "midid.link", {"mid_id": mid_id})
    return mid_id


def events_of(sender: Sender, aggregate_id: UUID) -> list[str]:
    register = sender.processor.register
    stored = register.recorder.select_events(aggregate_id)
    return [type(register.mapper.to_domain_event(s)).__name__ for s in stored]


def test_a_device_lives_from_issue_to_decommission(sender: Sender) -> None:
    # The hospital gets a MID-ID before buying.
    mid_id = issue(sender)
    # The supplier installs the device and says so.
    announced = sender.accepted(SUPPLIER, "device.installation", notice(mid_id))
    assert announced == {
        "mid_id": mid_id,
        "device_status": "announced",
        "unchanged": False,
        "discrepancies": [],
    }
    # The hospital reports it; both statements agree.
    reported = sender.accepted(HOSPITAL, "device.report", report(mid_id))
    assert reported["device_status"] == "reported"
    assert reported["discrepancies"] == []
    # The FOD links the MID-ID to the device.
    linked = sender.accepted("fod", "midid.link", {"mid_id": mid_id})
    assert linked["device_status"] == "linked"
    assert linked["status"] == "linked"
    # FANC licenses it.
    licence = sender.accepted("fanc", "fanc.licence", {"mid_id": mid_id, **LICENCE})
    assert licence["valid_from"] == "2024-01-01"
    # RIZIV gives it a billing number.
    billing = sender.accepted("riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"})
    assert billing["billing_number"] == "7001"
    # The hospital moves it to another campus.
    changed = sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"campus": "Campus Zuid"}, "effective_on": "2025-01-01"},
    )
    assert changed["changed"] == ["campus"]
    # It leaves service, and its billing number ends with it.
    retired = sender.accepted(
        HOSPITAL,
        "device.decommission",
        {"mid_id": mid_id, "effective_on": "2032-01-01", "reason": "replaced"},
    )
    assert retired["device_status"] == "decommissioned"
    assert retired["billing_number_withdrawn"] == "7001"
    assert events_of(sender, device_id(mid_id)) == [
        "Opened",
        "InstallationRecorded",
        "Reported",
        "Linked",
        "LicenceRecorded",
        "BillingNumberAssigned",
        "Changed",
        "Decommissioned",
        "BillingNumberWithdrawn",
    ]


def test_a_device_lives_from_issue_to_decommission_with_the_suppliers_notice_last(sender: Sender) -> None:
    # The hospital gets a MID-ID, reports the device, and the FOD links it.
    mid_id = issue(sender)
    sender.accepted(HOSPITAL, "device.report", report(mid_id))
    sender.accepted("fod", "midid.link", {"mid_id": mid_id})
    # FANC licenses it and RIZIV gives it a billing number.
    sender.accepted("fanc", "fanc.licence", {"mid_id": mid_id, **LICENCE})
    sender.accepted("riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"})
    # An upgrade changes the model.
    sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"model": "Somatom Force"}, "effective_on": "2025-01-01"},
    )
    # It leaves service.
    sender.accepted(
        HOSPITAL,
        "device.decommission",
        {"mid_id": mid_id, "effective_on": "2032-01-01", "reason": "replaced"},
    )
    # The supplier's notice comes last: still recorded and compared with the kadaster's record.
    late = sender.accepted(SUPPLIER, "device.installation", notice(mid_id))
    assert late["device_status"] == "decommissioned"
    assert late["discrepancies"] == [
        {
            "field": "model",
            "reported_value": "Somatom Force",
            "reported_source": HOSPITAL,
            "supplier_value": "Somatom X.cite",
            "supplier_source": SUPPLIER,
        }
    ]
    assert events_of(sender, device_id(mid_id)) == [
        "Opened",
        "Reported",
        "Linked",
        "LicenceRecorded",
        "BillingNumberAssigned",
        "Changed",
        "Decommissioned",
        "BillingNumberWithdrawn",
        "InstallationRecorded",
        "DiscrepancyRecorded",
    ]


def test_a_late_suppliers_notice_is_compared_with_the_hospitals_statement(sender: Sender) -> None:
    mid_id = linked_device(sender)
    result = sender.accepted(
        SUPPLIER, "device.installation", notice(mid_id, serial_number="SN-1002", installed_on="2024-02-28")
    )
    assert result["device_status"] == "linked"
    assert result["discrepancies"] == [
        {
            "field": "installed_on",
            "reported_value": "2024-03-01",
            "reported_source": HOSPITAL,
            "supplier_value": "2024-02-28",
            "supplier_source": SUPPLIER,
        },
        {
            "field": "serial_number",
            "reported_value": "SN-1001",
            "reported_source": HOSPITAL,
            "supplier_value": "SN-1002",
            "supplier_source": SUPPLIER,
        },
    ]


def test_a_supplier_naming_another_institution_is_recorded_as_a_discrepancy_not_applied(
    sender: Sender,
) -> None:
    mid_id = issue(sender)
    result = sender.accepted(SUPPLIER, "device.installation", notice(mid_id, institution="H002"))
    assert [d["field"] for d in result["discrepancies"]] == ["institution"]
    assert result["discrepancies"][0]["supplier_value"] == "H002"
    # The MID-ID stays the holder's: H001 reports the device, H002 cannot.
    sender.accepted(HOSPITAL, "device.report", report(mid_id))
    sender.rejected(OTHER_HOSPITAL, "device.report", report(mid_id), "midid_not_yours")


def test_a_discrepancy_is_resolved_when_the_statements_come_to_agree(sender: Sender) -> None:
    mid_id = issue(sender)
    sender.accepted(SUPPLIER, "device.installation", notice(mid_id, model="Somatom Force"))
    assert len(sender.accepted(HOSPITAL, "device.report", report(mid_id))["discrepancies"]) == 1
    changed = sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"model": "Somatom Force"}, "effective_on": "2024-03-01"},
    )
    assert changed["discrepancies"] == []


def test_a_supplier_notice_needs_an_issued_uncancelled_mid_id(sender: Sender) -> None:
    sender.rejected(SUPPLIER, "device.installation", notice("MID-0000043-66"), "midid_unknown")
    mid_id = issue(sender)
    sender.accepted(HOSPITAL, "midid.cancel", {"mid_id": mid_id, "reason": "order cancelled"})
    sender.rejected(SUPPLIER, "device.installation", notice(mid_id), "midid_cancelled")
    sender.rejected(HOSPITAL, "device.installation", notice(mid_id), "forbidden")


def test_a_report_needs_an_issued_mid_id_of_ones_own_for_that_modality(sender: Sender) -> None:
    sender.rejected(HOSPITAL, "device.report", report("MID-0000043-66"), "midid_unknown")
    sender.rejected(HOSPITAL, "device.report", report("MID-0000042-96"), "midid_checksum")
    mid_id = issue(sender)
    sender.rejected(OTHER_HOSPITAL, "device.report", report(mid_id), "midid_not_yours")
    refused = sender.rejected(HOSPITAL, "device.report", report(mid_id, modality="PET-CT"), "conflict")
    assert refused["errors"][0]["field"] == "data.modality"
    sender.rejected(
        HOSPITAL, "device.report", report(mid_id, modality="cone-beam CT"), "modality_not_in_scope"
    )
    sender.rejected(HOSPITAL, "device.report", report(mid_id, use="leisure"), "schema")
    sender.rejected(HOSPITAL, "device.report", {"mid_id": mid_id}, *["schema"] * 7)
    sender.accepted(HOSPITAL, "midid.cancel", {"mid_id": mid_id, "reason": "order cancelled"})
    sender.rejected(HOSPITAL, "device.report", report(mid_id), "midid_cancelled")


def test_a_second_report_before_linking_restates_the_first(sender: Sender) -> None:
    mid_id = issue(sender)
    assert sender.accepted(HOSPITAL, "device.report", report(mid_id))["restated"] is False
    again = sender.accepted(HOSPITAL, "device.report", report(mid_id, serial_number="SN-1010"))
    assert again["restated"] is True
    same = sender.accepted(HOSPITAL, "device.report", report(mid_id, serial_number="SN-1010"))
    assert same["unchanged"] is True
    assert events_of(sender, device_id(mid_id)) == ["Opened", "Reported", "Reported"]


def test_a_linked_mid_id_never_moves_to_another_device(sender: Sender) -> None:
    mid_id = linked_device(sender)
    sender.rejected(
        HOSPITAL, "device.report", report(mid_id, serial_number="SN-2002"), "midid_already_linked"
    )
    sender.rejected(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"serial_number": "SN-2002"}, "effective_on": "2025-01-01"},
        "midid_already_linked",
    )
    sender.rejected(HOSPITAL, "midid.cancel", {"mid_id": mid_id, "reason": "x"}, "midid_already_linked")
    # The same device reported again is a restatement.
    sender.accepted(HOSPITAL, "device.report", report(mid_id, use="mixed"))


def test_linking_needs_a_reported_device_and_happens_once(sender: Sender) -> None:
    sender.rejected("fod", "midid.link", {"mid_id": "MID-0000043-66"}, "midid_unknown")
    mid_id = issue(sender)
    sender.rejected("fod", "midid.link", {"mid_id": mid_id}, "device_unknown")
    sender.accepted(SUPPLIER, "device.installation", notice(mid_id))
    # A supplier's notice alone does not make the device known to the kadaster.
    sender.rejected("fod", "midid.link", {"mid_id": mid_id}, "device_unknown")
    sender.accepted(HOSPITAL, "device.report", report(mid_id))
    assert sender.accepted("fod", "midid.link", {"mid_id": mid_id})["already_linked"] is False
    position = sender.processor.register.position()
    assert sender.accepted("fod", "midid.link", {"mid_id": mid_id})["already_linked"] is True
    # Only the command record was written the second time.
    assert sender.processor.register.position() == position + 1
    sender.rejected(HOSPITAL, "midid.link", {"mid_id": mid_id}, "forbidden")


def test_a_cancelled_mid_id_cannot_be_linked(sender: Sender) -> None:
    mid_id = issue(sender)
    sender.accepted(HOSPITAL, "device.report", report(mid_id))
    sender.accepted(HOSPITAL, "midid.cancel", {"mid_id": mid_id, "reason": "wrong number used"})
    sender.rejected("fod", "midid.link", {"mid_id": mid_id}, "midid_cancelled")


def test_changes_and_decommissioning_need_a_reported_device_in_service(sender: Sender) -> None:
    change = {"changes": {"campus": "Campus Zuid"}, "effective_on": "2025-01-01"}
    retire = {"effective_on": "2032-01-01", "reason": "replaced"}
    sender.rejected(HOSPITAL, "device.change", {"mid_id": "MID-0000043-66", **change}, "midid_unknown")
    mid_id = issue(sender)
    sender.rejected(HOSPITAL, "device.change", {"mid_id": mid_id, **change}, "device_unknown")
    sender.rejected(HOSPITAL, "device.decommission", {"mid_id": mid_id, **retire}, "device_unknown")
    sender.accepted(HOSPITAL, "device.report", report(mid_id))
    sender.rejected(OTHER_HOSPITAL, "device.change", {"mid_id": mid_id, **change}, "midid_not_yours")
    sender.rejected(OTHER_HOSPITAL, "device.decommission", {"mid_id": mid_id, **retire}, "midid_not_yours")
    sender.rejected(
        HOSPITAL, "device.change", {"mid_id": mid_id, "changes": {}, "effective_on": "2025-01-01"}, "schema"
    )
    sender.rejected(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"modality": "MRI"}, "effective_on": "2025-01-01"},
        "schema",
    )
    unchanged = sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"campus": "Campus Noord"}, "effective_on": "2025-01-01"},
    )
    assert unchanged["changed"] == []
    sender.accepted(HOSPITAL, "device.decommission", {"mid_id": mid_id, **retire})
    sender.rejected(HOSPITAL, "device.change", {"mid_id": mid_id, **change}, "device_decommissioned")
    sender.rejected(HOSPITAL, "device.decommission", {"mid_id": mid_id, **retire}, "device_decommissioned")


def test_the_fod_corrects_a_record_and_the_correction_resolves_the_discrepancy(sender: Sender) -> None:
    mid_id = linked_device(sender)
    sender.accepted(SUPPLIER, "device.installation", notice(mid_id, serial_number="SN-1002"))
    corrected = sender.accepted(
        "fod",
        "device.correct",
        {"mid_id": mid_id, "corrections": {"serial_number": "SN-1002"}, "reason": "type plate checked"},
    )
    assert corrected["corrected"] == ["serial_number"]
    assert corrected["discrepancies"] == []


def test_backfilling_issues_a_linked_mid_id_once_per_legacy_reference(sender: Sender) -> None:
    issue(sender)
    first = sender.accepted("fod", "midid.backfill", backfill())
    assert first["mid_id"] == "MID-0000002-92"
    assert first["status"] == "linked"
    assert first["device_status"] == "linked"
    assert first["registered_before_midid"] is True
    assert first["already_backfilled"] is False
    again = sender.accepted("fod", "midid.backfill", backfill())
    assert again["mid_id"] == first["mid_id"]
    assert again["already_backfilled"] is True
    # Another hospital's CT1 is another device.
    other = sender.accepted("fod", "midid.backfill", backfill(institution="H002"))
    assert other["mid_id"] == "MID-0000003-89"
    assert issue(sender) == "MID-0000004-86"
    # The holder sees and manages the backfilled device as its own.
    sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": first["mid_id"], "changes": {"campus": "Campus Zuid"}, "effective_on": "2024-01-01"},
    )
    sender.rejected(HOSPITAL, "midid.backfill", backfill("CT9"), "forbidden")


def test_backfilling_a_device_with_its_old_fanc_number_maps_it(sender: Sender) -> None:
    result = sender.accepted("fod", "midid.backfill", backfill(legacy_number="FANC-0042"))
    assert result["legacy_number"] == "FANC-0042"
    transfer = sender.accepted(
        "fanc", "fanc.transfer", {"identifier": "fanc-0042", "period": "2023Q2", "received_on": "2023-07-15"}
    )
    assert transfer["mid_id"] == result["mid_id"]
    sender.rejected("fod", "midid.backfill", backfill("CT2", legacy_number="FANC-0042"), "conflict")
    sender.rejected(
        "fod",
        "midid.backfill",
        backfill("MR1", modality="MRI", legacy_number="FANC-0043"),
        "not_in_fanc_scope",
    )


def test_fanc_licences_are_for_known_ionising_devices(sender: Sender) -> None:
    sender.rejected("fanc", "fanc.licence", {"mid_id": "MID-0000043-66", **LICENCE}, "midid_unknown")
    mid_id = issue(sender)
    sender.rejected("fanc", "fanc.licence", {"mid_id": mid_id, **LICENCE}, "device_unknown")
    mri = linked_device(sender, "MRI")
    sender.rejected("fanc", "fanc.licence", {"mid_id": mri, **LICENCE}, "not_in_fanc_scope")
    sender.rejected("fanc", "fanc.licence", {"legacy_number": "F-404", **LICENCE}, "device_unknown")
    sender.rejected("fanc", "fanc.licence", dict(LICENCE), "schema")
    sender.rejected("fanc", "fanc.licence", {"mid_id": mid_id, "legacy_number": "F-1", **LICENCE}, "schema")
    sender.rejected(
        "fanc", "fanc.licence", {"mid_id": mid_id, **LICENCE, "valid_until": "2023-01-01"}, "schema"
    )
    sender.rejected("riziv", "fanc.licence", {"mid_id": mid_id, **LICENCE}, "forbidden")


def test_a_licence_can_be_recorded_under_the_old_fanc_number(sender: Sender) -> None:
    mid_id = sender.accepted("fod", "midid.backfill", backfill())["mid_id"]
    mapped = sender.accepted("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": mid_id})
    assert mapped == {"legacy_number": "F-7", "mid_id": mid_id, "unchanged": False}
    licence = sender.accepted("fanc", "fanc.licence", {"legacy_number": "f-7", **LICENCE})
    assert licence["mid_id"] == mid_id


def test_an_old_fanc_number_maps_to_one_mid_id(sender: Sender) -> None:
    first = sender.accepted("fod", "midid.backfill", backfill("CT1"))["mid_id"]
    second = sender.accepted("fod", "midid.backfill", backfill("CT2"))["mid_id"]
    sender.accepted("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": first})
    again = sender.accepted("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": first})
    assert again["unchanged"] is True
    sender.rejected("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": second}, "conflict")
    sender.rejected("fanc", "fanc.legacy-number", {"legacy_number": "F-8", "mid_id": first}, "conflict")
    sender.rejected(
        "fanc", "fanc.legacy-number", {"legacy_number": "F-9", "mid_id": "MID-0000043-66"}, "midid_unknown"
    )
    mri = linked_device(sender, "MRI")
    sender.rejected(
        "fanc", "fanc.legacy-number", {"legacy_number": "F-9", "mid_id": mri}, "not_in_fanc_scope"
    )


@pytest.mark.parametrize(
    ("received_on", "installed_on", "outcome"),
    [
        ("2023-09-30", "2016-06-01", "accepted"),
        ("2023-10-01", "2016-06-01", "legacy_number_expired"),
        ("2024-04-01", "2016-06-01", "legacy_number_expired"),
        ("2023-06-30", "2022-11-15", "legacy_number_expired"),
    ],
)
def test_an_old_fanc_number_is_accepted_in_transfers_only_during_the_transition(
    sender: Sender, received_on: str, installed_on: str, outcome: str
) -> None:
    mid_id = sender.accepted("fod", "midid.backfill", backfill(installed_on=installed_on))["mid_id"]
    sender.accepted("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": mid_id})
    transfer = {"identifier": "F-7", "period": "2023Q3", "received_on": received_on}
    if outcome == "accepted":
        result = sender.accepted("fanc", "fanc.transfer", transfer)
        assert result["identified_by"] == "legacy_number"
        assert result["mid_id"] == mid_id
    else:
        sender.rejected("fanc", "fanc.transfer", transfer, outcome)
    # The MID-ID itself is always accepted.
    by_mid_id = sender.accepted("fanc", "fanc.transfer", {**transfer, "identifier": mid_id.lower()})
    assert by_mid_id["identified_by"] == "mid_id"


def test_an_unmapped_old_fanc_number_is_unknown_during_the_transition_and_expired_after(
    sender: Sender,
) -> None:
    transfer = {"identifier": "F-404", "period": "2023Q2"}
    sender.rejected("fanc", "fanc.transfer", {**transfer, "received_on": "2023-07-01"}, "device_unknown")
    sender.rejected(
        "fanc", "fanc.transfer", {**transfer, "received_on": "2023-11-01"}, "legacy_number_expired"
    )


def test_a_device_reported_with_its_mid_id_never_transfers_under_an_old_number(sender: Sender) -> None:
    mid_id = linked_device(sender)
    sender.accepted("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": mid_id})
    sender.rejected(
        "fanc",
        "fanc.transfer",
        {"identifier": "F-7", "period": "2023Q2", "received_on": "2023-07-01"},
        "legacy_number_expired",
    )


def test_fanc_receives_no_transfers_about_mri(sender: Sender) -> None:
    mri = linked_device(sender, "MRI")
    sender.rejected(
        "fanc",
        "fanc.transfer",
        {"identifier": mri, "period": "2024Q1", "received_on": "2024-04-01"},
        "not_in_fanc_scope",
    )
    sender.rejected(
        "fanc",
        "fanc.transfer",
        {"identifier": "MID-0000043-66", "period": "2024Q1", "received_on": "2024-04-01"},
        "midid_unknown",
    )
    sender.rejected(
        "fanc",
        "fanc.transfer",
        {"identifier": "MID-0000042-96", "period": "2024Q1", "received_on": "2024-04-01"},
        "midid_checksum",
    )


def test_a_billing_refusal_lists_every_missing_requirement(sender: Sender) -> None:
    mid_id = issue(sender)
    sender.accepted(HOSPITAL, "device.report", report(mid_id, use="research"))
    refused = sender.rejected(
        "riziv",
        "billing.assign",
        {"mid_id": mid_id, "billing_number": "7001"},
        "requirements_not_met",
        "requirements_not_met",
        "requirements_not_met",
    )
    assert [e["field"] for e in refused["errors"]] == ["device.linked", "device.use", "device.fanc_licence"]
    # Meeting them one by one narrows the list down.
    sender.accepted("fod", "midid.link", {"mid_id": mid_id})
    sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": mid_id, "changes": {"use": "mixed"}, "effective_on": "2024-04-01"},
    )
    refused = sender.rejected(
        "riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"}, "requirements_not_met"
    )
    assert refused["errors"][0]["field"] == "device.fanc_licence"
    # A licence that ended before the decision does not count; a current one does.
    sender.accepted("fanc", "fanc.licence", {"mid_id": mid_id, **LICENCE, "valid_until": "2024-03-31"})
    sender.rejected(
        "riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"}, "requirements_not_met"
    )
    sender.accepted("fanc", "fanc.licence", {"mid_id": mid_id, **LICENCE, "valid_until": "2029-12-31"})
    sender.accepted("riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"})


def test_a_decommissioned_device_gets_no_billing_number(sender: Sender) -> None:
    mid_id = linked_device(sender, "MRI")
    sender.accepted(
        HOSPITAL, "device.decommission", {"mid_id": mid_id, "effective_on": "2024-04-01", "reason": "x"}
    )
    refused = sender.rejected(
        "riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"}, "requirements_not_met"
    )
    assert refused["errors"][0]["field"] == "device.status"


def test_billing_needs_a_known_device(sender: Sender) -> None:
    sender.rejected(
        "riziv", "billing.assign", {"mid_id": "MID-0000043-66", "billing_number": "1"}, "midid_unknown"
    )
    mid_id = issue(sender)
    sender.rejected("riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "1"}, "device_unknown")
    sender.rejected("riziv", "billing.withdraw", {"mid_id": mid_id, "reason": "x"}, "device_unknown")
    # The FOD's legacy register speaks for RIZIV about the numbers it lists; a hospital never does.
    sender.rejected("fod", "billing.assign", {"mid_id": mid_id, "billing_number": "1"}, "device_unknown")
    sender.rejected(HOSPITAL, "billing.assign", {"mid_id": mid_id, "billing_number": "1"}, "forbidden")
    sender.rejected("fod", "billing.withdraw", {"mid_id": mid_id, "reason": "x"}, "forbidden")


def test_one_billing_number_cannot_sit_on_two_devices(sender: Sender) -> None:
    first = linked_device(sender, "MRI")
    second = linked_device(sender, "MRI", serial_number="SN-2002")
    sender.accepted("riziv", "billing.assign", {"mid_id": first, "billing_number": "7001"})
    refused = sender.rejected(
        "riziv", "billing.assign", {"mid_id": second, "billing_number": " 7001 "}, "conflict"
    )
    assert refused["errors"][0]["field"] == "data.billing_number"
    # Assigning it again to the same device changes nothing.
    assert (
        sender.accepted("riziv", "billing.assign", {"mid_id": first, "billing_number": "7001"})["unchanged"]
        is True
    )
    # Once withdrawn from the first, it may go to the second.
    withdrawn = sender.accepted("riziv", "billing.withdraw", {"mid_id": first, "reason": "audit"})
    assert withdrawn["withdrawn"] == "7001"
    sender.rejected("riziv", "billing.withdraw", {"mid_id": first, "reason": "again"}, "conflict")
    sender.accepted("riziv", "billing.assign", {"mid_id": second, "billing_number": "7001"})


def test_two_devices_claiming_one_billing_number_in_one_batch_get_one_of_it(sender: Sender) -> None:
    from services.processor import Inbound

    first = linked_device(sender, "MRI")
    second = linked_device(sender, "MRI", serial_number="SN-2002")
    batch = [
        Inbound(
            sender.envelope("riziv", "billing.assign", {"mid_id": mid_id, "billing_number": "7001"}),
            sender.subject("riziv", "billing.assign"),
        )
        for mid_id in (first, second)
    ]
    outcomes = [handled.outcome for handled in sender.processor.process(batch)]
    assert [o["status"] for o in outcomes] == ["accepted", "rejected"]
    assert outcomes[1]["errors"][0]["code"] == "conflict"


def test_the_fod_registers_and_updates_institutions(sender: Sender) -> None:
    facts = {
        "institution": "H001",
        "name": "AZ Voorbeeld",
        "province": "Antwerpen",
        "region": "Flemish",
        "campuses": ["Campus Noord", "Campus Zuid"],
    }
    registered = sender.accepted("fod", "institution.register", facts)
    assert registered["region"] == "flemish"
    assert registered["unchanged"] is False
    assert sender.accepted("fod", "institution.register", facts)["unchanged"] is True
    sender.rejected("fod", "institution.register", {**facts, "name": "AZ Ander"}, "conflict")
    sender.rejected("fod", "institution.register", {**facts, "region": "lapland"}, "schema")
    updated = sender.accepted(
        "fod", "institution.update", {"institution": "H001", "campuses": ["Campus Noord"]}
    )
    assert updated["changed"] == ["campuses"]
    assert updated["campuses"] == ["Campus Noord"]
    sender.rejected("fod", "institution.update", {"institution": "H001"}, "schema")
    sender.rejected("fod", "institution.update", {"institution": "H404", "name": "X"}, "conflict")
    sender.rejected(HOSPITAL, "institution.register", facts, "forbidden")


def test_an_unregistered_hospital_still_gets_mid_ids_and_reports_devices(sender: Sender) -> None:
    mid_id = issue(sender, hospital="hospital/H999")
    sender.accepted("hospital/H999", "device.report", report(mid_id))


def test_the_fod_may_decommission_any_hospitals_device_but_a_supplier_may_not(sender: Sender) -> None:
    retire = {"effective_on": "2032-01-01", "reason": "out of service in the legacy kadaster register"}
    mid_id = issue(sender)
    sender.accepted(HOSPITAL, "device.report", report(mid_id))
    sender.rejected("supplier/S001", "device.decommission", {"mid_id": mid_id, **retire}, "forbidden")
    sender.rejected("fanc", "device.decommission", {"mid_id": mid_id, **retire}, "forbidden")
    retired = sender.accepted("fod", "device.decommission", {"mid_id": mid_id, **retire})
    assert retired["device_status"] == "decommissioned"
    sender.rejected("fod", "device.decommission", {"mid_id": mid_id, **retire}, "device_decommissioned")


def test_provinces_regions_and_modalities_are_known_by_their_other_names(sender: Sender) -> None:
    facts = {"institution": "H002", "name": "CHU", "province": "Liège", "region": "Wallonie"}
    registered = sender.accepted("fod", "institution.register", facts)
    assert (registered["province"], registered["region"]) == ("Luik", "wallonia")
    updated = sender.accepted("fod", "institution.update", {"institution": "H002", "province": "Namur"})
    assert updated["province"] == "Namen"
    # A hospital asking for an "MR" gets an MRI MID-ID.
    issued = sender.accepted(HOSPITAL, "midid.issue", {"modality": "MR"})
    assert issued["modality"] == "MRI"


def test_a_campus_the_institution_does_not_have_is_a_discrepancy_until_it_is_one_of_its_campuses(
    sender: Sender,
) -> None:
    sender.accepted(
        "fod",
        "institution.register",
        {
            "institution": "H001",
            "name": "ZNA",
            "province": "Antwerpen",
            "region": "flemish",
            "campuses": ["Campus Noord", "Campus Zuid"],
        },
    )
    mid_id = issue(sender)
    reported = sender.accepted(HOSPITAL, "device.report", report(mid_id, campus="Campus Oost"))
    assert reported["discrepancies"] == [
        {
            "field": "campus",
            "reported_value": "Campus Oost",
            "reported_source": HOSPITAL,
            "supplier_value": "Campus Noord, Campus Zuid",
            "supplier_source": "fod",
        }
    ]
    fixed = sender.accepted(HOSPITAL, "device.report", report(mid_id, campus="Campus Zuid"))
    assert fixed["discrepancies"] == []
