"""Hostile and broken input: every message gets one structured rejection, nothing crashes, bytes are kept."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.command_record import command_record_id
from services.commands import load_catalogue
from services.envelope import MAX_MESSAGE_BYTES
from services.processor import CommandProcessor, Inbound
from services.register import Register, event_store_env

CONTRACT_CODES = {
    "malformed",
    "schema",
    "unknown_type",
    "source_mismatch",
    "forbidden",
    "modality_not_in_scope",
    "midid_checksum",
    "midid_unknown",
    "midid_not_yours",
    "midid_already_linked",
    "midid_cancelled",
    "device_unknown",
    "device_decommissioned",
    "requirements_not_met",
    "legacy_number_expired",
    "not_in_fanc_scope",
    "round_closed",
    "round_unknown",
    "conflict",
}
SUBJECT = "kadaster.cmd.hospital.H001.midid.issue"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["MID-0000001-95", "mid000000195", "CT", "2024-01-01", "", "1e999999", "hospital/H002"]
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@contextmanager
def processor() -> Iterator[CommandProcessor]:
    with tempfile.TemporaryDirectory() as directory:
        register = Register(env=event_store_env(f"sqlite:///{Path(directory) / 'k.db'}"))
        try:
            yield CommandProcessor(register)
        finally:
            register.close()


def assert_handled_and_kept(
    proc: CommandProcessor, body: bytes, subject: str = SUBJECT, seq: int = 1
) -> dict[str, Any]:
    (handled,) = proc.process([Inbound(body, subject, stream_sequence=seq, msg_id=f"fuzz-{seq}")])
    outcome = handled.outcome
    assert outcome["status"] in ("accepted", "rejected")
    if outcome["status"] == "rejected":
        assert outcome["errors"], outcome
        for error in outcome["errors"]:
            assert error["code"] in CONTRACT_CODES, error
            assert error["message"]
    # The bytes are kept exactly as they came, under the command's key.
    key = outcome["command_id"] if outcome["command_id"] is not None else f"nats-msg-id:fuzz-{seq}"
    stored = proc.register.recorder.select_events(command_record_id(outcome["source"], key), limit=1)
    assert stored, "the command was not kept"
    record = proc.register.mapper.to_domain_event(stored[0])
    kept = record.body.encode() if record.body_encoding == "utf-8" else base64.b64decode(record.body)  # type: ignore[attr-defined]
    assert kept == body
    return outcome


@given(body=st.binary(max_size=300))
def test_random_bytes_are_rejected_as_malformed_and_kept(body: bytes) -> None:
    with processor() as proc:
        outcome = assert_handled_and_kept(proc, body)
        assert outcome["status"] == "rejected"


@given(
    type_=st.sampled_from(sorted(load_catalogue())),
    data=json_values,
    extra=st.dictionaries(
        st.sampled_from(["id", "source", "specversion", "type", "time", "datacontenttype", "data"]),
        json_values,
        max_size=3,
    ),
    cut=st.integers(0, 400),
)
def test_any_envelope_gets_one_structured_outcome(
    type_: str, data: Any, extra: dict[str, Any], cut: int
) -> None:
    source = "hospital/H001"
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": "fuzz",
        "source": source,
        "type": type_,
        "data": data,
    }
    envelope.update(extra)
    body = json.dumps(envelope).encode()
    subject = f"kadaster.cmd.hospital.H001.{type_}"
    with processor() as proc:
        assert_handled_and_kept(proc, body, subject, seq=1)
        # The same bytes truncated anywhere, and with invalid UTF-8 spliced in.
        assert_handled_and_kept(proc, body[:cut], subject, seq=2)
        assert_handled_and_kept(proc, body[:cut] + b"\xc3\x28" + body[cut:], subject, seq=3)


def test_deeply_nested_json_is_rejected_without_crashing() -> None:
    with processor() as proc:
        for depth in (100, 10_000, 200_000):
            body = (
                b'{"specversion": "1.0", "id": "deep", "source": "hospital/H001", '
                b'"type": "midid.issue", "data": '
            )
            body += b"[" * depth + b"]" * depth + b"}"
            outcome = assert_handled_and_kept(proc, body, seq=depth)
            assert outcome["status"] == "rejected"


def test_huge_numbers_and_oversized_messages_are_rejected() -> None:
    with processor() as proc:
        huge = json.dumps(
            {
                "specversion": "1.0",
                "id": "huge",
                "source": "hospital/H001",
                "type": "midid.issue",
                "data": {"modality": 10**4000},
            }
        ).encode()
        assert assert_handled_and_kept(proc, huge, seq=1)["errors"][0]["code"] == "schema"
        oversized = b'{"specversion": "1.0", "data": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
        assert assert_handled_and_kept(proc, oversized, seq=2)["errors"][0]["code"] == "malformed"


def test_a_forged_source_is_refused_and_does_not_poison_the_real_senders_key() -> None:
    with processor() as proc:
        forged = json.dumps(
            {
                "specversion": "1.0",
                "id": "shared-id",
                "source": "hospital/H002",
                "type": "midid.issue",
                "data": {"modality": "CT"},
            }
        ).encode()
        assert assert_handled_and_kept(proc, forged, seq=1)["errors"][0]["code"] == "source_mismatch"
        genuine = forged  # the same bytes, now on H002's own subject
        outcome = assert_handled_and_kept(proc, genuine, "kadaster.cmd.hospital.H002.midid.issue", seq=2)
        assert outcome["status"] == "accepted"
