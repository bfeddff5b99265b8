"""The command record is recorded as its bare creation event, the same one the aggregate records."""

from __future__ import annotations

import dataclasses
from typing import Any

from domain.command_record import CommandRecord, command_record_id, handled_event
from services.register import Register
from tests.conftest import Sender

FIELDS: dict[str, Any] = {
    "sender": "hospital/H001",
    "command_id": "same-1",
    "command_type": "midid.issue",
    "subject": "kadaster.cmd.hospital.H001.midid.issue",
    "channel": "stream",
    "stream_sequence": 7,
    "received_at": "2026-01-01T00:00:00+00:00",
    "body": '{"id": "same-1"}',
    "body_encoding": "utf-8",
    "outcome": {"status": "accepted", "command_id": "same-1"},
    "attributes": {"specversion": "1.0", "id": "same-1"},
    "sent_at": "2025-12-31T23:59:00+00:00",
    "person": "alice@h001",
}


def stored_without_time(register: Register, event: Any) -> tuple[str, dict[str, Any]]:
    stored = register.mapper.to_stored_event(event)
    state = register.mapper.transcoder.decode(stored.state)
    state.pop("timestamp")
    return stored.topic, state


def test_the_bare_event_is_stored_exactly_as_the_aggregate_would_store_it(register: Register) -> None:
    (from_aggregate,) = CommandRecord(**FIELDS).collect_events()
    bare = handled_event(**FIELDS)
    assert type(bare) is type(from_aggregate)
    assert bare.originator_id == from_aggregate.originator_id == command_record_id("hospital/H001", "same-1")
    assert bare.originator_version == from_aggregate.originator_version == 1
    assert stored_without_time(register, bare) == stored_without_time(register, from_aggregate)


def test_a_store_with_records_written_by_the_aggregate_still_loads_and_answers_duplicates(
    register: Register, sender: Sender
) -> None:
    # A record written the former way, through the aggregate, then the same command sent again.
    old = CommandRecord(**{**FIELDS, "command_id": "old-1", "outcome": {"status": "accepted", "first": 1}})
    register.save(old)
    again = sender.send("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="old-1")
    assert again == {"status": "accepted", "first": 1}
    # And a record written the new way loads back as the aggregate.
    sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="new-1")
    loaded = register.repository.get(command_record_id("hospital/H001", "new-1"))
    assert isinstance(loaded, CommandRecord)
    assert loaded.accepted and loaded.command_id == "new-1" and loaded.channel == "stream"


def test_the_comparison_above_sets_every_field_the_event_class_declares() -> None:
    common = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    declared = {f.name for f in dataclasses.fields(CommandRecord.Handled)} - common
    assert declared == set(FIELDS)
