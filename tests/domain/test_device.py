"""The device record's rules: given what was recorded, when a command, then events or a domain error."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from domain.billing import BillingNumber
from domain.device import Device
from domain.errors import DomainError
from domain.fanc import LegacyFancNumber

MID_ID = "MID-0000001-95"
HOSPITAL: dict[str, Any] = {"source": "hospital/H001", "command_id": "h-1"}
SUPPLIER: dict[str, Any] = {"source": "supplier/S1", "command_id": "s-1"}
FOD: dict[str, Any] = {"source": "fod", "command_id": "f-1"}
FANC: dict[str, Any] = {"source": "fanc", "command_id": "n-1"}
RIZIV: dict[str, Any] = {"source": "riziv", "command_id": "r-1"}

STATEMENT: dict[str, Any] = {
    "modality": "CT",
    "manufacturer": "Siemens",
    "model": "Somatom X.cite",
    "serial_number": "SN-1001",
    "campus": "Campus Noord",
    "installed_on": date(2024, 3, 1),
    "use": "clinical",
}
NOTICE: dict[str, Any] = {
    "supplier": "S1",
    "institution": "H001",
    "modality": "CT",
    "manufacturer": "Siemens",
    "model": "Somatom X.cite",
    "serial_number": "SN-1001",
    "installed_on": date(2024, 3, 1),
}


def recorded(device: Device) -> list[str]:
    return [type(e).__name__ for e in device.collect_events()]


def opened(modality: str = "CT") -> Device:
    device = Device.open(MID_ID, "H001", modality, **HOSPITAL)
    device.collect_events()
    return device


def reported(modality: str = "CT", **overrides: Any) -> Device:
    device = opened(modality)
    device.report(**{**STATEMENT, "modality": modality, **overrides}, **HOSPITAL)
    device.collect_events()
    return device


def linked(modality: str = "CT", **overrides: Any) -> Device:
    device = reported(modality, **overrides)
    device.link(**FOD)
    device.collect_events()
    return device


class Refused:
    """Asserts that a block is refused with a domain error of the given code."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.error: DomainError | None = None

    def __enter__(self) -> Refused:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> bool:
        assert isinstance(error, DomainError), f"expected a refusal with {self.code}, got {error!r}"
        assert error.code == self.code, error.details
        self.error = error
        return True


def refused(code: str) -> Refused:
    return Refused(code)


def test_a_report_becomes_the_kadaster_record_with_the_hospital_as_its_source() -> None:
    device = opened()
    device.report(**STATEMENT, **HOSPITAL)
    assert recorded(device) == ["Reported"]
    assert device.status == "reported"
    assert device.record["serial_number"] == "SN-1001"
    assert set(device.provenance.values()) == {"hospital/H001"}


def test_a_report_of_another_modality_than_the_mid_ids_conflicts() -> None:
    with refused("conflict") as refusal:
        opened().report(**{**STATEMENT, "modality": "MRI"}, **HOSPITAL)
    assert refusal.error is not None and refusal.error.details[0].field == "data.modality"


def test_the_same_report_again_records_nothing() -> None:
    device = reported()
    assert device.report(**STATEMENT, **HOSPITAL) is False
    assert recorded(device) == []


def test_a_second_report_before_linking_restates_the_hospitals_statement() -> None:
    device = reported()
    device.report(**{**STATEMENT, "campus": "Campus Zuid"}, **HOSPITAL)
    (event,) = device.collect_events()
    assert type(event).__name__ == "Reported"
    assert event.restated is True  # type: ignore[attr-defined]
    assert device.record["campus"] == "Campus Zuid"


def test_once_linked_a_report_of_another_serial_number_is_refused() -> None:
    device = linked()
    with refused("midid_already_linked"):
        device.report(**{**STATEMENT, "serial_number": "SN-9999"}, **HOSPITAL)


def test_once_linked_a_report_of_the_same_device_restates_it() -> None:
    device = linked()
    device.report(**{**STATEMENT, "serial_number": "sn 1001", "use": "mixed"}, **HOSPITAL)
    assert recorded(device) == ["Reported"]


def test_the_suppliers_disagreements_with_the_report_are_recorded_with_both_values_and_sources() -> None:
    device = opened()
    device.record_installation(**{**NOTICE, "serial_number": "SN-1002", "model": "Somatom Force"}, **SUPPLIER)
    assert recorded(device) == ["InstallationRecorded"]
    device.report(**STATEMENT, **HOSPITAL)
    events = device.collect_events()
    assert [type(e).__name__ for e in events] == ["Reported", "DiscrepancyRecorded", "DiscrepancyRecorded"]
    serial = events[2]
    assert serial.field == "serial_number"  # type: ignore[attr-defined]
    assert serial.reported_value == "SN-1001"  # type: ignore[attr-defined]
    assert serial.reported_source == "hospital/H001"  # type: ignore[attr-defined]
    assert serial.supplier_value == "SN-1002"  # type: ignore[attr-defined]
    assert serial.supplier_source == "supplier/S1"  # type: ignore[attr-defined]
    assert [d["field"] for d in device.open_discrepancies()] == ["model", "serial_number"]


def test_spacing_and_case_are_no_disagreement() -> None:
    device = reported()
    device.record_installation(
        **{**NOTICE, "serial_number": "sn-1001 ", "manufacturer": "SIEMENS"}, **SUPPLIER
    )
    assert recorded(device) == ["InstallationRecorded"]


def test_a_supplier_naming_another_institution_is_a_discrepancy_and_changes_no_holder() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "institution": "H002"}, **SUPPLIER)
    assert recorded(device) == ["InstallationRecorded", "DiscrepancyRecorded"]
    assert device.institution == "H001"
    assert device.open_discrepancies()[0]["supplier_value"] == "H002"


def test_a_supplier_stating_another_modality_is_a_discrepancy_even_before_the_report() -> None:
    device = opened()
    device.record_installation(**{**NOTICE, "modality": "PET-CT"}, **SUPPLIER)
    assert recorded(device) == ["InstallationRecorded", "DiscrepancyRecorded"]
    assert device.status == "announced"


def test_a_change_that_makes_both_statements_agree_resolves_the_discrepancy() -> None:
    device = reported()
    device.record_installation(**{**NOTICE, "installed_on": date(2024, 3, 4)}, **SUPPLIER)
    device.collect_events()
    device.change({"installed_on": date(2024, 3, 4)}, date(2024, 3, 4), **HOSPITAL)
    assert recorded(device) == ["Changed", "DiscrepancyResolved"]
    assert device.open_discrepancies() == []


def test_a_change_records_only_what_really_changes() -> None:
    device = reported()
    assert device.change(
        {"campus": "Campus Zuid", "model": "Somatom X.cite"}, date(2024, 6, 1), **HOSPITAL
    ) == ["campus"]
    (event,) = device.collect_events()
    assert event.changes == {"campus": "Campus Zuid"}  # type: ignore[attr-defined]
    assert device.change({"campus": "Campus Zuid"}, date(2024, 6, 2), **HOSPITAL) == []
    assert recorded(device) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, "schema"),
        ({"modality": "MRI"}, "schema"),
        ({"use": "leisure"}, "schema"),
        ({"campus": None}, "schema"),
    ],
)
def test_a_change_names_known_fields_with_values(changes: dict[str, Any], code: str) -> None:
    with refused(code):
        reported().change(changes, date(2024, 6, 1), **HOSPITAL)


def test_a_device_that_was_never_reported_cannot_change() -> None:
    with refused("device_unknown"):
        opened().change({"campus": "Campus Zuid"}, date(2024, 6, 1), **HOSPITAL)


def test_a_serial_number_may_be_fixed_before_linking_but_not_after() -> None:
    device = reported()
    device.change({"serial_number": "SN-1010"}, date(2024, 3, 2), **HOSPITAL)
    device.link(**FOD)
    with refused("midid_already_linked"):
        device.change({"serial_number": "SN-2020"}, date(2024, 3, 3), **HOSPITAL)


def test_the_fod_corrects_the_record_and_becomes_the_source_of_the_corrected_field() -> None:
    device = linked()
    device.record_installation(**{**NOTICE, "serial_number": "SN-1002"}, **SUPPLIER)
    device.collect_events()
    assert device.correct({"serial_number": "SN-1002"}, "type plate checked", **FOD) == ["serial_number"]
    assert recorded(device) == ["Corrected", "DiscrepancyResolved"]
    assert device.provenance["serial_number"] == "fod"


def test_a_decommissioned_device_takes_no_more_changes() -> None:
    device = reported()
    device.decommission(date(2030, 1, 1), "replaced", **HOSPITAL)
    assert recorded(device) == ["Decommissioned"]
    assert device.status == "decommissioned"
    with refused("device_decommissioned"):
        device.change({"campus": "Campus Zuid"}, date(2030, 2, 1), **HOSPITAL)
    with refused("device_decommissioned"):
        device.decommission(date(2030, 1, 2), "again", **HOSPITAL)


def test_a_suppliers_notice_arriving_after_decommissioning_is_still_reconciled() -> None:
    device = reported()
    device.decommission(date(2030, 1, 1), "replaced", **HOSPITAL)
    device.collect_events()
    device.record_installation(**{**NOTICE, "model": "Somatom Force"}, **SUPPLIER)
    assert recorded(device) == ["InstallationRecorded", "DiscrepancyRecorded"]


def test_decommissioning_ends_the_billing_number_with_it() -> None:
    device = linked()
    device.record_licence("L-1", date(2024, 1, 1), None, None, **FANC)
    device.assign_billing_number("B-1", date(2024, 4, 23), **RIZIV)
    device.collect_events()
    assert device.decommission(date(2030, 1, 1), "replaced", **HOSPITAL) == "B-1"
    assert recorded(device) == ["Decommissioned", "BillingNumberWithdrawn"]
    assert device.billing_number is None


def test_linking_is_recorded_once() -> None:
    device = reported()
    assert device.link(**FOD) is True
    assert device.link(**FOD) is False
    assert recorded(device) == ["Linked"]
    assert device.status == "linked"


def test_a_device_known_only_from_its_supplier_cannot_be_linked() -> None:
    device = opened()
    device.record_installation(**NOTICE, **SUPPLIER)
    with refused("device_unknown"):
        device.link(**FOD)


@pytest.mark.parametrize(
    ("installed_on", "registered_on", "before"),
    [
        (date(2015, 5, 1), None, True),
        (date(2022, 9, 30), None, True),
        (date(2022, 10, 1), None, False),
        (date(2015, 5, 1), date(2023, 1, 1), False),
    ],
)
def test_a_backfilled_device_keeps_whether_it_was_registered_before_the_mid_id(
    installed_on: date, registered_on: date | None, before: bool
) -> None:
    device = opened()
    fields = {k: v for k, v in STATEMENT.items() if k != "modality"}
    device.backfill("CT1", **{**fields, "installed_on": installed_on}, registered_on=registered_on, **FOD)
    assert recorded(device) == ["Backfilled"]
    assert device.registered_before_midid is before
    assert device.provenance["model"] == "fod"


def test_mri_is_outside_fancs_scope() -> None:
    device = reported("MRI")
    with refused("not_in_fanc_scope"):
        device.record_licence("L-1", date(2024, 1, 1), None, None, **FANC)
    with refused("not_in_fanc_scope"):
        device.receive_transfer("2024Q1", date(2024, 4, 1), None, **FANC)
    with refused("not_in_fanc_scope"):
        device.map_legacy_number("F-1", **FANC)


def backfilled(registered_on: date) -> Device:
    device = opened()
    fields = {k: v for k, v in STATEMENT.items() if k != "modality"}
    device.backfill("CT1", **fields, registered_on=registered_on, **FOD)
    device.link(**FOD)
    device.map_legacy_number("F-1", **FANC)
    device.collect_events()
    return device


def test_an_old_fanc_number_is_accepted_in_transfers_until_the_transition_ends() -> None:
    device = backfilled(date(2016, 1, 1))
    device.receive_transfer("2023Q3", date(2023, 9, 30), "F-1", **FANC)
    assert recorded(device) == ["TransferReceived"]
    with refused("legacy_number_expired"):
        device.receive_transfer("2023Q4", date(2023, 10, 1), "F-1", **FANC)
    device.receive_transfer("2023Q4", date(2023, 10, 1), None, **FANC)
    assert recorded(device) == ["TransferReceived"]


def test_an_old_fanc_number_of_a_device_registered_after_the_mid_id_is_not_accepted() -> None:
    device = backfilled(date(2022, 11, 1))
    with refused("legacy_number_expired"):
        device.receive_transfer("2023Q1", date(2023, 4, 1), "F-1", **FANC)


def test_a_device_has_one_old_fanc_number() -> None:
    device = backfilled(date(2016, 1, 1))
    assert device.map_legacy_number("F-1", **FANC) is False
    with refused("conflict"):
        device.map_legacy_number("F-2", **FANC)


def test_every_missing_billing_requirement_is_listed() -> None:
    device = reported(use="research")
    device.decommission(date(2024, 4, 1), "broken", **HOSPITAL)
    with refused("requirements_not_met") as refusal:
        device.assign_billing_number("B-1", date(2024, 4, 23), **RIZIV)
    assert refusal.error is not None
    assert [d.field for d in refusal.error.details] == [
        "device.linked",
        "device.use",
        "device.status",
        "device.fanc_licence",
    ]
    assert {d.code for d in refusal.error.details} == {"requirements_not_met"}


def test_an_mri_needs_no_fanc_licence_for_its_billing_number() -> None:
    device = linked("MRI")
    device.assign_billing_number("B-1", date(2024, 4, 23), **RIZIV)
    assert recorded(device) == ["BillingNumberAssigned"]


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "day", "valid"),
    [
        (date(2024, 1, 1), None, date(2024, 4, 23), True),
        (date(2024, 1, 1), date(2024, 4, 23), date(2024, 4, 23), True),
        (date(2024, 1, 1), date(2024, 4, 22), date(2024, 4, 23), False),
        (date(2024, 5, 1), None, date(2024, 4, 23), False),
        (date(2024, 5, 1), None, None, True),
        (date(2024, 1, 1), date(2030, 1, 1), None, False),
    ],
)
def test_the_fanc_licence_must_be_valid_on_the_day_of_the_billing_decision(
    valid_from: date, valid_until: date | None, day: date | None, valid: bool
) -> None:
    device = linked()
    device.record_licence("L-1", valid_from, valid_until, None, **FANC)
    missing = [d.field for d in device.missing_billing_requirements(day)]
    assert missing == ([] if valid else ["device.fanc_licence"])


def test_a_device_keeps_its_billing_number_until_it_is_withdrawn() -> None:
    device = linked("MRI")
    device.assign_billing_number("B-1", None, **RIZIV)
    assert device.assign_billing_number("B-1", None, **RIZIV) is False
    with refused("conflict"):
        device.assign_billing_number("B-2", None, **RIZIV)
    assert device.withdraw_billing_number("audit", None, **RIZIV) == "B-1"
    with refused("conflict"):
        device.withdraw_billing_number("audit", None, **RIZIV)
    assert recorded(device) == ["BillingNumberAssigned", "BillingNumberWithdrawn"]


def test_a_billing_number_sits_on_one_device_at_a_time() -> None:
    number = BillingNumber.assign(" b-1 ", MID_ID, **RIZIV)
    assert number.billing_number == "B-1"
    with refused("conflict"):
        number.reassign("MID-0000002-92", **RIZIV)
    number.release("withdrawn", **RIZIV)
    assert number.reassign("MID-0000002-92", **RIZIV) is True
    assert [type(e).__name__ for e in number.collect_events()] == ["Assigned", "Released", "Reassigned"]


def test_an_old_fanc_number_maps_to_one_mid_id() -> None:
    legacy = LegacyFancNumber.map("f 1", MID_ID, **FANC)
    legacy.check_maps_to(MID_ID)
    with refused("conflict"):
        legacy.check_maps_to("MID-0000002-92")
