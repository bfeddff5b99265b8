"""Bitemporal read models: recording time cut between store transactions, business dates in force."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import all_projections
from domain.identifiers import MidId
from projections.projector import Projector
from projections.queries import Queries, QueryError
from projections.replay import replay
from projections.store import ReadModelStore
from services.processor import Inbound
from services.recorders import RECORDINGS, moment_text
from services.recordings import Recordings
from services.register import Register, event_store_env
from tests.conftest import POSTGRES_DSN, Sender, postgres_reachable
from tests.services.test_device_lifecycle import report

TODAY = date(2026, 3, 2)


def recordings_of(register: Register) -> Recordings:
    assert register.recordings is not None
    return register.recordings


def reported_ct(sender: Sender) -> str:
    """H001's CT, issued and reported at Campus Noord; its MID-ID."""
    mid_id: str = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})["mid_id"]
    sender.accepted("hospital/H001", "device.report", report(mid_id))
    return mid_id


# a change effective in the future


class CaughtUp(Queries):
    """Queries whose read models first apply whatever was recorded, as the projector role would."""

    def catch_up(self) -> None:
        assert self.projector is not None
        self.projector.catch_up()


@pytest.fixture
def live(register: Register, database_url: str, tmp_path: Path) -> Iterator[tuple[Sender, Queries]]:
    url = f"sqlite:///{tmp_path / 'rm.db'}" if database_url.startswith("sqlite") else database_url
    store = ReadModelStore(url)
    projector = Projector(register, store, all_projections())
    yield Sender(register), CaughtUp(register, store, projector, today=lambda: TODAY)
    store.close()


def test_a_change_effective_next_week_is_recorded_now_and_in_force_from_its_date(
    live: tuple[Sender, Queries],
) -> None:
    sender, queries = live
    mid_id = reported_ct(sender)
    before = datetime.now(UTC)
    time.sleep(0.002)
    next_week = TODAY + timedelta(days=7)
    sender.accepted(
        "hospital/H001",
        "device.change",
        {"mid_id": mid_id, "changes": {"campus": "Campus Zuid"}, "effective_on": next_week.isoformat()},
    )
    # Today the device is where it is; from next week on where the hospital said it will be.
    assert queries.run("device", {"mid_id": mid_id})["campus"] == "Campus Noord"
    later = queries.run("device", {"mid_id": mid_id, "in_force_on": next_week.isoformat()})
    assert later["campus"] == "Campus Zuid"
    assert later["in_force"] == {"on": next_week.isoformat(), "from": next_week.isoformat(), "until": None}
    assert later["provenance"]["campus"]["effective_on"] == next_week.isoformat()
    # The list answers the same, and counts the device once on either day.
    today = queries.run("devices", {})
    assert [(d["campus"], today["total"]) for d in today["items"]] == [("Campus Noord", 1)]
    assert (
        queries.run("devices", {"in_force_on": next_week.isoformat(), "campus": "Campus Zuid"})["total"] == 1
    )
    # Before the change was recorded the register knew nothing of it, for any business date.
    asked = {"mid_id": mid_id, "as_of": before.isoformat(), "in_force_on": next_week.isoformat()}
    assert queries.run("device", asked)["campus"] == "Campus Noord"


def test_a_later_recorded_change_dated_earlier_leaves_the_later_dated_one_in_force_from_its_day(
    live: tuple[Sender, Queries],
) -> None:
    sender, queries = live
    mid_id = reported_ct(sender)
    for campus, day in (("Campus Zuid", "2026-06-01"), ("Campus Oost", "2026-04-01")):
        change = {"mid_id": mid_id, "changes": {"campus": campus}, "effective_on": day}
        sender.accepted("hospital/H001", "device.change", change)
    campus = {
        day: queries.run("device", {"mid_id": mid_id, "in_force_on": day})["campus"]
        for day in ("2026-03-31", "2026-04-01", "2026-05-31", "2026-06-01")
    }
    assert campus == {
        "2026-03-31": "Campus Noord",
        "2026-04-01": "Campus Oost",
        "2026-05-31": "Campus Oost",
        "2026-06-01": "Campus Zuid",
    }


def test_a_decommissioning_dated_next_month_leaves_the_device_in_service_until_then(
    live: tuple[Sender, Queries],
) -> None:
    sender, queries = live
    mid_id = reported_ct(sender)
    sender.accepted("fod", "midid.link", {"mid_id": mid_id})
    leaves = (TODAY + timedelta(days=30)).isoformat()
    sender.accepted(
        "hospital/H001", "device.decommission", {"mid_id": mid_id, "effective_on": leaves, "reason": "x"}
    )
    assert queries.run("device", {"mid_id": mid_id})["status"] == "linked"
    assert queries.run("device", {"mid_id": mid_id, "in_force_on": leaves})["status"] == "decommissioned"
    assert queries.run("devices", {"status": "decommissioned"})["total"] == 0


def test_in_force_on_that_is_not_a_date_is_refused_as_schema(live: tuple[Sender, Queries]) -> None:
    _, queries = live
    with pytest.raises(QueryError) as refused:
        queries.run("devices", {"in_force_on": "next week"})
    assert (refused.value.detail.code, refused.value.detail.field) == ("schema", "in_force_on")


# recording time at transaction granularity


def test_a_store_written_before_transactions_had_moments_gets_them_from_its_events(
    register: Register, database_url: str
) -> None:
    sender = Sender(register)
    for _ in range(3):
        sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})
    recorded = recordings_of(register).between(0, register.position())
    # Forget them, as a store from before had none; opening it again writes them from the events.
    schema = getattr(register.recorder.datastore, "schema", None)  # type: ignore[attr-defined]
    table = RECORDINGS if database_url.startswith("sqlite") else f'"{schema}".{RECORDINGS}'
    _execute(register, database_url, f"DELETE FROM {table}")
    reopened = Register(env=event_store_env(database_url))
    try:
        migrated = recordings_of(reopened).between(0, reopened.position())
    finally:
        reopened.close()
    # One transaction per command, as the commands were recorded; moments never go back.
    assert [(r.first, r.last) for r in migrated] == [(r.first, r.last) for r in recorded]
    assert [r.moment for r in migrated] == sorted(r.moment for r in migrated)


def _execute(register: Register, database_url: str, sql: str) -> None:
    datastore: Any = register.recorder.datastore  # type: ignore[attr-defined]
    if database_url.startswith("sqlite"):
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(sql)
    else:
        with datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql)


# the property: as of any moment, the versions answer what a replay answers


HOSPITALS = ("H001", "H002")
CAMPUSES = ("Campus Noord", "Campus Zuid", "Genk")
DAYS = [date(2025, 1, 1) + timedelta(days=61 * i) for i in range(12)]


def command(kind: str, n: int, pick: int, day: date) -> tuple[str, str, dict[str, Any]]:
    """A command of a random history: MID-IDs by their sequence number, so many are accepted."""
    mid_id, hospital = str(MidId(n)), f"hospital/{HOSPITALS[pick % 2]}"
    if kind == "issue":
        return hospital, "midid.issue", {"modality": ("CT", "MRI")[pick % 2]}
    if kind == "report":
        return hospital, "device.report", report(mid_id, campus=CAMPUSES[pick % 3])
    if kind == "link":
        return "fod", "midid.link", {"mid_id": mid_id}
    if kind == "change":
        data = {"mid_id": mid_id, "changes": {"campus": CAMPUSES[pick % 3]}, "effective_on": day.isoformat()}
        return hospital, "device.change", data
    if kind == "decommission":
        return (
            hospital,
            "device.decommission",
            {"mid_id": mid_id, "effective_on": day.isoformat(), "reason": "r"},
        )
    if kind == "licence":
        return (
            "fanc",
            "fanc.licence",
            {"mid_id": mid_id, "licence_ref": f"L-{pick}", "valid_from": day.isoformat()},
        )
    if kind == "billing":
        return "riziv", "billing.assign", {"mid_id": mid_id, "billing_number": f"70{pick}"}
    if kind == "cancel":
        return hospital, "midid.cancel", {"mid_id": mid_id, "reason": "not bought"}
    institution = HOSPITALS[pick % 2]
    if kind == "register":
        data = {
            "institution": institution,
            "name": institution,
            "province": ("Antwerpen", "Limburg")[pick % 2],
            "region": "flemish",
            "campuses": list(CAMPUSES),
        }
        return "fod", "institution.register", data
    return (
        "fod",
        "institution.update",
        {"institution": institution, "province": ("Limburg", "Namur")[pick % 2]},
    )


KINDS = (
    "issue",
    "issue",
    "report",
    "report",
    "link",
    "change",
    "decommission",
    "licence",
    "billing",
    "cancel",
)
commands = st.tuples(
    st.sampled_from((*KINDS, "register", "update")),
    st.integers(1, 5),
    st.integers(0, 5),
    st.sampled_from(DAYS),
)
histories = st.lists(st.lists(commands, min_size=1, max_size=4), min_size=1, max_size=7)


def questions(day: date) -> list[tuple[str, dict[str, Any]]]:
    asked: list[tuple[str, dict[str, Any]]] = [
        ("devices", {"limit": 1000}),
        ("devices", {"in_force_on": day.isoformat(), "limit": 1000}),
        ("devices", {"institution": "H001", "sort": "-installed_on"}),
        ("midids", {"limit": 1000}),
        ("discrepancies", {"status": "all", "limit": 1000}),
        ("capacity", {}),
        ("commands", {"limit": 1000}),
        ("history", {"institution": "H001", "limit": 1000}),
    ]
    for n in range(1, 6):
        asked.append(("device", {"mid_id": str(MidId(n)), "in_force_on": day.isoformat()}))
        asked.append(("history", {"mid_id": str(MidId(n)), "limit": 1000}))
    return asked


def answers(queries: Queries, day: date, as_of: str | None = None) -> dict[str, Any]:
    found = {}
    for name, filters in questions(day):
        asked = dict(filters, **({"as_of": as_of} if as_of else {}))
        try:
            answer = queries.run(name, asked)
            if isinstance(answer, dict):
                answer.pop("as_of", None)
        except QueryError as error:
            answer = error.as_reply()
        found[json.dumps([name, filters])] = json.loads(json.dumps(answer, default=str))
    return found


@contextmanager
def database(kind: str, directory: Path) -> Iterator[tuple[str, str]]:
    """An event store URL and a read-model URL, fresh for one example."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'k.db'}", f"sqlite:///{directory / 'rm.db'}"
        return
    import psycopg

    schema = f"kadaster_prop_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_DSN else "?"
    url = f"{POSTGRES_DSN}{separator}schema={schema}"
    try:
        yield url, url
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def check_history(kind: str, history: list[list[tuple[str, int, int, date]]], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder, database(kind, Path(folder)) as (events_url, rm_url):
        register = Register(env=event_store_env(events_url))
        store = ReadModelStore(rm_url)
        try:
            # Each batch of commands is one store transaction, as the ingesting role records them.
            sender = Sender(register)
            for batch in history:
                inbound = []
                for kind_, n, pick, day in batch:
                    source, type_, payload = command(kind_, n, pick, day)
                    sender.sequence += 1
                    body = sender.envelope(source, type_, payload)
                    inbound.append(
                        Inbound(body, sender.subject(source, type_), stream_sequence=sender.sequence)
                    )
                sender.processor.process(inbound)
                time.sleep(0.002)
            transactions = recordings_of(register).between(0, register.position())
            # The live read models, caught up in pieces that end anywhere, inside transactions too.
            projector = Projector(register, store, all_projections())
            projector.catch_up(batch_size=data.draw(st.integers(2, 9), label="projector batch"))
            live = Queries(register, store, projector)
            stamps = sorted(
                register.mapper.to_domain_event(n).timestamp
                for n in register.recorder.select_notifications(start=None, limit=10_000)
            )
            candidates = [
                *(datetime.fromisoformat(t.moment) for t in transactions),
                *stamps,
                stamps[0] - timedelta(seconds=1),
            ]
            moments = data.draw(
                st.lists(st.sampled_from(candidates), min_size=1, max_size=3), label="moments"
            )
            ends = {0, *(t.last for t in transactions)}
            for moment in moments:
                cut = recordings_of(register).cut(moment)
                # Never inside a transaction: before or after the whole of it.
                assert cut in ends
                assert all(not (t.first <= cut < t.last) for t in transactions)
                day = data.draw(st.sampled_from(DAYS), label="business date")
                with tempfile.TemporaryDirectory() as scratch:
                    oracle_store = ReadModelStore(f"sqlite:///{Path(scratch) / 'oracle.db'}")
                    try:
                        replay(register, oracle_store, all_projections(), through=cut)
                        oracle = Queries(register, oracle_store, today=moment.date)
                        expected = answers(oracle, day)
                    finally:
                        oracle_store.close()
                assert answers(live, day, moment_text(moment)) == expected
        finally:
            store.close()
            register.close()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=histories, data=st.data())
def test_as_of_any_moment_the_versions_answer_what_a_replay_to_that_moment_answers_on_sqlite(
    history: list[list[tuple[str, int, int, date]]], data: st.DataObject
) -> None:
    check_history("sqlite", history, data)


@pytest.mark.postgres
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=histories, data=st.data())
def test_as_of_any_moment_the_versions_answer_what_a_replay_to_that_moment_answers_on_postgres(
    history: list[list[tuple[str, int, int, date]]], data: st.DataObject
) -> None:
    if not postgres_reachable():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_DSN}")
    check_history("postgres", history, data)
