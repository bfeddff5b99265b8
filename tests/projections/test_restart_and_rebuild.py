"""A projector that dies mid-way and restarts, and a rebuild beside the live read models, change no answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from adapters.bootstrap import all_projections
from domain.identifiers import MidId
from projections.capacity import Capacity
from projections.kadaster_view import KadasterView
from projections.projector import Projection, Projector
from projections.queries import Queries
from projections.rebuild import rebuild, status
from projections.store import ReadModelStore
from services.register import Register
from tests.conftest import Sender
from tests.projections import scenario
from tests.projections.scenario import BACKFILLED_H001, CT_H001, CT_H002, MRI_H001, PETCT_H002, ROUND

TODAY = date(2027, 12, 1)


class Crash(Exception):
    """The projection process dies here."""


def crashing(projections: list[Projection], name: str, at: int) -> list[Projection]:
    """The same projections, one of which writes its `at`-th event and then dies."""
    victim = next(p for p in projections if p.name == name)
    applied = 0
    apply = victim.apply

    def apply_then_die(tx: Any, event: Any, position: int) -> None:
        nonlocal applied
        apply(tx, event, position)
        applied += 1
        if applied == at:
            raise Crash(f"{name} died after its event {at} (position {position})")

    victim.apply = apply_then_die  # type: ignore[method-assign]
    return projections


def send(sender: Sender) -> Callable[[str, str, dict[str, Any], str], dict[str, Any]]:
    return lambda source, type_, data, command_id: sender.send(source, type_, data, command_id)


@pytest.mark.parametrize(
    ("victim", "at"), [("kadaster_view", 1), ("audit_history", 23), ("discrepancies", 17), ("capacity", 13)]
)
def test_a_projector_killed_mid_way_and_restarted_ends_identical_to_one_that_never_stopped(
    lifecycle: Sender, register: Register, read_models: Callable[[], ReadModelStore], victim: str, at: int
) -> None:
    # A projector dies inside one of its projections, part-way through a batch.
    survived = read_models()
    with pytest.raises(Crash):
        Projector(register, survived, crashing(all_projections(), victim, at)).catch_up(batch_size=7)
    # The batch it died in left nothing behind: every read model is where a batch ended, which is
    # always the end of a store transaction (a batch reads on to it), or before.
    positions = Projector(register, survived, all_projections()).positions()
    assert register.recordings is not None
    ends = {0} | {r.last for r in register.recordings.between(0, register.position())}
    assert all(p["position"] in ends for p in positions.values())
    assert min(p["position"] for p in positions.values()) < register.position()
    # A fresh projector over the same tables takes over, with another batch size.
    Projector(register, survived, all_projections()).catch_up(batch_size=5)
    # It ends exactly where one that ran straight through ends: nothing missing, nothing counted twice.
    straight = read_models()
    Projector(register, straight, all_projections()).catch_up()
    assert scenario.dump(survived, all_projections()) == scenario.dump(straight, all_projections())


QUESTIONS: list[tuple[str, dict[str, Any], str | None]] = [
    ("devices", {}, None),
    ("devices", {"province": "Limburg", "sort": "-installed_on"}, None),
    ("devices", {}, "H001"),
    *[("device", {"mid_id": m}, None) for m in (CT_H001, PETCT_H002, CT_H002, BACKFILLED_H001)],
    *[("history", {"mid_id": m}, None) for m in (CT_H001, MRI_H001, PETCT_H002, CT_H002, BACKFILLED_H001)],
    ("history", {"round_id": ROUND}, None),
    ("history", {"round_id": ROUND}, "H002"),
    ("history", {"institution": "H001"}, None),
    ("discrepancies", {"status": "all"}, None),
    ("discrepancies", {"status": "pending", "today": "2026-01-01"}, None),
    ("capacity", {}, None),
    ("capacity", {"modality": "MRI"}, None),
    ("midids", {}, None),
    ("commands", {"limit": 1000}, None),
]


def answers(queries: Queries) -> dict[str, str]:
    return {
        json.dumps([name, filters, institution]): json.dumps(
            queries.run(name, filters, institution), default=str
        )
        for name, filters, institution in QUESTIONS
    }


def schema_objects(store: ReadModelStore) -> list[tuple[str, str]]:
    """The read models' tables, indexes and constraints, by name."""
    with store.reading() as tx:
        if tx.dialect == "sqlite":
            rows = tx.execute("SELECT type, name FROM sqlite_master WHERE tbl_name LIKE 'rm_%'").all()
            return sorted((r["type"], r["name"]) for r in rows)
        tables = tx.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").all()
        indexes = tx.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()").all()
        constraints = tx.execute(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = current_schema()"
        ).all()
    return sorted(
        [("table", r["tablename"]) for r in tables]
        + [("index", r["indexname"]) for r in indexes]
        + [("constraint", r["conname"]) for r in constraints]
    )


def test_a_rebuild_gives_byte_identical_answers_and_the_same_tables_and_indexes(
    projector: Projector, register: Register
) -> None:
    queries = Queries(register, projector.store, projector, today=lambda: TODAY)
    before, objects = answers(queries), schema_objects(projector.store)
    # Every read model, rebuilt twice: the second must not trip over names the first left.
    for _ in range(2):
        for projection in projector.projections:
            rebuilt = rebuild(projector, projection.name, batch_size=9)
            assert rebuilt.position == register.position()
    assert answers(queries) == before
    assert schema_objects(projector.store) == objects
    assert {
        item["name"]: (item["state"], item["lag"], item["shadow_tables"]) for item in status(projector)
    } == {p.name: ("current", 0, False) for p in projector.projections}


def test_a_rebuild_runs_beside_a_live_projector_and_commands_still_arriving(
    lifecycle: Sender, register: Register, read_models: Callable[[], ReadModelStore]
) -> None:
    live = Projector(register, read_models(), all_projections())
    live.catch_up()
    stop = threading.Event()
    failures: list[BaseException] = []

    def service() -> None:
        # The running service: more commands, and its projector keeping up with them.
        try:
            scenario.run(send(lifecycle), scenario.MORE)
            for _ in range(40):
                lifecycle.send("hospital/H001", "midid.issue", {"modality": "CT"})
                live.catch_up(batch_size=3)
            while not stop.is_set():
                live.catch_up(batch_size=3)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    seen: list[tuple[int, int]] = []
    running = threading.Thread(target=service)
    running.start()
    try:
        for projection in live.projections:
            rebuild(
                live,
                projection.name,
                progress=lambda position, head: seen.append((position, head)),
                batch_size=4,
            )
    finally:
        stop.set()
        running.join(60)
    assert failures == []
    live.catch_up()
    assert seen and all(position <= head for position, head in seen)
    straight = read_models()
    Projector(register, straight, all_projections()).catch_up()
    assert scenario.dump(live.store, all_projections()) == scenario.dump(straight, all_projections())
    # The MID-ID issued last shows in the rebuilt register.
    assert answer_mid_ids(Queries(register, live.store, live))[-1] == str(MidId(5 + 1 + 40))


def answer_mid_ids(queries: Queries) -> list[str]:
    return [item["mid_id"] for item in queries.run("midids", {"limit": 1000})["items"]]


def test_status_shows_each_read_models_position_lag_and_version(
    projector: Projector, lifecycle: Sender, register: Register
) -> None:
    head = register.position()
    assert {item["name"]: (item["position"], item["lag"], item["state"]) for item in status(projector)} == {
        p.name: (head, 0, "current") for p in projector.projections
    }
    scenario.run(send(lifecycle), scenario.MORE[:1])
    behind = {item["name"]: item for item in status(projector)}
    assert behind["kadaster_view"]["lag"] == register.position() - head > 0
    assert behind["kadaster_view"]["state"] == "catching up"
    # Tables another version of a projection built are outdated until a rebuild.
    with projector.store.transaction() as tx:
        tx.execute("UPDATE rm_positions SET version = 0 WHERE name = 'capacity'")
    assert {i["name"]: i["state"] for i in status(projector)}["capacity"] == "outdated"
    rebuild(projector, "capacity")
    capacity = {i["name"]: i for i in status(projector)}["capacity"]
    assert (capacity["state"], capacity["version"], capacity["lag"]) == ("current", Capacity.version, 0)


def test_a_projector_starting_over_tables_of_an_older_version_builds_them_again(
    projector: Projector, register: Register
) -> None:
    before = scenario.dump(projector.store, projector.projections)
    with projector.store.transaction() as tx:
        tx.execute("UPDATE rm_positions SET version = 0 WHERE name = 'kadaster_view'")
        tx.execute("DELETE FROM rm_devices")
    restarted = Projector(register, projector.store, all_projections())
    assert restarted.positions()["kadaster_view"] == {"position": 0, "version": KadasterView.version}
    restarted.catch_up()
    assert scenario.dump(projector.store, projector.projections) == before
