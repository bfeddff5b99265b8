"""Device, FANC, billing and institution rules pinned: licences by the day, repeats that record nothing,
serial numbers compared without separators, and every refusal's contract code and field.

Codes and fields are literals copied from the integration contract, never the code's constants.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from domain.billing import BillingNumber
from domain.device import Device
from domain.errors import DomainError, ErrorDetail
from domain.fanc import LegacyFancNumber, check_in_fanc_scope, check_legacy_number_accepted
from domain.institution import Institution
from tests.domain.test_device import (
    FANC,
    FOD,
    HOSPITAL,
    MID_ID,
    NOTICE,
    RIZIV,
    STATEMENT,
    SUPPLIER,
    linked,
    opened,
    recorded,
    reported,
)


def refusal(action: Any, *args: Any, **kwargs: Any) -> ErrorDetail:
    with pytest.raises(DomainError) as refused:
        action(*args, **kwargs)
    (detail,) = refused.value.details
    return detail


def refused_as(action: Any, *args: Any, **kwargs: Any) -> tuple[str, str | None]:
    detail = refusal(action, *args, **kwargs)
    return detail.code, detail.field


# FANC licences, judged by the day


def licensed(valid_from: date, valid_until: date | None) -> Device:
    device = linked()
    device.record_licence("L-1", valid_from, valid_until, None, **FANC)
    device.collect_events()
    return device


def test_a_licence_is_valid_on_the_day_it_starts() -> None:
    assert licensed(date(2024, 5, 1), None).licence_valid_on(date(2024, 5, 1))
    assert not licensed(date(2024, 5, 1), None).licence_valid_on(date(2024, 4, 30))


def test_a_one_day_licence_is_valid_on_that_day_only() -> None:
    device = licensed(date(2024, 5, 1), date(2024, 5, 1))
    assert [device.licence_valid_on(date(2024, 5, d)) for d in (1, 2)] == [True, False]
    assert not device.licence_valid_on(date(2024, 4, 30))


def test_without_a_day_only_a_licence_without_an_end_counts() -> None:
    assert licensed(date(2024, 5, 1), None).licence_valid_on(None)
    assert not licensed(date(2024, 5, 1), date(2030, 1, 1)).licence_valid_on(None)
    assert not linked().licence_valid_on(None)


def test_any_one_of_several_licences_makes_the_device_licensed() -> None:
    device = licensed(date(2020, 1, 1), date(2020, 12, 31))
    device.record_licence("L-2", date(2024, 1, 1), None, None, **FANC)
    assert device.licence_valid_on(date(2024, 6, 1))
    assert device.licence_valid_on(date(2020, 6, 1))
    assert not device.licence_valid_on(date(2022, 6, 1))


def test_a_licence_that_ends_before_it_starts_is_refused() -> None:
    detail = refusal(linked().record_licence, "L-1", date(2024, 5, 2), date(2024, 5, 1), None, **FANC)
    assert (detail.code, detail.field, detail.message) == (
        "schema",
        "data.valid_until",
        "a licence cannot end before it starts",
    )


def test_the_same_licence_again_records_nothing_and_a_new_validity_is_recorded() -> None:
    device = licensed(date(2024, 5, 1), None)
    assert device.record_licence("L-1", date(2024, 5, 1), None, None, **FANC) is False
    assert recorded(device) == []
    assert device.record_licence("L-1", date(2024, 5, 1), date(2025, 5, 1), "FA-1", **FANC) is True
    (event,) = device.collect_events()
    assert type(event).__name__ == "LicenceRecorded"
    assert (event.licence_ref, event.valid_until, event.legacy_number) == (  # type: ignore[attr-defined]
        "L-1",
        date(2025, 5, 1),
        "FA-1",
    )
    assert (event.source, event.command_id) == ("fanc", "n-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("device", "code", "field"),
    [
        (lambda: opened(), "device_unknown", "data.mid_id"),
        (lambda: reported("MRI"), "not_in_fanc_scope", "data.mid_id"),
    ],
)
def test_a_licence_needs_a_reported_device_in_fancs_scope(device: Any, code: str, field: str) -> None:
    assert refused_as(device().record_licence, "L-1", date(2024, 1, 1), None, None, **FANC) == (code, field)


def test_a_decommissioned_device_gets_no_licence() -> None:
    device = linked()
    device.decommission(date(2024, 6, 1), "replaced", **HOSPITAL)
    detail = refusal(device.record_licence, "L-1", date(2024, 1, 1), None, None, **FANC)
    assert (detail.code, detail.field) == ("device_decommissioned", "data.mid_id")
    assert detail.message == f"the device carrying {MID_ID} was decommissioned on 2024-06-01"


def test_a_licence_missing_on_the_billing_day_is_named_with_the_day() -> None:
    device = linked()
    missing = device.missing_billing_requirements(date(2024, 6, 1))
    assert [(m.code, m.field, m.message) for m in missing] == [
        (
            "requirements_not_met",
            "device.fanc_licence",
            f"the CT carrying {MID_ID} has no FANC licence valid on 2024-06-01",
        )
    ]
    without_day = device.missing_billing_requirements(None)
    assert without_day[0].message == f"the CT carrying {MID_ID} has no FANC licence without an end date"


def test_every_billing_requirement_names_its_field_and_reason() -> None:
    device = reported(use="research")
    device.decommission(date(2024, 6, 1), "replaced", **HOSPITAL)
    missing = device.missing_billing_requirements(date(2024, 6, 1))
    assert [(m.code, m.field) for m in missing] == [
        ("requirements_not_met", "device.linked"),
        ("requirements_not_met", "device.use"),
        ("requirements_not_met", "device.status"),
        ("requirements_not_met", "device.fanc_licence"),
    ]
    assert missing[0].message == f"{MID_ID} is not yet linked to its device by the FOD"
    assert missing[1].message == (
        f"the device carrying {MID_ID} is for research use; billing numbers are for clinical or mixed use"
    )


@pytest.mark.parametrize(("use", "billable"), [("clinical", True), ("mixed", True), ("research", False)])
def test_clinical_and_mixed_use_are_billable(use: str, billable: bool) -> None:
    device = licensed(date(2024, 1, 1), None) if use == "clinical" else None
    device = device or linked(use=use)
    device.record_licence("L-1", date(2024, 1, 1), None, None, **FANC)
    assert (device.missing_billing_requirements(date(2024, 6, 1)) == []) is billable


# repeats record nothing


def test_the_same_installation_notice_again_records_nothing() -> None:
    device = opened()
    assert device.record_installation(**NOTICE, **SUPPLIER) is True
    device.collect_events()
    assert device.record_installation(**NOTICE, **SUPPLIER) is False
    assert recorded(device) == []
    assert device.record_installation(**{**NOTICE, "model": "Somatom Force"}, **SUPPLIER) is True


def test_the_same_correction_again_records_nothing() -> None:
    device = reported()
    assert device.correct({"serial_number": "SN-1002"}, "type plate", **FOD) == ["serial_number"]
    (event,) = device.collect_events()
    assert (type(event).__name__, event.reason) == ("Corrected", "type plate")  # type: ignore[attr-defined]
    assert device.provenance["serial_number"] == "fod"
    assert device.correct({"serial_number": "SN-1002"}, "type plate", **FOD) == []
    assert recorded(device) == []


def test_a_correction_needs_a_reported_device_and_a_known_field() -> None:
    assert refused_as(opened().correct, {"model": "X"}, "r", **FOD) == ("device_unknown", "data.mid_id")
    assert refused_as(reported().correct, {"colour": "red"}, "r", **FOD) == (
        "schema",
        "data.corrections.colour",
    )
    assert refused_as(reported().correct, {}, "r", **FOD) == ("schema", "data.corrections")
    assert refused_as(reported().correct, {"model": None}, "r", **FOD) == ("schema", "data.corrections.model")
    assert refused_as(reported().correct, {"use": "leisure"}, "r", **FOD) == (
        "schema",
        "data.corrections.use",
    )


def test_the_same_change_again_records_nothing() -> None:
    device = reported()
    assert device.change({"campus": "Zuid"}, date(2024, 6, 1), **HOSPITAL) == ["campus"]
    device.collect_events()
    assert device.change({"campus": "Zuid"}, date(2024, 6, 1), **HOSPITAL) == []
    assert recorded(device) == []


def test_linking_again_and_mapping_the_same_old_number_again_record_nothing() -> None:
    device = linked()
    assert device.link(**FOD) is False
    assert device.map_legacy_number("FA-1", **FANC) is True
    device.collect_events()
    assert device.map_legacy_number("FA-1", **FANC) is False
    assert recorded(device) == []


# serial numbers are compared without separators or case; other names without case or spacing


@pytest.mark.parametrize("spelling", ["sn1001", "SN 1001", "S/N-1001", "sn.10-01"])
def test_a_serial_number_typed_with_other_separators_is_the_same_serial_number(spelling: str) -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "serial_number": spelling}, **SUPPLIER)
    assert device.open_discrepancies() == []


def test_another_serial_number_is_a_discrepancy_with_both_values() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "serial_number": "SN-1002"}, **SUPPLIER)
    assert device.open_discrepancies() == [
        {
            "field": "serial_number",
            "reported_value": "SN-1001",
            "reported_source": "hospital/H001",
            "supplier_value": "SN-1002",
            "supplier_source": "supplier/S1",
        }
    ]


def test_names_differing_only_in_case_and_spacing_agree_but_separators_in_names_do_not() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "model": " somatom   x.CITE "}, **SUPPLIER)
    assert device.open_discrepancies() == []
    device.record_installation(**{**NOTICE, "model": "Somatom X-cite"}, **SUPPLIER)
    assert [d["field"] for d in device.open_discrepancies()] == ["model"]


def test_a_different_installation_day_institution_or_modality_is_a_discrepancy() -> None:
    device = reported()
    device.record_installation(
        **{**NOTICE, "installed_on": date(2024, 3, 2), "institution": "H002", "modality": "MRI"}, **SUPPLIER
    )
    found = {d["field"]: d for d in device.open_discrepancies()}
    assert sorted(found) == ["installed_on", "institution", "modality"]
    assert (found["installed_on"]["reported_value"], found["installed_on"]["supplier_value"]) == (
        "2024-03-01",
        "2024-03-02",
    )
    assert found["institution"]["reported_value"] == "H001"
    assert found["modality"]["supplier_value"] == "MRI"


def test_a_discrepancy_is_resolved_once_the_record_agrees() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "serial_number": "SN-1002"}, **SUPPLIER)
    device.collect_events()
    device.correct({"serial_number": "SN 1002"}, "type plate", **FOD)
    events = device.collect_events()
    assert [type(e).__name__ for e in events] == ["Corrected", "DiscrepancyResolved"]
    assert (events[1].field, events[1].value) == ("serial_number", "SN 1002")  # type: ignore[attr-defined]
    assert device.open_discrepancies() == []


# refusals with their contract codes and fields


def test_the_device_refusals_carry_the_contracts_codes_and_fields() -> None:
    assert refused_as(opened().change, {"campus": "Z"}, date(2024, 1, 1), **HOSPITAL) == (
        "device_unknown",
        "data.mid_id",
    )
    assert refused_as(reported().change, {"colour": "red"}, date(2024, 1, 1), **HOSPITAL) == (
        "schema",
        "data.changes.colour",
    )
    assert refused_as(linked().change, {"serial_number": "SN-9"}, date(2024, 1, 1), **HOSPITAL) == (
        "midid_already_linked",
        "data.changes.serial_number",
    )
    assert refused_as(opened().report, **{**STATEMENT, "modality": "MRI"}, **HOSPITAL) == (
        "conflict",
        "data.modality",
    )
    assert refused_as(opened().report, **{**STATEMENT, "use": "leisure"}, **HOSPITAL) == (
        "schema",
        "data.use",
    )
    assert refused_as(linked().report, **{**STATEMENT, "serial_number": "SN-9"}, **HOSPITAL) == (
        "midid_already_linked",
        "data.serial_number",
    )
    assert refused_as(opened().link, **FOD) == ("device_unknown", "data.mid_id")
    assert refused_as(opened().decommission, date(2024, 1, 1), "r", **HOSPITAL) == (
        "device_unknown",
        "data.mid_id",
    )
    assert refused_as(
        reported().backfill, "R1", "Siemens", "X", "SN", "Noord", date(2015, 1, 1), "clinical", None, **FOD
    ) == (
        "conflict",
        "data",
    )


def test_the_refusals_messages_say_what_was_wrong() -> None:
    assert (
        refusal(opened().link, **FOD).message == f"no device carrying {MID_ID} was reported to the kadaster"
    )
    assert refusal(opened().report, **{**STATEMENT, "modality": "MRI"}, **HOSPITAL).message == (
        f"{MID_ID} was issued for CT, not for MRI"
    )
    assert refusal(linked().report, **{**STATEMENT, "serial_number": "SN-9"}, **HOSPITAL).message == (
        f"{MID_ID} is linked for good to the device with serial number SN-1001"
    )
    assert refusal(reported().change, {}, date(2024, 1, 1), **HOSPITAL).message == (
        "name at least one field that changes"
    )
    assert refusal(reported().change, {"colour": "red"}, date(2024, 1, 1), **HOSPITAL).message == (
        "'colour' cannot be changed (manufacturer, model, serial_number, campus, installed_on, use can)"
    )
    assert refusal(reported().change, {"model": None}, date(2024, 1, 1), **HOSPITAL).message == (
        "model cannot be emptied"
    )
    assert refusal(reported().change, {"use": "x"}, date(2024, 1, 1), **HOSPITAL).message == (
        "use is one of clinical, research, mixed"
    )


def test_a_device_with_a_billing_number_is_refused_another_and_one_without_cannot_lose_it() -> None:
    device = licensed(date(2024, 1, 1), None)
    assert device.assign_billing_number("B-1", date(2024, 6, 1), **RIZIV) is True
    assert device.assign_billing_number("B-1", date(2024, 6, 1), **RIZIV) is False
    detail = refusal(device.assign_billing_number, "B-2", date(2024, 6, 1), **RIZIV)
    assert (detail.code, detail.field) == ("conflict", "data.billing_number")
    assert detail.message == f"the device carrying {MID_ID} has billing number B-1; withdraw it first"
    assert device.withdraw_billing_number("audit", None, **RIZIV) == "B-1"
    detail = refusal(device.withdraw_billing_number, "audit", None, **RIZIV)
    assert (detail.code, detail.field) == ("conflict", "data.mid_id")
    assert detail.message == f"the device carrying {MID_ID} has no billing number"


def test_a_second_old_fanc_number_conflicts() -> None:
    device = linked()
    device.map_legacy_number("FA-1", **FANC)
    detail = refusal(device.map_legacy_number, "FA-2", **FANC)
    assert (detail.code, detail.field) == ("conflict", "data.legacy_number")
    assert detail.message == f"the device carrying {MID_ID} already had old FANC number FA-1"
    assert refused_as(reported("MRI").map_legacy_number, "FA-1", **FANC) == (
        "not_in_fanc_scope",
        "data.mid_id",
    )
    assert refused_as(opened().map_legacy_number, "FA-1", **FANC) == ("device_unknown", "data.mid_id")


def test_transfers_are_refused_under_the_identifier_field() -> None:
    assert refused_as(reported("MRI").receive_transfer, "2024Q1", date(2024, 4, 1), None, **FANC) == (
        "not_in_fanc_scope",
        "data.identifier",
    )
    assert refused_as(opened().receive_transfer, "2024Q1", date(2024, 4, 1), None, **FANC) == (
        "device_unknown",
        "data.identifier",
    )


# FANC's transition


def test_old_fanc_numbers_are_refused_from_the_first_of_october_2023() -> None:
    check_legacy_number_accepted("FA-1", date(2023, 9, 30), True)
    detail = refusal(check_legacy_number_accepted, "FA-1", date(2023, 10, 1), True)
    assert (detail.code, detail.field) == ("legacy_number_expired", "data.identifier")
    assert detail.message == (
        "old FANC number FA-1 is no longer accepted: since 2023-10-01 transfers carry the MID-ID"
    )
    detail = refusal(check_legacy_number_accepted, "FA-1", date(2023, 1, 1), False)
    assert (detail.code, detail.field) == ("legacy_number_expired", "data.identifier")
    assert detail.message == (
        "old FANC number FA-1 belongs to a device registered after 2022-10-01: "
        "its transfers carry the MID-ID only"
    )


def test_an_mri_is_outside_fancs_scope_and_says_why() -> None:
    check_in_fanc_scope(MID_ID, "PET-CT")
    detail = refusal(check_in_fanc_scope, MID_ID, "MRI")
    assert (detail.code, detail.field) == ("not_in_fanc_scope", "data.mid_id")
    assert detail.message == (
        f"{MID_ID} is an MRI, which emits no ionising radiation: FANC rules do not apply"
    )


def test_an_old_fanc_number_is_kept_normalised_and_maps_to_one_mid_id() -> None:
    legacy = LegacyFancNumber.map(" fa 12 ", MID_ID, **FANC)
    assert (legacy.legacy_number, legacy.mid_id) == ("FA12", MID_ID)
    legacy.check_maps_to(MID_ID)
    detail = refusal(legacy.check_maps_to, "MID-0000002-92")
    assert (detail.code, detail.field) == ("conflict", "data.legacy_number")
    assert detail.message == f"old FANC number FA12 is already mapped to {MID_ID}"


# billing numbers: one device at a time


def test_a_billing_number_is_kept_normalised_and_moves_only_once_released() -> None:
    number = BillingNumber.assign(" 123 ab ", MID_ID, **RIZIV)
    assert (number.billing_number, number.mid_id) == ("123AB", MID_ID)
    detail = refusal(number.reassign, "MID-0000002-92", **RIZIV)
    assert (detail.code, detail.field) == ("conflict", "data.billing_number")
    assert detail.message == f"billing number 123AB is on the device of {MID_ID}"
    assert number.reassign(MID_ID, **RIZIV) is False
    number.collect_events()
    number.release("decommissioned", **RIZIV)
    (released,) = number.collect_events()
    assert (type(released).__name__, released.mid_id, released.reason) == (  # type: ignore[attr-defined]
        "Released",
        MID_ID,
        "decommissioned",
    )
    number.release("again", **RIZIV)
    assert number.collect_events() == []
    assert number.reassign("MID-0000002-92", **RIZIV) is True
    (moved,) = number.collect_events()
    assert (moved.mid_id, moved.source, moved.command_id) == ("MID-0000002-92", "riziv", "r-1")  # type: ignore[attr-defined]


# institutions


def test_an_institutions_region_is_one_of_belgiums_three() -> None:
    facts = {"name": "AZ", "province": "Antwerpen", "campuses": ["Noord"]}
    for region in ("flemish", "brussels", "wallonia"):
        Institution.register("H001", **facts, region=region, **FOD)
    detail = refusal(Institution.register, "H001", **facts, region="lapland", **FOD)
    assert (detail.code, detail.field) == ("schema", "data.region")
    assert detail.message == "'lapland' is not a region (flemish, brussels, wallonia)"


# what the events record: everything a replay and the read models need


def last_events(device: Device) -> list[Any]:
    return list(device.collect_events())


def test_a_backfill_records_the_fods_whole_statement() -> None:
    device = opened("PET-CT")
    device.backfill(
        "R1", "GE", "Discovery", "SN-7", "Noord", date(2015, 1, 1), "mixed", date(2016, 2, 1), **FOD
    )
    (event,) = last_events(device)
    assert {k: getattr(event, k) for k in ("legacy_ref", "modality", "manufacturer", "model")} == {
        "legacy_ref": "R1",
        "modality": "PET-CT",
        "manufacturer": "GE",
        "model": "Discovery",
    }
    assert (event.serial_number, event.campus, event.installed_on, event.use) == (
        "SN-7",
        "Noord",
        date(2015, 1, 1),
        "mixed",
    )
    assert (event.registered_on, event.registered_before_midid) == (date(2016, 2, 1), True)
    assert refusal(
        opened().backfill, "R1", "GE", "D", "S", "N", date(2015, 1, 1), "leisure", None, **FOD
    ).field == ("data.use")
    detail = refusal(
        reported().backfill, "R1", "GE", "D", "S", "N", date(2015, 1, 1), "clinical", None, **FOD
    )
    assert detail.message == f"the device carrying {MID_ID} is already in the kadaster"


def test_a_backfill_is_reconciled_with_an_earlier_notice_under_the_fods_name() -> None:
    device = opened()
    device.record_installation(**{**NOTICE, "serial_number": "SN-9"}, **SUPPLIER)
    device.collect_events()
    device.backfill(
        "R1", "Siemens", "Somatom X.cite", "SN-1001", "Noord", date(2024, 3, 1), "clinical", None, **FOD
    )
    _, discrepancy = last_events(device)
    assert (discrepancy.field, discrepancy.reported_source, discrepancy.source) == (
        "serial_number",
        "fod",
        "fod",
    )


def test_changes_decommissioning_and_transfers_record_their_dates_and_reasons() -> None:
    device = licensed(date(2024, 1, 1), None)
    device.change({"campus": "Zuid"}, date(2024, 5, 1), **HOSPITAL)
    (changed,) = last_events(device)
    assert (changed.changes, changed.effective_on) == ({"campus": "Zuid"}, date(2024, 5, 1))
    device.receive_transfer("2023Q1", date(2023, 4, 1), None, **FANC)
    (transfer,) = last_events(device)
    assert (transfer.period, transfer.received_on, transfer.legacy_number) == (
        "2023Q1",
        date(2023, 4, 1),
        None,
    )
    assert device.transfers == [{"period": "2023Q1", "received_on": date(2023, 4, 1), "legacy_number": None}]
    device.assign_billing_number("B-1", date(2024, 6, 1), **RIZIV)
    (assigned,) = last_events(device)
    assert assigned.billing_number == "B-1"
    assert device.decommission(date(2024, 7, 1), "replaced", **HOSPITAL) == "B-1"
    decommissioned, withdrawn = last_events(device)
    assert (decommissioned.effective_on, decommissioned.reason) == (date(2024, 7, 1), "replaced")
    assert (withdrawn.billing_number, withdrawn.reason, withdrawn.effective_on) == (
        "B-1",
        "device decommissioned",
        date(2024, 7, 1),
    )
    assert (withdrawn.source, withdrawn.command_id) == ("hospital/H001", "h-1")
    assert device.decommission_reason == "replaced"
    missing = device.missing_billing_requirements(date(2024, 8, 1))
    assert [(m.field, m.message) for m in missing] == [
        ("device.status", f"the device carrying {MID_ID} was decommissioned on 2024-07-01")
    ]


def test_a_withdrawn_billing_number_is_recorded_with_its_reason_and_day() -> None:
    device = licensed(date(2024, 1, 1), None)
    device.assign_billing_number("B-1", date(2024, 6, 1), **RIZIV)
    device.collect_events()
    device.withdraw_billing_number("audit", date(2024, 6, 30), **RIZIV)
    (withdrawn,) = last_events(device)
    assert (withdrawn.billing_number, withdrawn.reason, withdrawn.effective_on) == (
        "B-1",
        "audit",
        date(2024, 6, 30),
    )
    assert device.billing_number is None


def test_a_transfer_under_an_old_number_is_judged_by_its_receipt_and_recorded_with_it() -> None:
    device = opened()
    device.backfill("R1", "Siemens", "X", "SN-1", "Noord", date(2015, 1, 1), "clinical", None, **FOD)
    device.collect_events()
    device.receive_transfer("2022Q4", date(2023, 1, 15), "FA-1", **FANC)
    (transfer,) = last_events(device)
    assert transfer.legacy_number == "FA-1"
    assert refusal(device.receive_transfer, "2023Q3", date(2023, 10, 1), "FA-1", **FANC).message == (
        "old FANC number FA-1 is no longer accepted: since 2023-10-01 transfers carry the MID-ID"
    )


def test_the_link_event_names_the_mid_id() -> None:
    device = reported()
    device.link(**FOD)
    (event,) = last_events(device)
    assert event.mid_id == MID_ID
    assert device.status == "linked"


def test_an_unchanged_discrepancy_is_not_recorded_again() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "serial_number": "SN-1002"}, **SUPPLIER)
    device.collect_events()
    device.change({"campus": "Zuid"}, date(2024, 6, 1), **HOSPITAL)
    assert recorded(device) == ["Changed"]


def test_fields_the_hospital_never_stated_are_its_own_by_default() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "institution": "H002"}, **SUPPLIER)
    (found,) = device.open_discrepancies()
    assert (found["field"], found["reported_source"], found["supplier_source"]) == (
        "institution",
        "hospital/H001",
        "supplier/S1",
    )


def test_an_mri_is_refused_by_fanc_naming_its_mid_id() -> None:
    detail = refusal(reported("MRI").record_licence, "L-1", date(2024, 1, 1), None, None, **FANC)
    assert detail.message == f"{MID_ID} is an MRI, which emits no ionising radiation: FANC rules do not apply"
