"""An outcome stays within what a message may carry, and a message that cannot be handled is settled."""

from __future__ import annotations

import json

from domain.command_record import command_record_id
from services.envelope import MAX_LISTED_ERRORS, MAX_MESSAGE_BYTES
from services.processor import CommandProcessor, Inbound
from services.register import Register
from tests.conftest import Sender


def flood_of_unknown_fields(count: int = 17_000) -> bytes:
    data = {"modality": "CT", **{f"unknown_field_{i:05d}_{'x' * 20}": "y" * 10 for i in range(count)}}
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "flood-1",
            "source": "hospital/H001",
            "type": "midid.issue",
            "data": data,
        }
    ).encode()


def test_a_rejection_with_thousands_of_errors_lists_a_hundred_and_counts_the_rest(sender: Sender) -> None:
    body = flood_of_unknown_fields()
    assert 900_000 < len(body) < MAX_MESSAGE_BYTES
    outcome = sender.raw(body, "kadaster.cmd.hospital.H001.midid.issue")
    assert outcome["status"] == "rejected"
    assert len(json.dumps(outcome).encode()) < MAX_MESSAGE_BYTES // 4
    assert len(outcome["errors"]) == MAX_LISTED_ERRORS + 1
    assert outcome["errors"][-1]["message"] == f"and {17_000 - MAX_LISTED_ERRORS} more error(s) not listed"
    assert {e["code"] for e in outcome["errors"]} == {"schema"}


def test_a_message_given_up_on_is_rejected_and_kept_under_its_key(register: Register) -> None:
    processor = CommandProcessor(register)
    body = json.dumps(
        {"specversion": "1.0", "id": "stuck-1", "source": "hospital/H001", "type": "midid.issue", "data": {}}
    ).encode()
    inbound = Inbound(body, "kadaster.cmd.hospital.H001.midid.issue", stream_sequence=7)
    handled = processor.give_up(inbound, 5)
    assert handled.outcome["status"] == "rejected"
    assert handled.outcome["command_id"] == "stuck-1"
    assert handled.outcome["errors"][0]["code"] == "internal_error"
    assert "after 5 deliveries" in handled.outcome["errors"][0]["message"]
    kept = register.created([command_record_id("hospital/H001", "stuck-1")])
    assert next(iter(kept.values())).body == body.decode()  # type: ignore[attr-defined]
    # Delivered once more, it gets the same outcome and changes nothing.
    (again,) = processor.process([inbound])
    assert again.duplicate and again.outcome == handled.outcome


def test_numbers_in_commands_are_bounded_and_refused_as_schema_beyond(sender: Sender) -> None:
    from tests.domain.test_allocation_policies import applications_2024
    from tests.services.test_rounds import application_data, open_round_2024

    sender.rejected(
        "vazg",
        "capacity.correct",
        {"programme": "care-regions", "region": "x", "delta": 10**30, "reason": "r"},
        "schema",
    )
    open_round_2024(sender)
    huge = application_data(applications_2024()[0]) | {"justified_activity_per_device": 10**40}
    outcome = sender.send(f"hospital/{applications_2024()[0]['institution']}", "round.apply", huge)
    assert outcome["status"] == "rejected" and outcome["errors"][0]["code"] == "schema", outcome


def test_a_date_in_the_wrong_format_says_which_format_is_expected(sender: Sender) -> None:
    from tests.services.test_device_lifecycle import HOSPITAL, issue, report

    mid_id = issue(sender)
    outcome = sender.send(HOSPITAL, "device.report", report(mid_id, installed_on="23/04/2024"))
    assert outcome["status"] == "rejected"
    (error,) = outcome["errors"]
    assert error["field"] == "data.installed_on"
    assert error["message"].endswith("(expected a date as YYYY-MM-DD, e.g. 2024-04-23)")
