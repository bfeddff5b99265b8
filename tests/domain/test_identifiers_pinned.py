"""Identifiers pinned to the contract: MID-ID format and its last number, sources, modalities, stored ids.

Codes, fields and formats are literals copied from the integration contract, never the code's constants.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.allocation_round import ROUND_INDEX_ID, round_aggregate_id
from domain.billing import billing_number_id
from domain.care_capacity import care_capacity_id
from domain.command_record import command_record_id
from domain.device import device_id
from domain.errors import DomainError
from domain.fanc import legacy_number_id
from domain.identifiers import MidId, Modality, SerialNumber, Source, check_digits
from domain.institution import institution_id
from domain.mid_id import SEQUENCE_ID, MidIdSequence, legacy_ref_id, numbers_left_after


def refusal(action: object, *args: object) -> DomainError:
    with pytest.raises(DomainError) as refused:
        action(*args)  # type: ignore[operator]
    return refused.value


# MID-IDs: `MID-` + 7 digits + `-` + 2 check digits, sequence numbers from 1


def test_the_last_mid_id_the_format_allows_is_sequence_9999999() -> None:
    assert str(MidId(9_999_999)) == "MID-9999999-67"
    assert check_digits("9999999") == "67"


@pytest.mark.parametrize("sequence", [0, -1, 10_000_000])
def test_a_sequence_outside_seven_digits_is_never_a_mid_id(sequence: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        MidId(sequence)


def test_an_eight_digit_mid_id_is_not_a_mid_id() -> None:
    error = refusal(MidId.parse, "MID-10000000-28")
    assert (error.code, error.details[0].field) == ("schema", "data.mid_id")


def test_sequence_zero_passes_the_check_digits_but_is_refused_as_schema() -> None:
    assert check_digits("0000000") == "98"
    error = refusal(MidId.parse, "MID-0000000-98")
    assert error.code == "schema"
    assert error.details[0].message == "MID-ID sequence numbers start at 1"
    assert refusal(MidId.parse, "MID-0000000-98", "data.identifier").details[0].field == "data.identifier"


def test_a_wrong_check_names_the_field_it_was_given_as() -> None:
    error = refusal(MidId.parse, "MID-0000001-96", "data.identifier")
    assert (error.code, error.details[0].field) == ("midid_checksum", "data.identifier")
    assert (
        error.details[0].message == "'MID-0000001-96' has wrong check digits: a digit was probably mistyped"
    )


def test_a_text_that_is_no_mid_id_says_what_one_looks_like() -> None:
    error = refusal(MidId.parse, "MRI-1")
    assert error.details[0].message == (
        "'MRI-1' is not a MID-ID (expected MID-1234567-89: 'MID', 7 digits, 2 check digits)"
    )


def taken(up_to: int) -> MidIdSequence:
    """A sequence that has handed out every number up to `up_to` (one event records the last taken)."""
    sequence = MidIdSequence()
    sequence._take(number=up_to, command_id="earlier")
    sequence.collect_events()
    return sequence


def test_the_sequence_starts_at_one_and_counts_up() -> None:
    sequence = MidIdSequence()
    assert sequence.numbers_left == 9_999_999
    assert [str(sequence.take_next(f"c{n}")) for n in range(3)] == [
        "MID-0000001-95",
        "MID-0000002-92",
        "MID-0000003-89",
    ]
    assert [e.number for e in sequence.collect_events()[1:]] == [1, 2, 3]  # type: ignore[attr-defined]
    assert sequence.numbers_left == 9_999_996


def test_the_last_number_is_issued_and_the_one_after_it_is_refused_as_conflict() -> None:
    sequence = taken(9_999_998)
    assert sequence.numbers_left == 1
    assert str(sequence.take_next("last")) == "MID-9999999-67"
    assert sequence.numbers_left == 0
    sequence.collect_events()
    error = refusal(sequence.take_next, "one-too-many")
    assert error.code == "conflict"
    assert error.details[0].field is None
    assert error.details[0].message == (
        "the MID-ID sequence is exhausted: MID-9999999-67 was the last number the contract's format "
        "(7 digits) allows"
    )
    assert sequence.collect_events() == []
    assert sequence.last_number == 9_999_999


def test_the_numbers_left_count_down_to_zero_at_the_last_mid_id() -> None:
    assert numbers_left_after(0) == 9_999_999
    assert numbers_left_after(1) == 9_999_998
    assert numbers_left_after(9_999_999) == 0


# modalities: the six in scope, in any case, `_` or space for `-`


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("CT", "CT"),
        ("pet", "PET"),
        ("PET_CT", "PET-CT"),
        (" pet ct ", "PET-CT"),
        ("pet_mri", "PET-MRI"),
        ("Spect-Ct", "SPECT-CT"),
        ("mri", "MRI"),
    ],
)
def test_a_modality_is_normalised_to_the_contracts_spelling(spelling: str, value: str) -> None:
    assert Modality.parse(spelling).value == value


def test_a_modality_outside_the_six_names_them_all() -> None:
    error = refusal(Modality.parse, "X-ray")
    assert (error.code, error.details[0].field) == ("modality_not_in_scope", "data.modality")
    assert error.details[0].message == (
        "'X-ray' is not a heavy imaging modality of the kadaster "
        "(in scope: CT, PET, PET-CT, PET-MRI, SPECT-CT, MRI)"
    )
    assert refusal(Modality.parse, "US", "data.changes.modality").details[0].field == "data.changes.modality"


def test_only_mri_emits_no_ionising_radiation() -> None:
    assert {m.value for m in Modality if not m.is_ionising} == {"MRI"}


# sources: hospital/<institution>, supplier/<supplier>, fod, fanc, riziv, vazg


@pytest.mark.parametrize("authority", ["fod", "fanc", "riziv", "vazg"])
def test_each_authority_is_a_source_of_its_own(authority: str) -> None:
    source = Source.parse(authority)
    assert (source.kind, source.party, str(source)) == (authority, None, authority)
    assert source.outcome_subject == f"kadaster.outcome.{authority}"
    assert source.command_subject_prefix == f"kadaster.cmd.{authority}"


@pytest.mark.parametrize("kind", ["hospital", "supplier"])
def test_hospitals_and_suppliers_speak_under_their_own_id(kind: str) -> None:
    source = Source.parse(f"{kind}/H-0_1")
    assert (source.kind, source.party, str(source)) == (kind, "H-0_1", f"{kind}/H-0_1")
    assert source.outcome_subject == f"kadaster.outcome.{kind}.H-0_1"
    assert source.command_subject_prefix == f"kadaster.cmd.{kind}.H-0_1"
    assert Source.parse(f"{kind}/{'x' * 64}").party == "x" * 64


@pytest.mark.parametrize(
    "text", ["FOD", "fod/x", "hospital", "hospital/", "hospital/a b", f"hospital/{'x' * 65}", "patient/P1"]
)
def test_anything_else_is_not_a_source(text: str) -> None:
    error = refusal(Source.parse, text)
    assert (error.code, error.details[0].field) == ("schema", "source")
    assert error.details[0].message == (
        f"{text!r} is not a source (hospital/<id>, supplier/<id>, fod, fanc, riziv or vazg)"
    )


def test_a_hospitals_source_is_built_from_its_institution() -> None:
    assert Source.hospital("H001") == Source("hospital", "H001")
    assert refusal(Source.hospital, "a/b").code == "schema"


# stored ids: every register written so far keys its aggregates on these; they never change


def test_the_aggregate_ids_of_uniquely_named_things_never_change() -> None:
    assert MidId(1).aggregate_id == UUID("131e338c-e5a8-53e9-b11c-357c8a8d63ab")
    assert device_id("MID-0000001-95") == UUID("1696c79f-54a2-51d7-b66a-1fd10a13e04e")
    assert device_id(MidId(1)) == device_id(" mid0000001-95 ")
    assert billing_number_id(" 123 4ab") == UUID("80bd44a2-768e-5157-8e08-4a36248b4c63")
    assert billing_number_id("1234AB") == billing_number_id(" 123 4ab")
    assert legacy_number_id("fa 12") == UUID("6ab0293b-59a8-5048-8d8e-67be36fd0c16")
    assert institution_id("H001") == UUID("015c74fc-1a10-5c6a-a385-1e198837ac1c")
    assert legacy_ref_id("H001", "R1") == UUID("d12ffd5c-6895-56ca-9f7a-ac72b728227f")
    assert UUID("cc6b3def-b6c8-58a3-851f-3858577f097a") == SEQUENCE_ID
    assert round_aggregate_id("nmr-2023") == UUID("73cee35e-4e4b-5c7d-9c59-64ba21cfc3fb")
    assert UUID("cff5e83f-586c-5643-9906-9a207e905ac7") == ROUND_INDEX_ID
    assert care_capacity_id("care-regions") == UUID("c83376d2-0edf-500b-8713-9fef1a883051")
    assert command_record_id("hospital/H001", "order-1") == UUID("a25d1a94-4350-5dc7-b877-9167092f9379")


# serial numbers: the plate without case or separators


def test_serial_numbers_compare_and_hash_by_their_plate_and_read_as_typed() -> None:
    typed = SerialNumber("sn 10-01")
    assert typed == SerialNumber("SN1001")
    assert hash(typed) == hash(SerialNumber("S/N.1001".replace("/", "").replace(".", "")))
    assert len({typed, SerialNumber("SN-1001"), SerialNumber("SN-1002")}) == 2
    assert (typed.plate, typed.text, str(typed)) == ("SN1001", "sn 10-01", "sn 10-01")
    assert typed != "SN1001"
    assert SerialNumber("SN-1001") != SerialNumber("SN-1002")
