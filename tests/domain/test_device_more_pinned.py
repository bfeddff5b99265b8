"""A device's campus reconciled with its institution's campuses, pinned: the discrepancy names both
values, both sources and the command that found it, is recorded once, and is resolved with the
campus the record now holds. Also the rate of devices per 100,000 inhabitants, exactly.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.device import Device
from domain.reference import per_100k
from tests.domain.test_device import FOD, linked

CHECK: dict[str, Any] = {"source": "fod", "command_id": "campus-check-1"}


def events(device: Device) -> list[tuple[str, dict[str, Any]]]:
    skipped = {"originator_id", "originator_version", "timestamp"}
    return [
        (type(e).__name__, {k: v for k, v in vars(e).items() if k not in skipped})
        for e in device.collect_events()
    ]


def with_campus_discrepancy() -> Device:
    device = linked()
    device.reconcile_campus(["Campus Zuid", "Campus West"], **CHECK)
    device.collect_events()
    return device


def test_a_campus_the_institution_does_not_have_is_a_discrepancy_with_both_values_sources_and_command() -> (
    None
):
    device = linked()
    device.reconcile_campus(["Campus Zuid", "Campus West"], **CHECK)
    assert events(device) == [
        (
            "DiscrepancyRecorded",
            {
                "field": "campus",
                "reported_value": "Campus Noord",
                "reported_source": "hospital/H001",
                "supplier_value": "Campus Zuid, Campus West",
                "supplier_source": "fod",
                "source": "fod",
                "command_id": "campus-check-1",
            },
        )
    ]
    assert device.discrepancies["campus"]["reported_value"] == "Campus Noord"


def test_the_same_campus_discrepancy_found_again_records_nothing() -> None:
    device = with_campus_discrepancy()
    device.reconcile_campus(["Campus Zuid"], source="fod", command_id="campus-check-2")
    assert events(device) == []


def test_a_campus_the_fod_corrected_is_reported_as_the_fods_in_the_discrepancy() -> None:
    device = linked()
    device.correct({"campus": "Campus Oost"}, "site visit", **FOD)
    device.collect_events()
    device.reconcile_campus(["Campus Zuid"], **CHECK)
    ((name, recorded),) = events(device)
    assert (name, recorded["reported_value"], recorded["reported_source"]) == (
        "DiscrepancyRecorded",
        "Campus Oost",
        "fod",
    )


def test_a_campus_the_institution_now_has_resolves_the_discrepancy_with_that_campus() -> None:
    device = with_campus_discrepancy()
    device.reconcile_campus(["Campus Noord", "Campus Zuid"], source="fod", command_id="campus-check-3")
    assert events(device) == [
        (
            "DiscrepancyResolved",
            {"field": "campus", "value": "Campus Noord", "source": "fod", "command_id": "campus-check-3"},
        )
    ]
    assert "campus" not in device.discrepancies


def test_a_campus_change_that_the_institution_has_resolves_the_discrepancy() -> None:
    device = with_campus_discrepancy()
    device.change({"campus": "Campus Zuid"}, date(2024, 6, 1), source="hospital/H001", command_id="h-2")
    device.collect_events()
    device.reconcile_campus(["Campus Zuid"], **CHECK)
    ((name, resolved),) = events(device)
    assert (name, resolved["value"]) == ("DiscrepancyResolved", "Campus Zuid")


def test_devices_per_100k_inhabitants_multiplies_by_exactly_one_hundred_thousand() -> None:
    assert per_100k(1, 20) == 5000.0
    assert per_100k(3, 40_000) == 7.5
