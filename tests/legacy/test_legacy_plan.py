"""Checking and planning a legacy register, with no store: rows against each other, commands to send."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from services.legacy.checks import FileChecks, row_findings
from services.legacy.plan import plan_backfill, plan_changes, state_after_backfill
from services.legacy.rows import LegacyDevice

ROW = LegacyDevice(
    row=2,
    institution="H001",
    label="CT1",
    modality="CT",
    manufacturer="Siemens",
    model="Somatom",
    serial_number="SN-1001",
    campus="Campus Noord",
    installed_on=date(2015, 3, 1),
    use="clinical",
    fanc_number=None,
    billing_number=None,
    out_of_service=False,
    decommissioned_on=None,
    registered_on=date(2015, 3, 1),
)


def test_a_serial_number_typed_with_other_separators_is_the_same_plate() -> None:
    checks = FileChecks()
    assert checks.check(ROW) == []
    again = replace(ROW, row=3, label="CT2", serial_number="sn 1001")
    assert checks.check(again) == [
        ("serial_number", "Siemens serial number sn 1001 is already on row 2", "conflict")
    ]
    # Another maker may use the same serial number.
    assert checks.check(replace(again, row=4, label="CT3", manufacturer="GE")) == []


def test_an_mri_row_with_a_fanc_number_is_out_of_fancs_scope() -> None:
    found = row_findings(
        modality="MRI",
        use="clinical",
        fanc_number="F-1",
        billing_number=None,
        out_of_service=False,
        installed_on=date(2015, 3, 1),
        decommissioned_on=None,
        registered_on=None,
    )
    assert [(field, code) for field, _, code in found] == [("fanc_number", "not_in_fanc_scope")]


def test_a_row_the_register_already_agrees_with_plans_nothing() -> None:
    state = state_after_backfill(ROW, "MID-0000001-95")
    assert plan_changes(ROW, state, "register.xlsx") == ([], [])


def test_every_command_of_the_import_is_sent_by_the_fod() -> None:
    retired = replace(ROW, out_of_service=True, decommissioned_on=date(2022, 1, 31), billing_number=None)
    licensed = replace(ROW, fanc_number="F-1", billing_number="B-1")
    state = state_after_backfill(ROW, "MID-0000001-95")
    planned = [*plan_changes(retired, state, "f")[0], *plan_changes(licensed, state, "f")[0]]
    assert [command.type for command in planned] == [
        "device.decommission",
        "fanc.legacy-number",
        "fanc.licence",
        "billing.assign",
    ]
    assert {command.source for command in [*planned, plan_backfill(ROW, "f")]} == {"fod"}
