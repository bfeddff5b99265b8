"""Discrepancies that depend on dates: given events recorded on given days, then what each day shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain.device import Device
from domain.identifiers import MidId, Modality
from domain.mid_id import MidIdRecord
from domain.obligations import after_months, uncovered
from projections.discrepancies import Discrepancies, list_discrepancies
from projections.store import ReadModelStore
from projections.writes import Batch, table_specs

D = date.fromisoformat
HOSPITAL = {"source": "hospital/H001", "command_id": "c"}


def test_uncovered_days_are_the_gaps_between_and_after_licences() -> None:
    licences = [(D("2024-01-01"), D("2024-12-31")), (D("2025-03-01"), None)]
    assert uncovered(D("2024-04-01"), None, licences) == [(D("2025-01-01"), D("2025-02-28"))]
    assert uncovered(D("2024-04-01"), D("2024-06-30"), licences) == []
    assert uncovered(D("2023-06-01"), D("2024-02-01"), licences) == [(D("2023-06-01"), D("2023-12-31"))]
    assert uncovered(D("2024-04-01"), None, licences[:1]) == [(D("2025-01-01"), None)]
    assert uncovered(D("2024-04-01"), None, []) == [(D("2024-04-01"), None)]


def test_months_later_is_the_same_day_or_the_months_last() -> None:
    assert after_months(D("2023-01-31"), 12) == D("2024-01-31")
    assert after_months(D("2024-01-31"), 1) == D("2024-02-29")
    assert after_months(D("2024-02-29"), 12) == D("2025-02-28")


class Days:
    """Applies a domain aggregate's events to the discrepancies read model as if recorded on given days."""

    def __init__(self, store: ReadModelStore) -> None:
        self.store = store
        self.projection = Discrepancies()
        self.specs = table_specs([self.projection])
        with store.transaction() as tx:
            for statement in self.projection.statements(tx.dialect):
                tx.execute(statement)
        self.position = 0

    def on(self, day: str, aggregate: Any, change: Callable[[], Any] | None = None) -> None:
        """One store transaction: its events applied in one batch, written when it ends."""
        if change is not None:
            change()
        moment = datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=UTC)
        events = [type(e)(**{**e.__dict__, "timestamp": moment}) for e in aggregate.collect_events()]
        with self.store.transaction() as tx:
            batch = Batch(tx, self.specs)
            batch.recording = self.position + 1
            self.projection.prefetch(batch, events)
            for event in events:
                self.position += 1
                self.projection.apply(batch, event, self.position)
            batch.flush()

    def shown(self, today: str, state: str = "open", kind: str | None = None) -> list[dict[str, Any]]:
        with self.store.reading() as tx:
            return list_discrepancies(tx, D(today), state, kind=kind)


@pytest.fixture
def days(read_models: Callable[[], ReadModelStore]) -> Days:
    return Days(read_models())


def reported_ct(days: Days, number: int, day: str) -> Device:
    device = Device.open(str(MidId(number)), "H001", "CT", **HOSPITAL)
    device.report(
        "CT", "Siemens", "Somatom", f"SN-{number}", "Noord", D("2024-01-15"), "clinical", **HOSPITAL
    )
    days.on(day, device)
    return device


def test_a_billing_number_without_a_licence_shows_for_the_days_no_licence_covered(days: Days) -> None:
    device = reported_ct(days, 1, "2024-02-01")
    days.on("2024-02-02", device, lambda: device.link("fod", "c"))
    days.on(
        "2024-02-03",
        device,
        lambda: device.record_licence("L1", D("2024-01-01"), D("2024-12-31"), None, "fanc", "c"),
    )
    days.on("2024-04-01", device, lambda: device.assign_billing_number("7001", D("2024-04-01"), "riziv", "c"))
    # Covered until the licence ends; the gap after it is pending until it begins.
    assert days.shown("2024-12-31") == []
    (pending,) = days.shown("2024-12-31", "pending")
    assert (pending["kind"], pending["since"], pending["until"]) == (
        "billing_without_licence",
        "2025-01-01",
        None,
    )
    assert [d["state"] for d in days.shown("2025-02-01")] == ["open"]
    # A new licence from March closes the gap: it shows as open within it, resolved after it.
    days.on(
        "2025-03-05", device, lambda: device.record_licence("L2", D("2025-03-01"), None, None, "fanc", "c")
    )
    (gap,) = days.shown("2025-02-15", kind="billing_without_licence")
    assert (gap["since"], gap["until"], gap["detail"]["billing_number"]) == (
        "2025-01-01",
        "2025-02-28",
        "7001",
    )
    assert days.shown("2025-04-01") == []
    assert [(d["kind"], d["state"]) for d in days.shown("2025-04-01", "resolved")] == [
        ("billing_without_licence", "resolved")
    ]


def test_a_billing_number_left_on_a_device_after_it_left_service_shows_for_those_days(days: Days) -> None:
    device = reported_ct(days, 1, "2024-02-01")
    days.on("2024-02-02", device, lambda: device.link("fod", "c"))
    days.on(
        "2024-02-03", device, lambda: device.record_licence("L1", D("2024-01-01"), None, None, "fanc", "c")
    )
    days.on("2024-04-01", device, lambda: device.assign_billing_number("7001", D("2024-04-01"), "riziv", "c"))
    # The hospital reports on 1 August that the device left service on 30 June; the number goes then.
    days.on("2025-08-01", device, lambda: device.decommission(D("2025-06-30"), "replaced", **HOSPITAL))
    (held,) = days.shown("2025-07-15")
    assert (held["kind"], held["since"], held["until"]) == (
        "billing_after_decommission",
        "2025-06-30",
        "2025-07-31",
    )
    assert days.shown("2025-08-02") == []
    assert [d["kind"] for d in days.shown("2025-08-02", "resolved")] == ["billing_after_decommission"]


def test_a_decommissioning_reported_the_same_day_leaves_no_discrepancy(days: Days) -> None:
    device = reported_ct(days, 1, "2024-02-01")
    days.on("2024-02-02", device, lambda: device.link("fod", "c"))
    days.on(
        "2024-02-03", device, lambda: device.record_licence("L1", D("2024-01-01"), None, None, "fanc", "c")
    )
    days.on("2024-04-01", device, lambda: device.assign_billing_number("7001", D("2024-04-01"), "riziv", "c"))
    days.on("2025-08-01", device, lambda: device.decommission(D("2025-08-01"), "replaced", **HOSPITAL))
    assert days.shown("2099-01-01", "all") == []


def test_a_device_linked_within_thirty_days_never_was_a_discrepancy_and_one_linked_later_was(
    days: Days,
) -> None:
    quick = reported_ct(days, 1, "2024-02-01")
    days.on("2024-03-02", quick, lambda: quick.link("fod", "c"))
    slow = reported_ct(days, 2, "2024-02-01")
    # Thirty days after the report the quick one was linked; the slow one is overdue the day after.
    assert [d["mid_id"] for d in days.shown("2024-03-02")] == []
    assert [d["mid_id"] for d in days.shown("2024-03-03")] == [str(MidId(2))]
    days.on("2024-03-15", slow, lambda: slow.link("fod", "c"))
    (late,) = days.shown("2024-04-01", "all")
    assert (late["kind"], late["mid_id"], late["due_on"], late["state"]) == (
        "not_linked",
        str(MidId(2)),
        "2024-03-03",
        "resolved",
    )
    assert late["resolved"]["event"] == "Device.Linked"


def test_a_mid_id_unused_for_more_than_twelve_months_shows_until_it_is_cancelled(days: Days) -> None:
    kept = MidIdRecord.issue(MidId(1), "H001", Modality.MRI, None, **HOSPITAL)
    days.on("2023-01-31", kept)
    dropped = MidIdRecord.issue(MidId(2), "H001", Modality.CT, None, **HOSPITAL)
    days.on("2023-03-01", dropped)
    days.on("2023-06-01", dropped, lambda: dropped.cancel("H001", "order cancelled", **HOSPITAL))
    assert days.shown("2024-01-31") == []
    (unused,) = days.shown("2024-02-01")
    assert (unused["kind"], unused["mid_id"], unused["since"]) == (
        "midid_unlinked",
        str(MidId(1)),
        "2023-01-31",
    )
    days.on("2024-03-01", kept, lambda: kept.cancel("H001", "not bought", **HOSPITAL))
    assert days.shown("2024-03-02") == []
    assert [d["mid_id"] for d in days.shown("2024-03-02", "resolved")] == [str(MidId(1))]


def test_a_licence_recorded_under_an_old_fanc_number_after_the_transition_is_a_discrepancy(
    days: Days,
) -> None:
    before = reported_ct(days, 1, "2023-01-01")
    days.on(
        "2023-09-30", before, lambda: before.record_licence("L1", D("2016-01-01"), None, "F-1", "fanc", "c")
    )
    after = reported_ct(days, 2, "2023-01-01")
    days.on(
        "2023-10-01", after, lambda: after.record_licence("L2", D("2016-01-01"), None, "F-2", "fanc", "c")
    )
    (found,) = days.shown("2023-10-02", kind="legacy_number_after_transition")
    assert (found["kind"], found["mid_id"], found["detail"]["legacy_number"]) == (
        "legacy_number_after_transition",
        str(MidId(2)),
        "F-2",
    )


def test_supplier_and_hospital_disagreeing_is_open_until_they_agree(days: Days) -> None:
    device = Device.open(str(MidId(1)), "H001", "CT", "supplier/GE", "n")
    device.record_installation(
        "GE", "H001", "CT", "GE", "Revolution", "GE-1", D("2024-01-15"), "supplier/GE", "n"
    )
    days.on("2024-01-20", device)
    # The supplier alone: the device is not reported, and the installation day has passed.
    assert [d["kind"] for d in days.shown("2024-01-20")] == ["not_reported"]
    days.on(
        "2024-01-25",
        device,
        lambda: device.report(
            "CT", "GE", "Revolution", "GE-2", "Noord", D("2024-01-15"), "clinical", **HOSPITAL
        ),
    )
    (mismatch,) = days.shown("2024-01-25")
    assert (mismatch["kind"], mismatch["field"], mismatch["detail"]["supplier_value"]) == (
        "statement_mismatch",
        "serial_number",
        "GE-1",
    )
    days.on("2024-02-01", device, lambda: device.correct({"serial_number": "GE-1"}, "type plate", "fod", "c"))
    assert days.shown("2024-02-02") == []
    resolved = days.shown("2024-02-02", "resolved")
    assert [(d["kind"], d["resolved"]["source"]) for d in resolved] == [
        ("not_reported", "hospital/H001"),
        ("statement_mismatch", "fod"),
    ]
    assert resolved[1]["detail"]["resolved_value"] == "GE-1"
