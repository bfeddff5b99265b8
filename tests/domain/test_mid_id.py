"""The MID-ID: format, check digits, parsing, and the aggregate's rules."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import DomainError
from domain.identifiers import MidId, Modality, Source
from domain.mid_id import CANCELLED, LINKED, MidIdRecord, MidIdSequence


def issued(number: int = 42, institution: str = "H001") -> MidIdRecord:
    record = MidIdRecord.issue(MidId(number), institution, Modality.CT, None, "hospital/H001", "c1")
    record.collect_events()
    return record


def test_the_contracts_examples_have_the_right_check_digits() -> None:
    assert str(MidId(1)) == "MID-0000001-95"
    assert str(MidId(42)) == "MID-0000042-69"
    assert str(MidId(43)) == "MID-0000043-66"


def test_every_mid_id_satisfies_mod_97_10() -> None:
    for number in (1, 2, 97, 1234567, 9999999):
        compact = str(MidId(number)).replace("MID-", "").replace("-", "")
        assert int(compact) % 97 == 1


@pytest.mark.parametrize("spelling", ["MID-0000042-69", "mid-0000042-69", " MID000004269 ", "mid0000042-69"])
def test_a_mid_id_is_accepted_in_any_case_with_or_without_dashes(spelling: str) -> None:
    assert MidId.parse(spelling) == MidId(42)


@pytest.mark.parametrize("number", [1, 42, 8765432, 9999999])
def test_every_single_digit_typo_is_caught(number: int) -> None:
    text = str(MidId(number))
    digit_positions = [i for i, c in enumerate(text) if c.isdigit()]
    for position in digit_positions:
        for replacement in "0123456789":
            if replacement == text[position]:
                continue
            typo = text[:position] + replacement + text[position + 1 :]
            with pytest.raises(DomainError) as refused:
                MidId.parse(typo)
            assert refused.value.code in ("midid_checksum", "schema"), typo
            if int(typo[4:11]) != 0:
                assert refused.value.code == "midid_checksum", typo


@pytest.mark.parametrize("number", [12, 1234567, 7654321, 1000009])
def test_every_adjacent_transposition_is_caught(number: int) -> None:
    digits = str(MidId(number)).replace("MID-", "").replace("-", "")
    for i in range(len(digits) - 1):
        if digits[i] == digits[i + 1]:
            continue
        swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        with pytest.raises(DomainError) as refused:
            MidId.parse(f"MID{swapped}")
        assert refused.value.code in ("midid_checksum", "schema")


def test_something_that_is_not_a_mid_id_is_a_schema_error() -> None:
    for text in ("", "MID-123", "XYZ-0000042-69", "MID-0000042-6a", "MID-0000000-98"):
        with pytest.raises(DomainError) as refused:
            MidId.parse(text)
        assert refused.value.code == "schema"


def test_only_the_six_heavy_modalities_are_in_scope() -> None:
    assert Modality.parse("pet ct") is Modality.PET_CT
    assert not Modality.MRI.is_ionising
    for outside in ("CBCT", "ultrasound", "X-ray"):
        with pytest.raises(DomainError) as refused:
            Modality.parse(outside)
        assert refused.value.code == "modality_not_in_scope"


def test_sources_are_hospitals_suppliers_or_authorities() -> None:
    assert str(Source.parse("hospital/H001")) == "hospital/H001"
    assert Source.parse("fanc").outcome_subject == "kadaster.outcome.fanc"
    for wrong in ("hospital/", "patient/1", "hospital/a b", "FOD"):
        with pytest.raises(DomainError):
            Source.parse(wrong)


def test_the_sequence_hands_out_consecutive_numbers() -> None:
    sequence = MidIdSequence()
    assert [str(sequence.take_next(f"c{i}")) for i in range(3)] == [
        "MID-0000001-95",
        "MID-0000002-92",
        "MID-0000003-89",
    ]
    assert sequence.version == 4  # started + three numbers


def test_a_holder_cancels_an_unlinked_mid_id() -> None:
    record = issued()
    record.cancel("H001", "order cancelled", "hospital/H001", "c2")
    assert record.status == CANCELLED
    assert [type(e).__name__ for e in record.collect_events()] == ["Cancelled"]


def test_a_linked_mid_id_cannot_be_cancelled() -> None:
    record = issued()
    record.link(uuid.uuid4(), "fod", "c2")
    assert record.status == LINKED
    with pytest.raises(DomainError) as refused:
        record.cancel("H001", "oops", "hospital/H001", "c3")
    assert refused.value.code == "midid_already_linked"


def test_another_hospital_cannot_cancel_a_mid_id() -> None:
    with pytest.raises(DomainError) as refused:
        issued().cancel("H002", "x", "hospital/H002", "c2")
    assert refused.value.code == "midid_not_yours"


def test_a_linked_mid_id_never_moves_to_another_device() -> None:
    record = issued()
    device = uuid.uuid4()
    assert record.link(device, "fod", "c2") is True
    assert record.link(device, "fod", "c3") is False
    with pytest.raises(DomainError) as refused:
        record.link(uuid.uuid4(), "fod", "c4")
    assert refused.value.code == "midid_already_linked"
