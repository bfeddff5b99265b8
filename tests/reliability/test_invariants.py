"""Any sequence of commands, in any batching, keeps the register's invariants."""

from __future__ import annotations

import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.allocation_policies import decide_nmr
from domain.device import device_id
from domain.identifiers import MidId
from services.processor import CommandProcessor, Inbound
from services.register import Register, event_store_env
from tests.reliability.fuzzing import tally

HOSPITALS = ["H001", "H001", "H002"]
MODALITIES = ["CT", "CT", "MRI"]
MIDS = st.integers(1, 3)

operation = st.one_of(
    st.tuples(st.just("issue"), st.sampled_from(HOSPITALS), st.sampled_from(MODALITIES)),
    st.tuples(st.just("cancel"), st.sampled_from(HOSPITALS), MIDS),
    st.tuples(st.just("report"), st.sampled_from(HOSPITALS), MIDS, st.sampled_from(["A", "B"])),
    st.tuples(st.just("notice"), st.sampled_from(HOSPITALS), MIDS, st.sampled_from(["A", "C"])),
    st.tuples(st.just("link"), MIDS),
    st.tuples(st.just("licence"), MIDS),
    st.tuples(st.just("billing"), MIDS, st.sampled_from(["B1", "B2"])),
    st.tuples(st.just("withdraw"), MIDS),
    st.tuples(st.just("decommission"), st.sampled_from(HOSPITALS), MIDS),
    st.tuples(st.just("repeat"), st.integers(0, 50)),
    st.tuples(st.just("lifecycle"), st.sampled_from(HOSPITALS), MIDS),
)


def as_command(op: tuple[Any, ...], number: int) -> tuple[str, str, dict[str, Any]]:
    """(source, type, data) for one generated operation; MID-IDs are picked by sequence number."""
    kind = op[0]
    if kind == "issue":
        return f"hospital/{op[1]}", "midid.issue", {"modality": op[2]}
    if kind == "lifecycle":
        raise AssertionError("expanded by expand()")
    mid_id = str(MidId(op[2] if kind in ("cancel", "report", "notice", "decommission") else op[1]))
    if kind == "cancel":
        return f"hospital/{op[1]}", "midid.cancel", {"mid_id": mid_id, "reason": "no order"}
    if kind == "report":
        return (
            f"hospital/{op[1]}",
            "device.report",
            {
                "mid_id": mid_id,
                "modality": "CT",
                "manufacturer": "Siemens",
                "model": "X",
                "serial_number": f"SN-{op[3]}",
                "campus": "Noord",
                "installed_on": "2024-03-01",
                "use": "clinical",
            },
        )
    if kind == "notice":
        return (
            "supplier/S1",
            "device.installation",
            {
                "mid_id": mid_id,
                "institution": op[1],
                "modality": "CT",
                "manufacturer": "Siemens",
                "model": "X",
                "serial_number": f"SN-{op[3]}",
                "installed_on": "2024-03-01",
            },
        )
    if kind == "link":
        return "fod", "midid.link", {"mid_id": mid_id}
    if kind == "licence":
        return (
            "fanc",
            "fanc.licence",
            {"mid_id": mid_id, "licence_ref": f"L-{number}", "valid_from": "2024-01-01"},
        )
    if kind == "billing":
        return "riziv", "billing.assign", {"mid_id": mid_id, "billing_number": op[2]}
    if kind == "withdraw":
        return "riziv", "billing.withdraw", {"mid_id": mid_id, "reason": "audit"}
    return (
        f"hospital/{op[1]}",
        "device.decommission",
        {"mid_id": mid_id, "effective_on": "2025-01-01", "reason": "replaced"},
    )


def expand(ops: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A `lifecycle` step is issue, report, link, licence and billing of one MID-ID in a row."""
    expanded: list[tuple[Any, ...]] = []
    for op in ops:
        if op[0] == "lifecycle":
            expanded += [
                ("issue", op[1], "CT"),
                ("report", op[1], op[2], "A"),
                ("link", op[2]),
                ("licence", op[2]),
                ("billing", op[2], "B1"),
            ]
        else:
            expanded.append(op)
    return expanded


def envelope(command_id: str, source: str, type_: str, data: dict[str, Any]) -> Inbound:
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": command_id,
            "source": source,
            "type": type_,
            "time": "2024-06-01T10:00:00Z",
            "data": data,
        }
    ).encode()
    return Inbound(body, f"kadaster.cmd.{source.replace('/', '.')}.{type_}")


def replay(register: Register) -> list[tuple[str, Any]]:
    return [
        (n.topic.partition(":")[2], register.mapper.to_domain_event(n))
        for n in register.recorder.select_notifications(start=None, limit=10**6)
    ]


@given(ops=st.lists(operation, min_size=1, max_size=60), cuts=st.lists(st.integers(1, 10), max_size=20))
def test_any_sequence_of_commands_keeps_the_invariants(ops: list[tuple[Any, ...]], cuts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        register = Register(env=event_store_env(f"sqlite:///{Path(directory) / 'k.db'}"))
        processor = CommandProcessor(register)
        inbounds: list[Inbound] = []
        for number, op in enumerate(expand(ops)):
            if op[0] == "repeat" and inbounds:
                inbounds.append(inbounds[op[1] % len(inbounds)])  # the same message again
                continue
            if op[0] == "repeat":
                continue
            inbounds.append(envelope(f"c{number}", *as_command(op, number)))
        # Random batch boundaries: batching must not change what the register decides.
        position, outcomes = 0, []
        for cut in [*cuts, len(inbounds)]:
            if position >= len(inbounds):
                break
            outcomes.extend(processor.process(inbounds[position : position + cut]))
            position += cut
        if position < len(inbounds):
            outcomes.extend(processor.process(inbounds[position:]))
        events = replay(register)
        register.close()

    tally("command sequences")
    tally("commands in sequences", len(inbounds))
    # Every message got exactly one outcome with a status; re-sent ones got the first outcome again.
    assert len(outcomes) == len(inbounds)
    first: dict[bytes, dict[str, Any]] = {}
    for inbound, handled in zip(inbounds, outcomes, strict=True):
        assert handled.outcome["status"] in ("accepted", "rejected")
        assert first.setdefault(inbound.body, handled.outcome) == handled.outcome
    check_invariants(events)


def check_invariants(events: list[tuple[str, Any]]) -> None:
    """The invariants of the register, checked over a whole event log in order."""
    # Sequence numbers are unique and contiguous.
    numbers = [e.sequence for name, e in events if name == "MidIdRecord.Issued"]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    # A MID-ID is linked at most once, to its own device, and a cancelled one never comes back.
    linked: dict[Any, Any] = {}
    cancelled: set[Any] = set()
    issued_ids: dict[Any, str] = {}
    for name, e in events:
        if name == "MidIdRecord.Issued":
            issued_ids[e.originator_id] = e.mid_id
        if name.startswith("MidIdRecord.") and name != "MidIdRecord.Issued":
            assert e.originator_id not in cancelled, f"{name} after cancellation"
        if name == "MidIdRecord.Cancelled":
            assert e.originator_id not in linked
            cancelled.add(e.originator_id)
        if name == "MidIdRecord.Linked":
            assert e.originator_id not in linked, "linked twice"
            assert e.device_id == device_id(issued_ids[e.originator_id])
            linked[e.originator_id] = e.device_id
    # A billing number sits on one device at a time.
    holder: dict[str, Any] = {}
    held_by_device: dict[Any, str] = {}
    for name, e in events:
        if name == "Device.BillingNumberAssigned":
            assert holder.get(e.billing_number) in (None, e.originator_id), "billing number on two devices"
            holder[e.billing_number] = e.originator_id
            held_by_device[e.originator_id] = e.billing_number
        if name == "Device.BillingNumberWithdrawn":
            number = held_by_device.pop(e.originator_id, None)
            if number is not None:
                holder.pop(number, None)


nmr_application = st.fixed_dictionaries(
    {
        "institution": st.sampled_from([f"Z{i}" for i in range(12)]),
        "campus": st.just("main"),
        "province": st.sampled_from(
            ["Antwerpen", "Limburg", "Oost-Vlaanderen", "West-Vlaanderen", "Vlaams-Brabant"]
        ),
        "region": st.sampled_from(["flemish", "flemish", "flemish", "brussels", "wallonia"]),
        "justified_activity_per_device": st.integers(1000, 9000).map(str),
        "has_service_on_other_campus": st.booleans(),
    }
)


@given(
    applications=st.lists(nmr_application, min_size=1, max_size=10, unique_by=lambda a: a["institution"]),
    capacity=st.integers(1, 4),
    seed=st.integers(0, 1000),
    new_services_only=st.booleans(),
)
def test_a_rounds_decision_is_a_pure_function_of_its_inputs(
    applications: list[dict[str, Any]], capacity: int, seed: int, new_services_only: bool
) -> None:
    record = {
        "capacity": capacity,
        "provinces": [
            {"name": p, "population": 1_000_000 + 100_000 * i, "recognised_devices": 10 + i}
            for i, p in enumerate(
                ["Antwerpen", "Limburg", "Oost-Vlaanderen", "West-Vlaanderen", "Vlaams-Brabant"]
            )
        ],
        "reference_activity": {f"Z{i}": str(2000 + 500 * i) for i in range(12)},
        "top_share": "0.15",
        "new_services_only": new_services_only,
        "applications": applications,
    }
    tally("round decisions")
    once = decide_nmr(record)
    shuffled = dict(record, applications=random.Random(seed).sample(applications, len(applications)))
    again = decide_nmr(shuffled)
    by_institution = lambda result: {d["institution"]: (d["outcome"], d["reason"]) for d in result.decisions}  # noqa: E731
    # Same inputs (in any order) give the same decisions; every application gets one.
    assert by_institution(once) == by_institution(again)
    assert set(by_institution(once)) == {a["institution"] for a in applications}
    granted = [d for d in once.decisions if d["outcome"] == "granted"]
    assert len(granted) <= capacity
    refusals = defaultdict(int)
    for decision in once.decisions:
        if decision["outcome"] != "granted":
            refusals[decision["reason"]] += 1
            assert decision["reason"] and decision["message"]


def test_the_invariant_checker_catches_a_mid_id_linked_twice() -> None:
    with tempfile.TemporaryDirectory() as directory:
        register = Register(env=event_store_env(f"sqlite:///{Path(directory) / 'k.db'}"))
        processor = CommandProcessor(register)
        ops = expand([("lifecycle", "H001", 1)])
        processor.process([envelope(f"c{i}", *as_command(op, i)) for i, op in enumerate(ops)])
        events = replay(register)
        register.close()
    check_invariants(events)
    linked = [e for e in events if e[0] == "MidIdRecord.Linked"]
    assert len(linked) == 1
    try:
        check_invariants([*events, linked[0]])
    except AssertionError as error:
        assert "linked twice" in str(error)
    else:
        raise AssertionError("a doubled link went unnoticed")
