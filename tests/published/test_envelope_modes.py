"""Commands in binary mode (`ce-*` headers) and with media-type parameters; outcomes out as CloudEvents."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from domain.command_record import command_record_id
from services.envelope import Envelope, binary_mode_attributes
from services.processor import RPC, Inbound
from services.published_events import outcome_event
from tests.conftest import Sender
from tests.published.checks import channel_of, payload_validator, read_cloudevent, schema_problems

SUBJECT = "kadaster.cmd.hospital.H001.midid.issue"


def binary(sender: Sender, data: bytes, **headers: str) -> dict[str, object]:
    sender.sequence += 1
    (handled,) = sender.processor.process(
        [Inbound(data, SUBJECT, stream_sequence=sender.sequence, headers=headers)]
    )
    return handled.outcome


def ce_headers(command_id: str, **more: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": command_id,
        "ce-source": "hospital/H001",
        "ce-type": "midid.issue",
        "ce-time": "2024-04-23T10:00:00Z",
        "Nats-Msg-Id": f"hospital/H001:{command_id}",
        **more,
    }


def test_a_command_in_binary_mode_is_accepted_and_is_what_the_asyncapi_document_describes(
    sender: Sender,
) -> None:
    headers = ce_headers("order-1", **{"Content-Type": "application/json"})
    outcome = binary(sender, b'{"modality": "CT"}', **headers)
    assert outcome["status"] == "accepted", outcome
    _, channel = channel_of(SUBJECT)
    assert "midid.issue.binary" in channel["messages"]
    assert payload_validator("midid.issue.binary", "headers").is_valid(headers)
    assert payload_validator("midid.issue.binary").is_valid({"modality": "CT"})
    assert not payload_validator("midid.issue.binary", "headers").is_valid(
        {**headers, "ce-type": "midid.cancel"}
    )
    assert outcome["command_id"] == "order-1" and outcome["source"] == "hospital/H001"


def test_sending_the_same_binary_mode_command_again_gets_the_first_outcome(sender: Sender) -> None:
    first = binary(sender, b'{"modality": "CT"}', **ce_headers("order-2"))
    again = binary(sender, b'{"modality": "CT"}', **ce_headers("order-2"))
    assert again == first and first["status"] == "accepted"


def test_a_binary_mode_command_that_is_not_json_or_misses_an_attribute_is_malformed(sender: Sender) -> None:
    broken = binary(sender, b"{modality", **ce_headers("order-3"))
    assert [(e["code"], e["field"]) for e in broken["errors"]] == [("malformed", "data")]
    headers = ce_headers("order-4")
    del headers["ce-type"]
    missing = binary(sender, b'{"modality": "CT"}', **headers)
    assert [(e["code"], e["field"]) for e in missing["errors"]] == [("malformed", "type")]


def test_extension_attributes_flow_through_both_modes() -> None:
    attributes = binary_mode_attributes(
        ce_headers(
            "x", **{"ce-person": "alice", "ce-comexampleext": "kept", "Content-Type": "application/json"}
        )
    )
    assert attributes is not None
    envelope = Envelope.model_validate({**attributes, "data": {}})
    assert envelope.person == "alice"
    assert envelope.model_extra == {"comexampleext": "kept"}
    assert envelope.datacontenttype == "application/json"
    structured = Envelope.model_validate(
        {
            "specversion": "1.0",
            "id": "x",
            "source": "fod",
            "type": "midid.link",
            "person": "bob",
            "comexampleext": "kept",
            "data": {},
        }
    )
    assert structured.person == "bob"
    assert structured.model_extra == {"comexampleext": "kept"}


def test_headers_without_ce_specversion_mean_structured_mode(sender: Sender) -> None:
    assert binary_mode_attributes({"Nats-Msg-Id": "x", "ce-id": "y"}) is None
    body = sender.envelope("hospital/H001", "midid.issue", {"modality": "CT"})
    outcome = binary(sender, body, **{"Nats-Msg-Id": "hospital/H001:z"})
    assert outcome["status"] == "accepted"


def test_a_media_type_with_parameters_is_accepted_and_another_charset_is_not(sender: Sender) -> None:
    def sent(content_type: str) -> dict[str, object]:
        envelope = json.loads(sender.envelope("hospital/H001", "midid.issue", {"modality": "CT"}))
        envelope["datacontenttype"] = content_type
        return sender.raw(json.dumps(envelope).encode(), SUBJECT)

    for fine in ("application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"):
        assert sent(fine)["status"] == "accepted", fine
    for refused in ("application/json; charset=latin-1", "text/plain", "application/xml; charset=utf-8"):
        outcome = sent(refused)
        assert [(e["code"], e["field"]) for e in outcome["errors"]] == [("malformed", "datacontenttype")]
    in_headers = binary(
        sender,
        b'{"modality": "CT"}',
        **ce_headers("order-5", **{"Content-Type": "application/json; charset=utf-8"}),
    )
    assert in_headers["status"] == "accepted"


def test_an_rpc_request_in_binary_mode_is_accepted(sender: Sender) -> None:
    (handled,) = sender.processor.process(
        [
            Inbound(
                b'{"modality": "MRI"}',
                "kadaster.rpc.hospital.H001.midid.issue",
                channel=RPC,
                headers=ce_headers(uuid.uuid4().hex),
            )
        ]
    )
    assert handled.outcome["status"] == "accepted"


def test_an_outcome_goes_out_as_a_kadaster_outcome_cloudevent_about_its_command(sender: Sender) -> None:
    accepted = sender.send("hospital/H001", "midid.issue", {"modality": "CT"}, "order-6")
    received = datetime(2024, 4, 23, 10, 0, 1, tzinfo=UTC)
    event = outcome_event(accepted, "outcome:KADASTER_CMD:7", received, 7)
    body = json.dumps(event).encode()
    assert schema_problems("kadaster.outcome.hospital.H001", body) == []
    read = read_cloudevent(body)
    assert read.get_attributes()["type"] == "kadaster.outcome"
    assert read.get_attributes()["subject"] == "hospital/H001:order-6"
    assert read.get_data() == accepted
    # A message whose id could not be read is named by its place on the stream, as its outcome says.
    unreadable = sender.raw(b"not json", SUBJECT)
    assert unreadable["keyed_by"] == "stream_sequence"
    event = outcome_event(unreadable, "outcome:KADASTER_CMD:8", received, sender.sequence)
    assert event["subject"] == f"hospital/H001:stream-seq:{sender.sequence}"
    assert schema_problems("kadaster.outcome.hospital.H001", json.dumps(event).encode()) == []


def test_a_binary_mode_command_is_kept_with_its_attributes_beside_its_bytes(sender: Sender) -> None:
    headers = ce_headers("order-7", **{"ce-person": "an.peeters", "Content-Type": "application/json"})
    outcome = binary(sender, b'{"modality": "XR"}', **headers)
    assert outcome["status"] == "rejected"
    key = command_record_id("hospital/H001", "order-7")
    kept = sender.processor.register.created([key])[key]
    assert (kept.body, kept.attributes["person"], kept.attributes["id"]) == (  # type: ignore[attr-defined]
        '{"modality": "XR"}',
        "an.peeters",
        "order-7",
    )
    structured = sender.send("hospital/H001", "midid.issue", {"modality": "CT"}, "order-8")
    key = command_record_id("hospital/H001", "order-8")
    assert structured["status"] == "accepted"
    assert sender.processor.register.created([key])[key].attributes is None  # type: ignore[attr-defined]
