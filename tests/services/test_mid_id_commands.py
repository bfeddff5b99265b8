"""MID-ID issuance and cancellation through the real command pipeline and event store."""

from __future__ import annotations

from tests.conftest import Sender


def test_a_hospital_gets_consecutive_mid_ids_for_any_modality(sender: Sender) -> None:
    first = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})
    second = sender.accepted("hospital/H002", "midid.issue", {"modality": "pet-ct"})
    assert first == {"mid_id": "MID-0000001-95", "modality": "CT", "status": "issued"}
    assert second["mid_id"] == "MID-0000002-92"
    assert second["modality"] == "PET-CT"


def test_the_same_command_again_returns_the_first_outcome_and_issues_nothing(sender: Sender) -> None:
    first = sender.send("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="req-1")
    again = sender.send("hospital/H001", "midid.issue", {"modality": "MRI"}, command_id="req-1")
    assert again == first
    following = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})
    assert following["mid_id"] == "MID-0000002-92"


def test_the_same_envelope_id_from_another_hospital_is_another_command(sender: Sender) -> None:
    one = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"}, command_id="same")
    two = sender.accepted("hospital/H002", "midid.issue", {"modality": "CT"}, command_id="same")
    assert one["mid_id"] != two["mid_id"]


def test_a_modality_outside_the_kadaster_is_refused(sender: Sender) -> None:
    sender.rejected("hospital/H001", "midid.issue", {"modality": "cone-beam CT"}, "modality_not_in_scope")


def test_a_hospital_cancels_its_own_unlinked_mid_id(sender: Sender) -> None:
    mid_id = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})["mid_id"]
    result = sender.accepted(
        "hospital/H001", "midid.cancel", {"mid_id": mid_id.lower(), "reason": "order cancelled"}
    )
    assert result["status"] == "cancelled"
    sender.rejected("hospital/H001", "midid.cancel", {"mid_id": mid_id, "reason": "again"}, "midid_cancelled")


def test_a_cancelled_number_is_never_issued_again(sender: Sender) -> None:
    mid_id = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})["mid_id"]
    sender.accepted("hospital/H001", "midid.cancel", {"mid_id": mid_id, "reason": "not bought"})
    assert sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})["mid_id"] != mid_id


def test_a_hospital_cannot_cancel_another_hospitals_mid_id(sender: Sender) -> None:
    mid_id = sender.accepted("hospital/H001", "midid.issue", {"modality": "CT"})["mid_id"]
    sender.rejected("hospital/H002", "midid.cancel", {"mid_id": mid_id, "reason": "x"}, "midid_not_yours")


def test_cancelling_a_mid_id_that_was_never_issued_is_refused(sender: Sender) -> None:
    sender.rejected(
        "hospital/H001", "midid.cancel", {"mid_id": "MID-0000043-66", "reason": "x"}, "midid_unknown"
    )


def test_a_mistyped_mid_id_is_caught_by_its_check_digits(sender: Sender) -> None:
    sender.rejected(
        "hospital/H001", "midid.cancel", {"mid_id": "MID-0000042-96", "reason": "x"}, "midid_checksum"
    )


def test_a_rejected_command_changes_nothing(sender: Sender) -> None:
    position = sender.processor.register.position()
    sender.rejected(
        "hospital/H001", "midid.cancel", {"mid_id": "MID-0000043-66", "reason": "x"}, "midid_unknown"
    )
    # Only the command record (the kept rejection) was written.
    assert sender.processor.register.position() == position + 1


def test_broken_input_gets_the_contracts_codes(sender: Sender) -> None:
    subject = "kadaster.cmd.hospital.H001.midid.issue"
    assert sender.raw(b"\xff\xfe not json", subject)["errors"][0]["code"] == "malformed"
    assert sender.raw(b'{"id": "x"}', subject)["errors"][0]["code"] == "malformed"
    forged = sender.envelope("hospital/H002", "midid.issue", {"modality": "CT"})
    assert sender.raw(forged, subject)["errors"][0]["code"] == "source_mismatch"
    wrong_type = sender.envelope("hospital/H001", "midid.cancel", {"mid_id": "MID-0000001-95", "reason": "x"})
    assert sender.raw(wrong_type, subject)["errors"][0]["code"] == "source_mismatch"
    sender.rejected("hospital/H001", "midid.teleport", {}, "unknown_type")
    sender.rejected("hospital/H001", "midid.issue", {"modality": "CT", "colour": "red"}, "schema")
    sender.rejected("hospital/H001", "midid.issue", {}, "schema")
    sender.rejected("supplier/S1", "midid.issue", {"modality": "CT"}, "forbidden")
