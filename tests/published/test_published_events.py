"""Every domain event goes out as a CloudEvent in the contract's words, or is declared bookkeeping."""

from __future__ import annotations

import json
import re
import typing
from collections import Counter
from pathlib import Path

import pytest

from adapters.ledger.publisher import CHECKPOINT_SUBJECT, checkpoint_message, read_checkpoint
from adapters.nats.relay import event_messages
from domain.events import event_classes
from domain.identifiers import MidId
from services.ledger import Checkpoint
from services.published_events import (
    NOT_PUBLISHED,
    PUBLISHED,
    UnnamedEvent,
    data_model,
    domain_aggregates,
    public_event,
    topic_of,
)
from services.register import Register
from tests.conftest import Sender
from tests.published.checks import read_cloudevent, schema_problems
from tests.published.scenario import FULL_LIFE

PUBLIC_TYPE = re.compile(r"^[a-z]+(-[a-z]+)*\.[a-z]+(-[a-z]+)*$")


# the published language


def test_every_recorded_domain_event_has_a_public_name_or_is_declared_internal() -> None:
    recorded = {cls for aggregate in domain_aggregates() for cls in event_classes(aggregate)}
    assert len(recorded) > 40
    unnamed = sorted(topic_of(cls) for cls in recorded - set(PUBLISHED) - set(NOT_PUBLISHED))
    assert unnamed == [], "give each a public name in PUBLISHED, or a reason in NOT_PUBLISHED"
    assert set(PUBLISHED) & set(NOT_PUBLISHED) == set()
    assert set(PUBLISHED) | set(NOT_PUBLISHED) <= recorded


def test_public_types_are_unique_lower_case_with_one_dot_and_name_their_subject() -> None:
    types = [public.type for public in PUBLISHED.values()]
    assert len(types) == len(set(types))
    assert [t for t in types if not PUBLIC_TYPE.match(t)] == []
    assert {"midid.issued", "device.reported", "device.linked", "billing.assigned", "round.decided"} <= set(
        types
    )
    for public in PUBLISHED.values():
        assert public.subject == f"kadaster.evt.{public.type}"
        assert public.fields[0] == public.about


def test_every_public_event_has_typed_data_and_names_the_command_that_caused_it() -> None:
    for cls, public in PUBLISHED.items():
        assert list(data_model(cls).model_fields) == list(public.fields)
        hints = typing.get_type_hints(cls)
        assert {"source", "command_id"} <= set(hints), cls.__qualname__
        assert not {"source", "command_id"} & set(public.fields), "the causation says who sent it"


def test_an_event_without_a_public_name_is_refused_rather_than_published_under_its_class_name() -> None:
    with pytest.raises(UnnamedEvent, match=r"domain\.access:Grant\.Given has no public name"):
        public_event("domain.access:Grant.Given")


def test_internal_bookkeeping_is_never_told() -> None:
    for cls in NOT_PUBLISHED:
        assert public_event(topic_of(cls)) is None


# a whole life, as the relay would publish it


def full_life(register: Register, sender: Sender) -> list[tuple[str, bytes, str]]:
    for step in FULL_LIFE:
        outcome = sender.send(step.source, step.type, step.data, step.command_id)
        assert outcome["status"] == "accepted", (step.command_id, outcome)
    notifications = register.recorder.select_notifications(start=1, limit=10_000)
    return event_messages(register, notifications)


def test_every_event_of_a_full_life_is_a_cloudevent_the_sdk_reads_and_the_asyncapi_document_describes(
    register: Register, sender: Sender
) -> None:
    messages = full_life(register, sender)
    published = {public.type for public in PUBLISHED.values()}
    seen: Counter[str] = Counter()
    for subject, body, msg_id in messages:
        event = read_cloudevent(body)
        assert schema_problems(subject, body) == [], subject
        attributes = event.get_attributes()
        assert (attributes["specversion"], attributes["source"]) == ("1.0", "kadaster")
        assert attributes["id"] == msg_id and subject == f"kadaster.evt.{attributes['type']}"
        assert attributes["type"] in published
        assert attributes["time"].tzinfo is not None
        seen[attributes["type"]] += 1
        # No class names, aggregate ids or Python paths leak out.
        assert b"domain." not in body and b"aggregate_id" not in body and b"originator" not in body
    # Every kind of public event happened in this life, and nothing else was told.
    assert set(seen) == published


def test_ids_are_log_positions_sequences_have_no_gaps_and_each_names_its_cause(
    register: Register, sender: Sender
) -> None:
    messages = full_life(register, sender)
    events = [json.loads(body) for _, body, _ in messages]
    positions = [int(e["id"]) for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    # Internal bookkeeping (the MID-ID counter, command records, indexes) takes log positions too.
    assert positions[-1] > len(positions)
    causes = {f"{step.source}:{step.command_id}" for step in FULL_LIFE}
    assert {e["causation"] for e in events} <= causes


def test_the_data_uses_the_contracts_names_and_the_subject_is_what_the_event_is_about(
    register: Register, sender: Sender
) -> None:
    events = {}
    for _, body, _ in full_life(register, sender):
        event = json.loads(body)
        events.setdefault(event["type"], event)
    issued = events["midid.issued"]
    assert issued["subject"] == str(MidId(1)) and issued["causation"] == "hospital/H001:s04-issue-ct"
    assert issued["data"] == {
        "mid_id": str(MidId(1)),
        "institution": "H001",
        "modality": "CT",
        "note": None,
        "legacy_ref": None,
    }
    reported = events["device.reported"]
    assert reported["subject"] == str(MidId(1))
    assert reported["data"]["institution"] == "H001" and reported["data"]["installed_on"] == "2024-03-01"
    assert events["billing.assigned"]["data"] == {
        "mid_id": str(MidId(1)),
        "institution": "H001",
        "billing_number": "7001",
    }
    assert events["round.decided"]["subject"] == "nmr-2023"
    assert events["institution.registered"]["subject"] == "H001"


def test_a_message_that_breaks_the_document_is_caught_by_the_schema_check(
    register: Register, sender: Sender
) -> None:
    subject, body, _ = full_life(register, sender)[0]
    event = json.loads(body)
    assert schema_problems(subject, body) == []
    for broken in (
        {**event, "source": "hospital/H001"},
        {**event, "sequence": "1"},
        {**event, "data": {**event["data"], "aggregate_id": "x"}},
        {k: v for k, v in event.items() if k != "causation"},
    ):
        assert schema_problems(subject, json.dumps(broken).encode()) != [], broken


def test_the_readme_names_every_public_type() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert [p.type for p in PUBLISHED.values() if f"`{p.type}`" not in readme] == []


def test_a_checkpoint_goes_out_as_a_ledger_checkpoint_event_that_a_verifier_reads_whole_or_as_its_data() -> (
    None
):
    checkpoint = Checkpoint(
        tree_size=1000,
        root_hash="ab" * 32,
        chain_hash="cd" * 32,
        timestamp="2026-12-01T10:00:00Z",
        key_id="k1",
        signature="c2lnbmF0dXJl",
    )
    body, headers = checkpoint_message(checkpoint)
    assert schema_problems(CHECKPOINT_SUBJECT, body) == []
    event = read_cloudevent(body)
    assert (event.get_type(), event.get_subject(), event.get_id()) == (
        "ledger.checkpoint",
        "1000",
        headers["Nats-Msg-Id"],
    )
    data = event.get_data()
    assert isinstance(data, dict) and data["id"] == headers["Nats-Msg-Id"]
    # The whole message, its data, and the message before CloudEvents all read as the same checkpoint.
    assert read_checkpoint(body) == checkpoint
    assert read_checkpoint(json.dumps(data)) == checkpoint
    assert (
        read_checkpoint(json.dumps({"id": "ledger-checkpoint:1000:x", **checkpoint.model_dump()}))
        == checkpoint
    )
