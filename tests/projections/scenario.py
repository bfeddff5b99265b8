"""A scripted register: two hospitals, a device's whole life, a backfill, a round; fixed command ids."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from domain.identifiers import MidId
from projections.projector import Projection
from projections.store import ReadModelStore
from tests.domain.test_allocation_policies import PROVINCES_2023, REFERENCE_2024

# A fresh register hands out these numbers in this order.
CT_H001 = str(MidId(1))
MRI_H001 = str(MidId(2))
PETCT_H002 = str(MidId(3))
CT_H002 = str(MidId(4))
BACKFILLED_H001 = str(MidId(5))

ROUND = "nmr-2023"


@dataclass(frozen=True)
class Step:
    source: str
    type: str
    data: dict[str, Any]
    command_id: str


def _report(mid_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "mid_id": mid_id,
        "modality": "CT",
        "manufacturer": "Siemens",
        "model": "Somatom X.cite",
        "serial_number": "SN-1001",
        "campus": "Campus Noord",
        "installed_on": "2024-03-01",
        "use": "clinical",
        **fields,
    }


def _application(campus: str, province: str, activity: int) -> dict[str, Any]:
    return {
        "round_id": ROUND,
        "campus": campus,
        "province": province,
        "region": "flemish",
        "justified_activity_per_device": activity,
        "has_service_on_other_campus": False,
    }


LIFECYCLE = [
    # The FOD registers both hospitals; VAZG opens an MRI round that gives the provinces' population.
    Step(
        "fod",
        "institution.register",
        {
            "institution": "H001",
            "name": "AZ Voorbeeld",
            "province": "Antwerpen",
            "region": "flemish",
            "campuses": ["Campus Noord", "Campus Zuid"],
        },
        "s01-register-h001",
    ),
    Step(
        "fod",
        "institution.register",
        {
            "institution": "H002",
            "name": "ZOL",
            "province": "Limburg",
            "region": "flemish",
            "campuses": ["Genk"],
        },
        "s02-register-h002",
    ),
    Step(
        "vazg",
        "round.open",
        {
            "round_id": ROUND,
            "programme": "nmr",
            "period": "2023",
            "capacity": 2,
            "deadline": "2099-12-31T23:59:59Z",
            "provinces": PROVINCES_2023,
            "reference_activity": REFERENCE_2024,
            "top_share": 0.15,
            "new_services_only": False,
        },
        "s03-open-round",
    ),
    # H001 asks for a CT MID-ID before buying, and an MRI one it never uses.
    Step("hospital/H001", "midid.issue", {"modality": "CT"}, "s04-issue-ct"),
    Step("hospital/H001", "midid.issue", {"modality": "MRI", "note": "tender 2025"}, "s05-issue-mri"),
    # The supplier's notice disagrees with what the hospital will report on the serial number.
    Step(
        "supplier/SIEMENS",
        "device.installation",
        {
            "mid_id": CT_H001,
            "institution": "H001",
            "modality": "CT",
            "manufacturer": "Siemens",
            "model": "Somatom X.cite",
            "serial_number": "SN-1002",
            "installed_on": "2024-03-01",
        },
        "s06-notice",
    ),
    # The hospital reports, the FOD links, FANC licenses, RIZIV gives a billing number.
    Step("hospital/H001", "device.report", _report(CT_H001), "s07-report"),
    Step("fod", "midid.link", {"mid_id": CT_H001}, "s08-link"),
    Step(
        "fanc",
        "fanc.licence",
        {"mid_id": CT_H001, "licence_ref": "FANC-L-1", "valid_from": "2024-01-01"},
        "s09-licence",
    ),
    Step("riziv", "billing.assign", {"mid_id": CT_H001, "billing_number": "7001"}, "s10-billing"),
    # It moves to the other campus, then leaves service (its billing number goes with it).
    Step(
        "hospital/H001",
        "device.change",
        {"mid_id": CT_H001, "changes": {"campus": "Campus Zuid"}, "effective_on": "2025-01-01"},
        "s11-move",
    ),
    Step(
        "hospital/H001",
        "device.decommission",
        {"mid_id": CT_H001, "effective_on": "2025-06-30", "reason": "replaced"},
        "s12-decommission",
    ),
    # The second hospital: a linked PET-CT, and a CT reported but never linked.
    Step("hospital/H002", "midid.issue", {"modality": "PET-CT"}, "s13-issue-petct"),
    Step(
        "hospital/H002",
        "device.report",
        _report(
            PETCT_H002,
            modality="PET-CT",
            model="Biograph Vision",
            serial_number="BV-7",
            campus="Genk",
            installed_on="2024-02-01",
        ),
        "s14-report-petct",
    ),
    Step("fod", "midid.link", {"mid_id": PETCT_H002}, "s15-link-petct"),
    Step("hospital/H002", "midid.issue", {"modality": "CT"}, "s16-issue-ct"),
    Step(
        "hospital/H002",
        "device.report",
        _report(CT_H002, serial_number="SN-9", campus="Genk", installed_on="2024-04-01", use="research"),
        "s17-report-ct",
    ),
    # The FOD backfills an old H001 device with its old FANC number; FANC licenses it under that number.
    Step(
        "fod",
        "midid.backfill",
        {
            "institution": "H001",
            "modality": "CT",
            "legacy_ref": "CT1",
            "manufacturer": "GE",
            "model": "Revolution",
            "serial_number": "GE-77",
            "campus": "Campus Noord",
            "installed_on": "2016-06-01",
            "use": "clinical",
            "legacy_number": "FANC-0042",
        },
        "s18-backfill",
    ),
    Step(
        "fanc",
        "fanc.licence",
        {"legacy_number": "FANC-0042", "licence_ref": "FANC-L-9", "valid_from": "2016-06-01"},
        "s19-licence-legacy",
    ),
    # Both hospitals apply in the MRI round.
    Step("hospital/H001", "round.apply", _application("Campus Noord", "Antwerpen", 5000), "s20-apply-h001"),
    Step("hospital/H002", "round.apply", _application("Genk", "Limburg", 6000), "s21-apply-h002"),
]

MORE = [
    # Later commands, for runs that go on while something else happens.
    Step("hospital/H001", "midid.issue", {"modality": "PET"}, "m01-issue-pet"),
    Step(
        "hospital/H001",
        "device.report",
        _report(str(MidId(6)), modality="PET", model="Biograph", serial_number="P-1"),
        "m02-report-pet",
    ),
    Step("fod", "midid.link", {"mid_id": str(MidId(6))}, "m03-link-pet"),
    Step("fod", "institution.update", {"institution": "H002", "province": "Vlaams-Brabant"}, "m04-move-h002"),
    Step(
        "fod",
        "device.correct",
        {"mid_id": CT_H001, "corrections": {"serial_number": "SN-1002"}, "reason": "type plate checked"},
        "m05-correct",
    ),
]


def run(send: Callable[[str, str, dict[str, Any], str], dict[str, Any]], steps: Iterable[Step]) -> None:
    """`send(source, type, data, command_id)` returns the outcome; every step must be accepted."""
    for step in steps:
        outcome = send(step.source, step.type, step.data, step.command_id)
        assert outcome["status"] == "accepted", (step.command_id, outcome)


def dump(store: ReadModelStore, projections: Iterable[Projection]) -> dict[str, list[str]]:
    """Every row of every read-model table and every position, in a stable order."""
    tables = ["rm_positions", "rm_transactions", *(table for p in projections for table in p.all_tables())]
    with store.reading() as tx:
        return {
            table: sorted(
                json.dumps(row, sort_keys=True, default=str)
                for row in tx.execute(f"SELECT * FROM {table}").all()
            )
            for table in tables
        }
