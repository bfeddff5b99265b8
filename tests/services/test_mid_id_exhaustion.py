"""The last MID-ID the format allows, through the pipeline, and the gauge that warns well before it.

Codes and formats are literals copied from the integration contract.
"""

from __future__ import annotations

import re

from structlog.testing import capture_logs

from adapters import metrics
from domain.mid_id import MidIdSequence
from services.processor import Inbound
from services.register import Register
from tests.conftest import Sender

CONTRACT_MID_ID = re.compile(r"^MID-\d{7}-\d{2}$")


def sequence_taken_up_to(register: Register, number: int) -> None:
    """Given a register that has handed out every MID-ID up to `number`."""
    sequence = MidIdSequence()
    sequence._take(number=number, command_id="earlier")
    register.save(sequence)


def issue(sender: Sender) -> dict[str, object]:
    return sender.send("hospital/H001", "midid.issue", {"modality": "CT"})


def test_the_last_mid_id_is_issued_and_the_next_request_is_refused_as_conflict(
    sender: Sender, register: Register
) -> None:
    sequence_taken_up_to(register, 9_999_998)
    last = issue(sender)
    assert last["status"] == "accepted"
    assert last["result"]["mid_id"] == "MID-9999999-67"  # type: ignore[index]
    refused = issue(sender)
    assert refused["status"] == "rejected"
    assert [e["code"] for e in refused["errors"]] == ["conflict"]  # type: ignore[attr-defined]
    assert "exhausted" in refused["errors"][0]["message"]  # type: ignore[index]


def test_no_request_ever_gets_a_mid_id_outside_the_contracts_format(
    sender: Sender, register: Register
) -> None:
    sequence_taken_up_to(register, 9_999_997)
    issued = [issue(sender) for _ in range(4)]
    mid_ids = [o["result"]["mid_id"] for o in issued if o["status"] == "accepted"]  # type: ignore[index]
    assert mid_ids == ["MID-9999998-70", "MID-9999999-67"]
    assert all(CONTRACT_MID_ID.match(m) for m in mid_ids)
    assert [o["status"] for o in issued] == ["accepted", "accepted", "rejected", "rejected"]


def test_a_backfill_takes_from_the_same_sequence_and_is_refused_at_its_end(
    sender: Sender, register: Register
) -> None:
    sequence_taken_up_to(register, 9_999_999)
    outcome = sender.send(
        "fod",
        "midid.backfill",
        {
            "institution": "H001",
            "modality": "CT",
            "legacy_ref": "OLD-1",
            "manufacturer": "Siemens",
            "model": "Somatom",
            "serial_number": "SN-1",
            "campus": "Noord",
            "installed_on": "2015-01-01",
            "use": "clinical",
        },
    )
    assert [e["code"] for e in outcome["errors"]] == ["conflict"]


def test_the_gauge_shows_the_numbers_left_and_warns_only_below_a_hundred_thousand() -> None:
    with capture_logs() as logs:
        assert metrics.note_issued("MID-0000001-95") == 9_999_998
        assert metrics.MIDID_NUMBERS_LEFT._value.get() == 9_999_998  # type: ignore[attr-defined]
        assert metrics.note_issued("MID-9899999-46") == 100_000
        assert metrics.note_issued("MID-9900001-40") == 99_998
        assert metrics.note_issued("MID-9990000-91") == 9_999
        assert metrics.note_issued("MID-9999000-57") == 999
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [(w["event"], w["numbers_left"]) for w in warnings] == [
        ("midid_numbers_running_low", 100_000),
        ("midid_numbers_running_low", 999),
    ]
    assert metrics.MIDID_NUMBERS_LEFT._value.get() == 999  # type: ignore[attr-defined]


def test_the_gauge_follows_every_issued_mid_id_counted_by_the_roles(
    sender: Sender, register: Register
) -> None:
    sequence_taken_up_to(register, 9_999_990)
    body = sender.envelope("hospital/H001", "midid.issue", {"modality": "MRI"})
    handled = sender.processor.process(
        [Inbound(body, sender.subject("hospital/H001", "midid.issue"), stream_sequence=1)]
    )
    metrics.count(handled)
    assert metrics.MIDID_NUMBERS_LEFT._value.get() == 8  # type: ignore[attr-defined]
