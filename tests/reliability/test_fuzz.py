"""Hostile and broken input: one structured outcome each, contract codes only, bytes kept, no harm done."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.bootstrap import all_projections
from adapters.nats.relay import event_messages
from domain.command_record import command_record_id
from domain.identifiers import MidId
from projections.projector import Projector
from projections.store import ReadModelStore
from services.commands import load_catalogue
from services.envelope import MAX_MESSAGE_BYTES
from services.processor import CommandProcessor, Inbound
from services.register import Register, event_store_env
from tests.conftest import Sender
from tests.projections import scenario
from tests.reliability.fuzzing import CONTRACT_CODES, tally

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
    (handled,) = proc.process(
        [Inbound(body, subject, stream_sequence=seq, msg_id=f"hospital/H001:fuzz-{seq}")]
    )
    outcome = handled.outcome
    assert outcome["status"] in ("accepted", "rejected")
    tally("fuzzed inputs")
    tally(f"fuzzed inputs {outcome['status']}")
    for error in outcome["errors"][:1]:
        tally(f"fuzzed inputs rejected with {error['code']}")
    if outcome["status"] == "rejected":
        assert outcome["errors"], outcome
        for error in outcome["errors"]:
            assert error["code"] in CONTRACT_CODES, error
            assert error["message"]
    else:
        assert outcome["errors"] == [] and outcome["command_id"], outcome
    # The bytes are kept exactly as they came, under the command's key.
    key = outcome["command_id"]
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


# Every command's data, field by field: mostly plausible values (known MID-IDs, rounds, dates), now
# and then a hostile one or none, against a register that already holds the scripted devices and round.

CATALOGUE = load_catalogue()
HUGE = st.sampled_from([2**63, -(2**63) - 1, 10**30, -(10**30), 10**4000, 1e308, -1e308, 0, -1])
TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "x" * 300, "\x00", "\u202e", "H001"])
DATES = st.sampled_from(
    ["2024-03-01", "2016-06-01", "2023-09-30", "2023-10-01", "2099-12-31", "2024-02-30", "01/03/2024"]
)
MID_IDS = [
    scenario.CT_H001,
    scenario.MRI_H001,
    scenario.PETCT_H002,
    scenario.CT_H002,
    scenario.BACKFILLED_H001,
    str(MidId(6)),
    str(MidId(7)),
    f"  {str(MidId(3)).lower().replace('-', '')} ",
    "MID-0000001-96",
]
DEVICE_FIELDS = {
    "manufacturer": st.sampled_from(["Siemens", "GE"]) | TEXT,
    "model": st.sampled_from(["Somatom X.cite", "Revolution"]) | TEXT,
    "serial_number": st.sampled_from(["SN-1001", "SN-1002", "GE-77", "BV-7"]),
    "campus": st.sampled_from(["Campus Noord", "Campus Zuid", "Genk", "Elsewhere"]),
    "installed_on": DATES,
    "use": st.sampled_from(["clinical", "research", "mixed", "veterinary"]),
}
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    **DEVICE_FIELDS,
    "mid_id": st.sampled_from(MID_IDS),
    "identifier": st.sampled_from([*MID_IDS, "FANC-0042", "FANC-0001"]),
    "modality": st.sampled_from(["CT", "MRI", "PET-CT", "PET", "SPECT-CT", "PET-MRI", "ct", "ultrasound"]),
    "institution": st.sampled_from(["H001", "H002", "H999", "bad id!"]),
    "province": st.sampled_from(["Antwerpen", "Limburg", "Vlaams-Brabant", "Atlantis"]),
    "region": st.sampled_from(["flemish", "brussels", "wallonia", "mars"]),
    "round_id": st.sampled_from([scenario.ROUND, "care-2024", "nope", "bad id!"]),
    "programme": st.sampled_from(["nmr", "care-regions", "x"]),
    "period": st.sampled_from(["2023", "2024Q1", "2017Q1", ""]),
    "legacy_number": st.sampled_from(["FANC-0042", "FANC-0001"]),
    "legacy_ref": st.sampled_from(["CT1", "CT2"]),
    "billing_number": st.sampled_from(["7001", "7002"]),
    "licence_ref": st.sampled_from(["FANC-L-1", "FANC-L-2"]),
    "capacity": st.integers(-2, 5) | HUGE,
    "units": st.integers(-2, 5) | HUGE,
    "delta": st.integers(-5, 5) | HUGE,
    "justified_activity_per_device": st.sampled_from(["5000", "0.15", "1e3", "-1", "abc", 5000, 0.1]),
    "top_share": st.sampled_from(["0.15", 0.15, "3/20", "2", "-1", "1/0"]),
    "has_service_on_other_campus": st.booleans(),
    "new_services_only": st.booleans(),
    "upheld": st.booleans(),
    "deadline": st.sampled_from(["2099-12-31T23:59:59Z", "2020-01-01T00:00:00Z", "2024-01-01", "soon"]),
    "valid_from": DATES,
    "valid_until": DATES,
    "received_on": DATES,
    "effective_on": DATES,
    "registered_on": DATES,
    "campuses": st.lists(DEVICE_FIELDS["campus"], max_size=3),
    "provinces": st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["Antwerpen", "Limburg"]),
                "population": st.integers(-1, 2_000_000) | HUGE,
                "recognised_devices": st.integers(-1, 30) | HUGE,
            }
        ),
        max_size=3,
    ),
    "regions": st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["flemish", "brussels"]),
                "programme_figure": st.integers(-1, 40) | HUGE,
                "filled": st.integers(-1, 40) | HUGE,
            }
        ),
        max_size=3,
    ),
    "reference_activity": st.dictionaries(
        st.sampled_from(["H001", "H002", "Z1"]), st.sampled_from(["5000", "0", "-3", "x"]), max_size=3
    ),
    "changes": st.dictionaries(st.sampled_from(sorted(DEVICE_FIELDS)), st.none() | DATES | TEXT, max_size=3),
    "corrections": st.dictionaries(
        st.sampled_from(sorted(DEVICE_FIELDS)), st.none() | DATES | TEXT, max_size=3
    ),
}
HOSTILE = json_values | HUGE | TEXT
SENDERS = {
    "hospital": ["hospital/H001", "hospital/H002", "hospital/H999"],
    "supplier": ["supplier/SIEMENS", "supplier/GE"],
}


@st.composite
def fuzzed_command(draw: st.DrawFn, type_: str) -> tuple[str, bytes]:
    """(subject, body) of one command of `type_`, each field plausible, hostile or missing."""
    spec = CATALOGUE[type_]
    data: dict[str, Any] = {}
    for name in spec.model.model_fields:
        how = draw(st.sampled_from(["plausible"] * 6 + ["hostile", "missing"]))
        if how != "missing":
            data[name] = draw(PLAUSIBLE.get(name, HOSTILE) if how == "plausible" else HOSTILE)
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(min_size=1, max_size=12))] = draw(json_values)  # a field no command has
    sender = draw(st.sampled_from(sorted(spec.senders)))
    source = draw(st.sampled_from(SENDERS.get(sender, [sender])))
    # Now and then a source that is not the subject's: a forged one.
    claimed = draw(st.sampled_from([source] * 9 + ["hospital/H002", "fod"]))
    envelope: dict[str, Any] = {"specversion": "1.0", "id": draw(st.uuids()).hex, "source": claimed}
    envelope.update(type=type_, data=data)
    if draw(st.booleans()):
        envelope["time"] = draw(st.sampled_from(["2024-04-23T10:00:00Z", "2024-04-23", "noon", None]))
    return f"kadaster.cmd.{source.replace('/', '.')}.{type_}", json.dumps(envelope).encode()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A register holding the scripted devices, MID-IDs and round, with its read models caught up."""
    directory = tmp_path_factory.mktemp("fuzz-register")
    register = Register(env=event_store_env(f"sqlite:///{directory / 'kadaster.db'}"))
    try:
        sender = Sender(register)
        scenario.run(sender.send, [*scenario.LIFECYCLE, *scenario.MORE])
        store = ReadModelStore(f"sqlite:///{directory / 'readmodels.db'}")
        try:
            Projector(register, store, all_projections()).catch_up()
        finally:
            store.close()
    finally:
        register.close()
    return directory


@given(commands=st.lists(st.sampled_from(sorted(CATALOGUE)).flatmap(fuzzed_command), min_size=1, max_size=4))
def test_every_commands_fuzzed_data_gets_one_outcome_and_the_relay_and_read_models_take_what_was_recorded(
    populated: Path, commands: list[tuple[str, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / "register"
        shutil.copytree(populated, copy)
        register = Register(env=event_store_env(f"sqlite:///{copy / 'kadaster.db'}"))
        store = ReadModelStore(f"sqlite:///{copy / 'readmodels.db'}")
        try:
            before = register.recorder.max_notification_id() or 0
            proc = CommandProcessor(register)
            for seq, (subject, body) in enumerate(commands, start=1000):
                assert_handled_and_kept(proc, body, subject, seq)
            # Whatever was recorded can be published on KADASTER_EVT ...
            recorded = register.recorder.select_notifications(start=before + 1, limit=10_000)
            for _, body, _ in event_messages(register, recorded):
                json.loads(body)
            # ... and every read model takes it in, all the way to the head of the log.
            projector = Projector(register, store, all_projections())
            projector.catch_up()
            assert {p["position"] for p in projector.positions().values()} == {projector.head()}
        finally:
            store.close()
            register.close()
