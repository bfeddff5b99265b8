"""Discrepancies and capacity read a batch's rows beforehand: as many queries for forty devices as three."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from projections.capacity import Capacity
from projections.discrepancies import Discrepancies
from projections.projector import Projector
from projections.store import ReadModelStore
from services.processor import Inbound
from services.register import Register
from tests.conftest import Sender

HOSPITALS = ("H001", "H002", "H003")


def recorded(sender: Sender, commands: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The commands' results, recorded in one store transaction."""
    inbound = []
    for source, type_, data in commands:
        sender.sequence += 1
        body = sender.envelope(source, type_, data)
        inbound.append(Inbound(body, sender.subject(source, type_), stream_sequence=sender.sequence))
    outcomes = [handled.outcome for handled in sender.processor.process(inbound)]
    assert all(o["status"] == "accepted" for o in outcomes), outcomes
    return [o["result"] for o in outcomes]


def devices_and_mid_ids(sender: Sender, first: int, count: int) -> None:
    """Three store transactions about `count` devices and as many free MID-IDs: recorded (backfill,
    issue), licensed and cancelled, then given billing numbers."""
    backfills = [
        (
            "fod",
            "midid.backfill",
            {
                "institution": HOSPITALS[n % 3],
                "modality": "CT",
                "legacy_ref": f"L{n}",
                "manufacturer": "Siemens",
                "model": "Somatom",
                "serial_number": f"SN-{n}",
                "campus": "Campus Noord",
                "installed_on": "2015-03-01",
                "use": "clinical",
            },
        )
        for n in range(first, first + count)
    ]
    issues = [(f"hospital/{HOSPITALS[n % 3]}", "midid.issue", {"modality": "MRI"}) for n in range(count)]
    results = recorded(sender, [*backfills, *issues])
    devices, free = results[:count], results[count:]
    licences = [
        ("fanc", "fanc.licence", {"mid_id": d["mid_id"], "licence_ref": "L", "valid_from": "2024-01-01"})
        for d in devices
    ]
    cancels = [
        (issue[0], "midid.cancel", {"mid_id": m["mid_id"], "reason": "not bought"})
        for issue, m in zip(issues, free, strict=True)
    ]
    recorded(sender, [*licences, *cancels])
    recorded(
        sender,
        [
            ("riziv", "billing.assign", {"mid_id": d["mid_id"], "billing_number": f"7{first + i}"})
            for i, d in enumerate(devices)
        ],
    )


def test_a_batch_reads_discrepancies_and_capacity_in_as_many_queries_for_forty_devices_as_for_three(
    register: Register, sender: Sender, read_models: Callable[[], ReadModelStore]
) -> None:
    recorded(
        sender,
        [
            (
                "fod",
                "institution.register",
                {
                    "institution": h,
                    "name": h,
                    "province": "Limburg",
                    "region": "flemish",
                    "campuses": ["Campus Noord"],
                },
            )
            for h in HOSPITALS
        ],
    )
    devices_and_mid_ids(sender, 1, 3)
    devices_and_mid_ids(sender, 100, 40)
    store = read_models()
    projector = Projector(register, store, [Discrepancies(), Capacity()])
    reads: list[int] = []
    if store.dialect == "sqlite":

        def traced(sql: str) -> None:
            if sql.startswith("BEGIN IMMEDIATE"):
                reads.append(0)
            elif sql.startswith("SELECT") and ("rm_discrepanc" in sql or "rm_capacity" in sql):
                reads[-1] += 1

        store.connection.set_trace_callback(traced)
    # A batch of one notification reads on to the end of its store transaction: one batch each.
    projector.catch_up(batch_size=1)
    if store.dialect == "sqlite":
        # Registering, then three transactions about three devices, then the same about forty.
        assert len(reads) == 7
        assert reads[1:4] == reads[4:7]
        assert all(0 < n <= 6 for n in reads[1:])
    # Every device in service, linked and counted; every free MID-ID cancelled before it was due.
    with store.reading() as tx:
        counts = tx.execute(
            "SELECT SUM(in_service) AS n, SUM(linked) AS linked FROM rm_capacity_counts"
        ).one()
        left = tx.execute("SELECT kind, COUNT(*) AS n FROM rm_discrepancies GROUP BY kind").all()
    assert counts == {"n": 43, "linked": 43}
    assert left == []
