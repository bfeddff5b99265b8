"""After a scripted register, each read model holds exactly what the events say, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from domain.device import device_id
from domain.identifiers import MidId
from projections.projector import Projector
from projections.queries import Queries, QueryError
from services.register import Register
from tests.projections.conftest import answer
from tests.projections.scenario import BACKFILLED_H001, CT_H001, CT_H002, MRI_H001, PETCT_H002, ROUND


class Recorded:
    """The events the scenario recorded, by the command that caused them."""

    def __init__(self, register: Register) -> None:
        notifications = register.recorder.select_notifications(start=0, limit=10_000)
        self.events = [(n.id, register.mapper.to_domain_event(n)) for n in notifications]

    def event(self, command_id: str, event_type: str) -> Any:
        (found,) = [
            e
            for _, e in self.events
            if getattr(e, "command_id", None) == command_id and type(e).__qualname__ == event_type
        ]
        return found

    def said(self, command_id: str, event_type: str, **extra: Any) -> dict[str, Any]:
        e = self.event(command_id, event_type)
        return {"source": e.source, "command_id": command_id, "at": e.timestamp.isoformat(), **extra}

    def day(self, command_id: str, event_type: str) -> str:
        return str(self.event(command_id, event_type).timestamp.date().isoformat())

    def types(self, **where: Any) -> list[str]:
        return [
            type(e).__qualname__
            for _, e in self.events
            if all(getattr(e, k, None) == v for k, v in where.items())
        ]


@pytest.fixture
def recorded(projector: Projector, register: Register) -> Recorded:
    return Recorded(register)


def test_the_kadaster_view_shows_the_hospitals_statement_and_who_said_each_field(
    queries: Queries, recorded: Recorded
) -> None:
    shown = answer(queries, "device", {"mid_id": CT_H001.lower()})
    reported = recorded.said("s07-report", "Device.Reported")
    decommissioned = recorded.said("s12-decommission", "Device.Decommissioned", reason="replaced")
    issued = recorded.said("s04-issue-ct", "MidIdRecord.Issued")
    registered = recorded.said("s01-register-h001", "Institution.Registered")
    assert shown.pop("in_force")["from"] == "2025-06-30"  # the decommissioning, dated
    assert {k: v for k, v in shown.items() if k not in ("provenance", "licences", "discrepancies")} == {
        "mid_id": CT_H001,
        "device_id": str(device_id(CT_H001)),
        "institution": "H001",
        "institution_name": "AZ Voorbeeld",
        "province": "Antwerpen",
        "region": "flemish",
        # The move to the other campus is the hospital's latest word; the supplier's serial never shows.
        "campus": "Campus Zuid",
        "modality": "CT",
        "manufacturer": "Siemens",
        "model": "Somatom X.cite",
        "serial_number": "SN-1001",
        "use": "clinical",
        "installed_on": "2024-03-01",
        "status": "decommissioned",
        "licence_ref": "FANC-L-1",
        "licence_valid_from": "2024-01-01",
        "licence_valid_until": None,
        "legacy_number": None,
        "legacy_ref": None,
        "billing_number": None,
        "registered_on": recorded.day("s07-report", "Device.Reported"),
        "linked_on": recorded.day("s08-link", "Device.Linked"),
        "decommissioned_on": "2025-06-30",
        "decommission_reason": "replaced",
        "open_discrepancies": 1,
        "discrepancy_fields": ["serial_number"],
        "opened_at": recorded.event("s06-notice", "Device.Opened").timestamp.isoformat(),
        "updated_at": recorded.event(
            "s12-decommission", "Device.BillingNumberWithdrawn"
        ).timestamp.isoformat(),
    }
    assert shown["provenance"] == {
        "institution": issued,
        "modality": issued,
        "province": registered,
        "region": registered,
        "manufacturer": reported,
        "model": reported,
        "serial_number": reported,
        "installed_on": reported,
        "use": reported,
        "registered_on": reported,
        "campus": recorded.said("s11-move", "Device.Changed", effective_on="2025-01-01"),
        "linked_on": recorded.said("s08-link", "Device.Linked"),
        "licence": recorded.said("s09-licence", "Device.LicenceRecorded"),
        "billing_number": recorded.said(
            "s12-decommission",
            "Device.BillingNumberWithdrawn",
            reason="device decommissioned",
            effective_on="2025-06-30",
            withdrawn="7001",
        ),
        "decommissioned_on": decommissioned,
        "status": decommissioned,
    }
    assert shown["licences"] == [
        {
            "licence_ref": "FANC-L-1",
            "valid_from": "2024-01-01",
            "valid_until": None,
            "legacy_number": None,
            "source": "fanc",
            "command_id": "s09-licence",
            "recorded_at": recorded.event("s09-licence", "Device.LicenceRecorded").timestamp.isoformat(),
        }
    ]
    assert [d["id"] for d in shown["discrepancies"]] == [f"statement_mismatch:{CT_H001}:serial_number"]


def test_a_command_that_changes_a_device_several_times_leaves_one_version_of_its_row(
    projector: Projector, recorded: Recorded
) -> None:
    # The backfill opens the device, states it and links it; the licence is a second command.
    backfill = [p for p, e in recorded.events if getattr(e, "command_id", None) == "s18-backfill"]
    licence = [p for p, e in recorded.events if getattr(e, "command_id", None) == "s19-licence-legacy"]
    assert {"Device.Opened", "Device.Backfilled", "Device.Linked"} <= set(
        recorded.types(command_id="s18-backfill")
    )
    with projector.store.reading() as tx:
        versions = tx.execute(
            "SELECT recorded_from, recorded_to, valid_from, status, legacy_ref, licence_ref "
            "FROM rm_devices_versions WHERE mid_id = ? ORDER BY recorded_from",
            (BACKFILLED_H001,),
        ).all()
    assert versions == [
        {
            "recorded_from": min(backfill),
            "recorded_to": min(licence),
            "valid_from": "0001-01-01",
            "status": "linked",
            "legacy_ref": "CT1",
            "licence_ref": None,
        },
        {
            "recorded_from": min(licence),
            "recorded_to": None,
            "valid_from": "0001-01-01",
            "status": "linked",
            "legacy_ref": "CT1",
            "licence_ref": "FANC-L-9",
        },
    ]


def test_the_kadaster_view_lists_every_device_with_its_status_and_filters_and_sorts_it(
    queries: Queries,
) -> None:
    everything = answer(queries, "devices")
    assert [
        (d["mid_id"], d["institution"], d["province"], d["modality"], d["status"])
        for d in everything["items"]
    ] == [
        (CT_H001, "H001", "Antwerpen", "CT", "decommissioned"),
        (PETCT_H002, "H002", "Limburg", "PET-CT", "linked"),
        (CT_H002, "H002", "Limburg", "CT", "reported"),
        (BACKFILLED_H001, "H001", "Antwerpen", "CT", "linked"),
    ]
    assert everything["total"] == 4
    backfilled = everything["items"][3]
    # The backfill is the FOD's record of an old device, linked at once, with its old FANC number.
    assert (backfilled["registered_on"], backfilled["legacy_number"], backfilled["licence_ref"]) == (
        "2016-06-01",
        "FANC-0042",
        "FANC-L-9",
    )

    def mid_ids(**filters: Any) -> list[str]:
        return [d["mid_id"] for d in answer(queries, "devices", filters)["items"]]

    assert mid_ids(province="Limburg", modality="ct") == [CT_H002]
    assert mid_ids(institution="H001", status="linked") == [BACKFILLED_H001]
    assert mid_ids(campus="Genk", sort="-installed_on") == [CT_H002, PETCT_H002]
    assert mid_ids(sort="province,-mid_id") == [BACKFILLED_H001, CT_H001, CT_H002, PETCT_H002]
    assert mid_ids(limit=2, offset=1) == [PETCT_H002, CT_H002]
    with pytest.raises(QueryError) as bad_sort:
        answer(queries, "devices", {"sort": "colour"})
    assert bad_sort.value.detail.code == "schema"
    with pytest.raises(QueryError) as bad_modality:
        answer(queries, "devices", {"modality": "cone-beam CT"})
    assert bad_modality.value.detail.code == "modality_not_in_scope"


def test_one_device_is_found_by_any_spelling_and_unknown_or_mistyped_ones_are_refused(
    queries: Queries,
) -> None:
    assert (
        answer(queries, "device", {"mid_id": f"  {CT_H002.replace('-', '').lower()} "})["mid_id"] == CT_H002
    )
    for mid_id, code in (
        (MRI_H001, "device_unknown"),
        ("MID-0000043-66", "device_unknown"),
        ("MID-0000042-96", "midid_checksum"),
        ("MID-42", "schema"),
    ):
        with pytest.raises(QueryError) as refused:
            answer(queries, "device", {"mid_id": mid_id})
        assert refused.value.detail.code == code


def test_the_mid_id_register_shows_backfilled_mid_ids_and_which_are_still_free(queries: Queries) -> None:
    items = {item["mid_id"]: item for item in answer(queries, "midids", {}, "H001")["items"]}
    assert list(items) == [CT_H001, MRI_H001, BACKFILLED_H001]
    assert {k: items[MRI_H001][k] for k in ("status", "free", "device", "note", "issued_by")} == {
        "status": "issued",
        "free": True,
        "device": None,
        "note": "tender 2025",
        "issued_by": "hospital/H001",
    }
    assert {
        k: items[BACKFILLED_H001][k] for k in ("status", "free", "legacy_ref", "issued_by", "command_id")
    } == {
        "status": "linked",
        "free": False,
        "legacy_ref": "CT1",
        "issued_by": "fod",
        "command_id": "s18-backfill",
    }
    assert items[BACKFILLED_H001]["device"] == {
        "status": "linked",
        "manufacturer": "GE",
        "model": "Revolution",
        "serial_number": "GE-77",
        "campus": "Campus Noord",
    }
    assert items[CT_H001]["device"]["status"] == "decommissioned"
    assert items[CT_H001]["device_id"] == str(device_id(CT_H001))


def test_the_history_of_a_mid_id_is_every_event_about_it_and_its_device_in_log_order(
    queries: Queries, recorded: Recorded
) -> None:
    history = answer(queries, "history", {"mid_id": CT_H001})
    about = (device_id(CT_H001), MidId.parse(CT_H001).aggregate_id)
    expected = [
        n
        for n, e in recorded.events
        if e.originator_id in about
        or getattr(e, "mid_id", None) == CT_H001
        or (type(e).__qualname__ == "MidIdSequence.NumberTaken" and e.number == 1)
    ]
    assert [item["position"] for item in history["items"]] == expected
    assert [item["event_type"] for item in history["items"]] == [
        "MidIdSequence.NumberTaken",
        "MidIdRecord.Issued",
        "Device.Opened",
        "Device.InstallationRecorded",
        "Device.Reported",
        "Device.DiscrepancyRecorded",
        "MidIdRecord.Linked",
        "Device.Linked",
        "Device.LicenceRecorded",
        "Device.BillingNumberAssigned",
        "BillingNumber.Assigned",
        "Device.Changed",
        "Device.Decommissioned",
        "Device.BillingNumberWithdrawn",
        "BillingNumber.Released",
    ]
    by_type = {item["event_type"]: item for item in history["items"]}
    change = by_type["Device.Changed"]
    assert {
        k: change[k]
        for k in (
            "aggregate_type",
            "aggregate_id",
            "mid_id",
            "institution",
            "source",
            "command_id",
            "business_date",
            "business_date_field",
        )
    } == {
        "aggregate_type": "Device",
        "aggregate_id": str(device_id(CT_H001)),
        "mid_id": CT_H001,
        "institution": "H001",
        "source": "hospital/H001",
        "command_id": "s11-move",
        "business_date": "2025-01-01",
        "business_date_field": "effective_on",
    }
    assert change["recorded_at"] == recorded.event("s11-move", "Device.Changed").timestamp.isoformat()
    assert change["data"] == {
        "changes": {"campus": "Campus Zuid"},
        "effective_on": "2025-01-01",
        "source": "hospital/H001",
        "command_id": "s11-move",
    }
    # A supplier's notice naming the device is the holder's history, whoever sent it.
    assert (
        by_type["Device.InstallationRecorded"]["source"],
        by_type["Device.InstallationRecorded"]["institution"],
    ) == ("supplier/SIEMENS", "H001")
    assert by_type["Device.LicenceRecorded"]["business_date"] == "2024-01-01"


def test_the_history_of_a_round_or_an_institution_and_what_a_hospital_sees_of_it(queries: Queries) -> None:
    operator = answer(queries, "history", {"round_id": ROUND})["items"]
    assert [(i["event_type"], i["institution"]) for i in operator] == [
        ("AllocationRound.Opened", None),
        ("RoundIndex.RoundListed", None),
        ("AllocationRound.ApplicationFiled", "H001"),
        ("AllocationRound.ApplicationFiled", "H002"),
    ]
    assert operator[0]["business_date_field"] == "deadline"
    # A hospital sees the round, but not the other hospital's application.
    h001 = answer(queries, "history", {"round_id": ROUND}, "H001")["items"]
    assert [i["institution"] for i in h001] == [None, None, "H001"]
    institution = answer(queries, "history", {}, "H002")["items"]
    assert {i["institution"] for i in institution} == {"H002"}
    assert {i["mid_id"] for i in institution} == {None, PETCT_H002, CT_H002}
    assert "CommandRecord.Handled" not in {
        i["event_type"] for i in answer(queries, "history", {"institution": "H001"})["items"]
    }
    for filters, institution_asking, code in (
        ({"mid_id": CT_H001}, "H002", "midid_not_yours"),
        ({"mid_id": "MID-0000043-66"}, None, "midid_unknown"),
        ({"round_id": "nmr-1999"}, None, "round_unknown"),
        ({}, None, "schema"),
    ):
        with pytest.raises(QueryError) as refused:
            answer(queries, "history", filters, institution_asking)
        assert refused.value.detail.code == code


def test_discrepancies_show_disagreements_at_once_and_deadlines_only_once_passed(
    queries: Queries, recorded: Recorded
) -> None:
    today = date.fromisoformat(recorded.day("s17-report-ct", "Device.Reported"))

    def found(**filters: Any) -> list[tuple[str, str]]:
        return [(d["kind"], d["mid_id"]) for d in answer(queries, "discrepancies", filters)["items"]]

    assert found(today=today.isoformat()) == [
        ("legacy_number_after_transition", BACKFILLED_H001),
        ("statement_mismatch", CT_H001),
    ]
    mismatch = answer(queries, "discrepancies", {"kind": "statement_mismatch"})["items"][0]
    assert mismatch["detail"] == {
        "reported_value": "SN-1001",
        "reported_source": "hospital/H001",
        "supplier_value": "SN-1002",
        "supplier_source": "supplier/SIEMENS",
    }
    assert (mismatch["field"], mismatch["state"], mismatch["command_id"]) == (
        "serial_number",
        "open",
        "s07-report",
    )
    # The hospital reported after the supplier's installation date: that gap is over, and shown as resolved.
    (late,) = answer(queries, "discrepancies", {"status": "resolved"})["items"]
    assert (late["kind"], late["since"], late["resolved"]["command_id"]) == (
        "not_reported",
        "2024-03-01",
        "s07-report",
    )
    # Reported but not linked: pending for 30 days, then open.
    assert found(status="pending", today=today.isoformat()) == [
        ("not_linked", CT_H002),
        ("midid_unlinked", MRI_H001),
        ("midid_unlinked", CT_H002),
    ]
    assert ("not_linked", CT_H002) not in found(today=(today + timedelta(days=30)).isoformat())
    assert ("not_linked", CT_H002) in found(today=(today + timedelta(days=31)).isoformat())
    # A MID-ID unused for more than twelve months.
    a_year_on = (
        today.replace(year=today.year + 1) if (today.month, today.day) != (2, 29) else today + timedelta(365)
    )
    assert ("midid_unlinked", MRI_H001) not in found(today=a_year_on.isoformat())
    assert ("midid_unlinked", MRI_H001) in found(today=(a_year_on + timedelta(days=1)).isoformat())
    # A hospital sees only its own.
    assert {
        d["institution"]
        for d in answer(queries, "discrepancies", {"status": "all", "today": "2099-01-01"}, "H002")["items"]
    } == {"H002"}


def test_capacity_counts_devices_in_service_per_province_and_modality_per_100000_inhabitants(
    queries: Queries,
) -> None:
    assert answer(queries, "capacity")["items"] == [
        # The decommissioned CT is gone; the backfilled one counts.
        {
            "province": "Antwerpen",
            "region": "flemish",
            "modality": "CT",
            "devices": 1,
            "linked": 1,
            "population": 1_926_522,
            "population_from": ROUND,
            "per_100k": "0.05",
        },
        {
            "province": "Limburg",
            "region": "flemish",
            "modality": "CT",
            "devices": 1,
            "linked": 0,
            "population": 887_263,
            "population_from": ROUND,
            "per_100k": "0.11",
        },
        {
            "province": "Limburg",
            "region": "flemish",
            "modality": "PET-CT",
            "devices": 1,
            "linked": 1,
            "population": 887_263,
            "population_from": ROUND,
            "per_100k": "0.11",
        },
    ]
    mri = answer(queries, "capacity", {"modality": "MRI"})["items"]
    assert [(row["province"], row["devices"], row["per_100k"]) for row in mri] == [
        ("Antwerpen", 0, "0.00"),
        ("Limburg", 0, "0.00"),
        ("Oost-Vlaanderen", 0, "0.00"),
        ("Vlaams-Brabant", 0, "0.00"),
        ("West-Vlaanderen", 0, "0.00"),
    ]
    assert [row["modality"] for row in answer(queries, "capacity", {"province": "limburg"})["items"]] == [
        "CT",
        "PET-CT",
    ]


def test_every_read_model_is_at_the_event_stores_head(projector: Projector, register: Register) -> None:
    positions = projector.positions()
    assert {p.name: positions[p.name]["position"] for p in projector.projections} == {
        p.name: register.position() for p in projector.projections
    }
    with projector.store.reading() as tx:
        history_rows = tx.execute("SELECT COUNT(*) FROM rm_history").scalar()
    # Every event but the command records, which are the command log's.
    assert int(history_rows) == len([t for t in Recorded(register).types() if t != "CommandRecord.Handled"])
