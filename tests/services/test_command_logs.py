"""Every log line about a command carries its id; an accepted one names the events it caused."""

from __future__ import annotations

import structlog

from services.register import Register
from tests.conftest import Sender


def test_the_log_ties_a_command_id_to_exactly_the_events_it_recorded(
    sender: Sender, register: Register
) -> None:
    with structlog.testing.capture_logs() as lines:
        outcome = sender.send("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="log-1")
    assert outcome["status"] == "accepted"
    (accepted,) = [line for line in lines if line["event"] == "command_accepted"]
    assert accepted["command_id"] == "log-1" and accepted["sender"] == "hospital/H001"
    recorded = [
        register.mapper.to_domain_event(n)
        for n in register.recorder.select_notifications(start=None, limit=100)
    ]
    # The first command of a fresh register: everything recorded but its own command record.
    caused = [
        f"{type(e).__qualname__} {e.originator_id}:{e.originator_version}"
        for e in recorded
        if type(e).__qualname__ != "CommandRecord.Handled"
    ]
    assert caused and accepted["events"] == caused


def test_a_rejected_and_a_repeated_command_are_logged_with_their_ids(sender: Sender) -> None:
    sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="log-2")
    with structlog.testing.capture_logs() as lines:
        sender.send("hospital/H001", "midid.issue", {"modality": "ultrasound"}, command_id="log-3")
        sender.send("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="log-2")
    said = {(line["event"], line["command_id"]) for line in lines}
    assert ("command_rejected", "log-3") in said
    assert ("command_duplicate", "log-2") in said
    rejected = next(line for line in lines if line["event"] == "command_rejected")
    assert rejected["codes"] == ["modality_not_in_scope"]
