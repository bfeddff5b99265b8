"""The register's own queries run on the recorder of its backend, chosen through the library's settings."""

from __future__ import annotations

import uuid

from eventsourcing.domain import Aggregate

from services.postgres_recorder import PostgresRegisterRecorder
from services.recorders import SelectsCreated, SelectsVersionsAt, SQLiteRegisterRecorder
from services.register import Register


class Thing(Aggregate):
    """Any aggregate; the query is the same for every kind."""

    def touch(self) -> None:
        self.trigger_event(self.Event)


def test_each_backend_gets_the_register_s_own_recorder(register: Register, database_url: str) -> None:
    expected = SQLiteRegisterRecorder if database_url.startswith("sqlite") else PostgresRegisterRecorder

    assert type(register.recorder) is expected
    assert isinstance(register.recorder, SelectsCreated)


def test_the_creation_events_of_many_aggregates_come_in_one_answer(register: Register) -> None:
    first, second = Thing(), Thing()
    second.touch()
    register.save(first, second)
    missing = uuid.uuid4()

    found = register.created([first.id, missing, second.id])

    assert set(found) == {first.id, second.id}
    assert all(event.originator_version == 1 for event in found.values())
    assert register.created([]) == {}


def test_a_recorder_without_the_query_still_answers_one_aggregate_at_a_time() -> None:
    register = Register(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    thing = Thing()
    thing.touch()
    register.save(thing)

    assert not isinstance(register.recorder, SelectsCreated)
    assert list(register.created([thing.id, uuid.uuid4()])) == [thing.id]


def versions_told(register: Register) -> tuple[list[dict[uuid.UUID, int]], uuid.UUID, uuid.UUID]:
    """Two aggregates saved in three store transactions, and each one's versions at every position."""
    first, second = Thing(), Thing()
    register.save(first)
    first.touch()
    second.touch()
    register.save(first, second)
    second.touch()
    register.save(second)
    missing = uuid.uuid4()
    told = [register.versions_at([first.id, second.id, missing], n) for n in range(register.position() + 1)]
    return told, first.id, second.id


def test_each_aggregates_version_at_a_log_position_is_what_was_recorded_up_to_it(
    register: Register,
) -> None:
    told, first, second = versions_told(register)

    # Positions: 1 first v1; 2-4 first v2, second v1 and v2 (in the order saved); 5 second v3.
    assert told == [
        {},
        {first: 1},
        {first: 2},
        {first: 2, second: 1},
        {first: 2, second: 2},
        {first: 2, second: 3},
    ]
    assert register.versions_at([], 5) == {}


def test_a_recorder_without_the_query_tells_the_versions_at_a_position_from_its_log() -> None:
    register = Register(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    told, first, second = versions_told(register)

    assert not isinstance(register.recorder, SelectsVersionsAt)
    assert told[1] == {first: 1}
    assert told[-1] == {first: 2, second: 3}
