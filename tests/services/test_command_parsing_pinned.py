"""Command parsing pinned: MID-IDs, modalities and exact numbers as the contract spells them, and the
error codes a bad value gets; domain errors and outcomes in the contract's shape.

Codes, fields and outcome keys are literals copied from the integration contract.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.errors import DomainError, ErrorDetail
from domain.identifiers import MidId, Modality
from services.cmd_mid_ids import CancelMidId, IssueMidId
from services.cmd_rounds import Apply, Grant, OpenRound
from services.commands import CATALOGUE, Cause, load_catalogue
from services.envelope import Outcome


def errors_of(model: Any, data: dict[str, Any]) -> list[tuple[str, tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    return [(e["type"], e["loc"], e["msg"]) for e in refused.value.errors(include_url=False)]


# MID-IDs and modalities in commands


def test_a_mid_id_field_takes_any_spelling_and_keeps_the_contracts() -> None:
    parsed = CancelMidId.model_validate({"mid_id": " mid0000001-95 ", "reason": "order cancelled"})
    assert parsed.mid_id == MidId(1)
    assert parsed.model_dump(mode="json") == {"mid_id": "MID-0000001-95", "reason": "order cancelled"}
    assert CancelMidId.model_validate({"mid_id": MidId(1), "reason": "r"}).mid_id == MidId(1)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            "MID-0000001-96",
            ("midid_checksum", "'MID-0000001-96' has wrong check digits: a digit was probably mistyped"),
        ),
        (1, ("schema", "a MID-ID is a string such as MID-0000001-95")),
        (
            "MID-1",
            ("schema", "'MID-1' is not a MID-ID (expected MID-1234567-89: 'MID', 7 digits, 2 check digits)"),
        ),
    ],
)
def test_a_bad_mid_id_gets_the_contracts_code(value: Any, error: tuple[str, str]) -> None:
    assert errors_of(CancelMidId, {"mid_id": value, "reason": "r"}) == [(error[0], ("mid_id",), error[1])]


def test_a_modality_field_takes_any_spelling_and_keeps_the_contracts() -> None:
    parsed = IssueMidId.model_validate({"modality": "pet_ct"})
    assert parsed.modality is Modality.PET_CT
    assert parsed.model_dump(mode="json") == {"modality": "PET-CT", "note": None}
    assert IssueMidId.model_validate({"modality": Modality.MRI}).modality is Modality.MRI


def test_a_bad_modality_gets_the_contracts_code() -> None:
    ((code, where, message),) = errors_of(IssueMidId, {"modality": "X-ray"})
    assert (code, where) == ("modality_not_in_scope", ("modality",))
    assert message.startswith("'X-ray' is not a heavy imaging modality of the kadaster")
    assert errors_of(IssueMidId, {"modality": 7}) == [
        ("schema", ("modality",), "a modality is a string such as CT or PET-CT")
    ]


def test_unknown_fields_are_refused_and_text_is_stripped() -> None:
    assert [e[0] for e in errors_of(IssueMidId, {"modality": "CT", "colour": "red"})] == ["extra_forbidden"]
    assert CancelMidId.model_validate({"mid_id": "MID-0000001-95", "reason": "  r  "}).reason == "r"


# exact numbers in round commands


def application(activity: Any) -> dict[str, Any]:
    return {
        "round_id": "r1",
        "campus": "Noord",
        "province": "Antwerpen",
        "region": "flemish",
        "justified_activity_per_device": activity,
    }


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        (0.15, "3/20"),
        (1234, "1234"),
        ("1234.5", "2469/2"),
        (" 7 ", "7"),
        ("3/20", "3/20"),
        (0, "0"),
        ("0.000000000001", "1/1000000000000"),
        (1e14, "100000000000000"),
    ],
)
def test_a_number_is_recorded_exactly_never_as_a_float(given: Any, recorded: str) -> None:
    assert Apply.model_validate(application(given)).justified_activity_per_device == recorded


@pytest.mark.parametrize(
    "given",
    [
        -1,
        -0.5,
        "-1",
        "1e9",
        "1/0",
        "1.",
        ".5",
        "x",
        "",
        True,
        None,
        [1],
        float("inf"),
        float("nan"),
        "1" * 16,
    ],
)
def test_anything_but_a_non_negative_number_is_refused_as_schema(given: Any) -> None:
    ((code, where, message),) = errors_of(Apply, application(given))
    assert (code, where) == ("schema", ("justified_activity_per_device",))
    assert message == 'a non-negative number such as 1234, 1234.5 or "1234.5"'


def test_the_top_share_defaults_to_the_decrees_fifteen_percent() -> None:
    opened = OpenRound.model_validate({"round_id": "r1", "programme": "nmr", "period": "2024", "capacity": 1})
    assert opened.top_share == "3/20"
    assert opened.new_services_only is False


def test_a_grant_names_the_care_region_its_places_count_towards() -> None:
    ((code, where, message),) = errors_of(Grant, {"round_id": "c1", "institution": "WZC1", "units": 1})
    assert (code, where) == ("schema", ())
    assert message == "a grant names the care region its places count towards"
    assert [e[0] for e in errors_of(Grant, {"round_id": "c1", "region": "A", "units": 0})] == ["greater_than"]


# the catalogue and the outcome


def test_the_catalogue_has_the_contracts_round_commands_and_who_sends_them() -> None:
    catalogue = load_catalogue()
    senders = {t: set(spec.senders) for t, spec in catalogue.items()}
    assert senders["round.open"] == {"vazg"}
    assert senders["round.apply"] == {"hospital"}
    assert senders["round.object"] == {"hospital"}
    assert senders["round.withdraw"] == {"hospital"}
    for vazg_only in ("round.close", "round.decide", "round.rule-objection", "round.grant", "round.finalise"):
        assert senders[vazg_only] == {"vazg"}, vazg_only
    assert senders["capacity.correct"] == {"vazg"}
    assert senders["midid.issue"] == {"hospital"}
    assert catalogue is CATALOGUE
    assert all(spec.type == t and spec.summary for t, spec in catalogue.items())


def test_a_command_type_is_registered_once() -> None:
    from services.commands import command

    with pytest.raises(ValueError, match=r"command type round\.open registered twice"):
        command("round.open", OpenRound, {"vazg"}, "again")(lambda uow, data, cause: {})


def test_a_cause_gives_the_provenance_every_event_carries() -> None:
    from datetime import UTC, datetime

    from domain.identifiers import Source

    cause = Cause(Source.parse("hospital/H001"), "order-1", None, datetime(2024, 1, 1, tzinfo=UTC))
    assert cause.provenance == {"source": "hospital/H001", "command_id": "order-1"}


def test_outcomes_have_the_contracts_shape() -> None:
    accepted = Outcome.accepted("c1", "hospital/H001", "midid.issue", {"mid_id": "MID-0000001-95"})
    assert accepted.model_dump(mode="json") == {
        "command_id": "c1",
        "source": "hospital/H001",
        "type": "midid.issue",
        "status": "accepted",
        "result": {"mid_id": "MID-0000001-95"},
        "errors": [],
    }
    refused = Outcome.rejected(
        "c2", "fod", "midid.link", [ErrorDetail("midid_unknown", "never issued", "data.mid_id")]
    )
    assert refused.model_dump(mode="json") == {
        "command_id": "c2",
        "source": "fod",
        "type": "midid.link",
        "status": "rejected",
        "result": None,
        "errors": [{"code": "midid_unknown", "message": "never issued", "field": "data.mid_id"}],
    }


def test_a_domain_error_carries_one_or_more_details_and_the_first_ones_code() -> None:
    single = DomainError("conflict", "taken", "data.x")
    assert (single.code, str(single), single.details) == (
        "conflict",
        "taken",
        (ErrorDetail("conflict", "taken", "data.x"),),
    )
    details = [
        ErrorDetail("requirements_not_met", "a", "device.linked"),
        ErrorDetail("requirements_not_met", "b", "device.use"),
    ]
    several = DomainError.of(details)
    assert several.details == tuple(details)
    assert (several.code, str(several)) == ("requirements_not_met", "a")
    assert ErrorDetail("schema", "m").as_dict() == {"code": "schema", "message": "m", "field": None}
    with pytest.raises(ValueError) as refused:
        DomainError.of([])
    assert str(refused.value) == "a domain error needs at least one detail"


def test_registering_a_command_records_its_model_type_senders_handler_and_summary() -> None:
    from services.commands import CommandSpec, command

    def handler(uow: Any, data: Any, cause: Any) -> dict[str, Any]:
        return {}

    try:
        assert command("test.only", OpenRound, {"fod", "vazg"}, "a command of this test")(handler) is handler
        assert CATALOGUE["test.only"] == CommandSpec(
            OpenRound, "test.only", frozenset({"fod", "vazg"}), handler, "a command of this test"
        )
    finally:
        CATALOGUE.pop("test.only", None)
