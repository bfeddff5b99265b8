"""Round commands at their boundaries, through the pipeline: refused as `schema`, never an internal error.

Codes and fields are literals copied from the integration contract.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Sender
from tests.domain.test_allocation_policies import PROVINCES_2023, REFERENCE_2024

DEADLINE = "2099-01-15T23:59:59+01:00"


def nmr_round(round_id: str = "nmr-boundary", **changes: Any) -> dict[str, Any]:
    return {
        "round_id": round_id,
        "programme": "nmr",
        "period": "2024",
        "capacity": 2,
        "deadline": DEADLINE,
        "provinces": PROVINCES_2023,
        "reference_activity": REFERENCE_2024,
        "top_share": 0.15,
        "new_services_only": False,
        **changes,
    }


def refused_fields(outcome: dict[str, Any]) -> list[tuple[str, str | None]]:
    assert outcome["status"] == "rejected", outcome
    return [(e["code"], e["field"]) for e in outcome["errors"]]


def test_a_round_with_a_capacity_of_zero_is_refused_and_nothing_is_opened(sender: Sender) -> None:
    outcome = sender.send("vazg", "round.open", nmr_round(capacity=0))
    assert refused_fields(outcome) == [("schema", "data.capacity")]
    # The same round id is still free: the refused opening recorded nothing.
    assert sender.accepted("vazg", "round.open", nmr_round(capacity=1))["status"] == "open"


def test_a_negative_capacity_is_refused_as_schema(sender: Sender) -> None:
    outcome = sender.send("vazg", "round.open", nmr_round(capacity=-1))
    assert [code for code, _ in refused_fields(outcome)] == ["schema"]


def test_a_round_whose_provinces_have_no_recognised_device_is_refused(sender: Sender) -> None:
    provinces = [{**p, "recognised_devices": 0} for p in PROVINCES_2023]
    outcome = sender.send("vazg", "round.open", nmr_round(provinces=provinces))
    assert refused_fields(outcome) == [("schema", "data.provinces")]
    assert sender.accepted("vazg", "round.open", nmr_round())["status"] == "open"


def test_a_round_with_a_province_without_inhabitants_is_refused(sender: Sender) -> None:
    provinces = [{**PROVINCES_2023[0], "population": 0}, *PROVINCES_2023[1:]]
    outcome = sender.send("vazg", "round.open", nmr_round(provinces=provinces))
    assert [code for code, _ in refused_fields(outcome)] == ["schema"]


def test_a_round_without_provinces_is_refused(sender: Sender) -> None:
    outcome = sender.send("vazg", "round.open", nmr_round(provinces=[]))
    assert refused_fields(outcome) == [("schema", "data.provinces")]


def test_one_province_without_a_device_is_fine_and_has_priority(sender: Sender) -> None:
    provinces = [{**PROVINCES_2023[1], "recognised_devices": 0}, *PROVINCES_2023[:1], *PROVINCES_2023[2:]]
    assert sender.accepted("vazg", "round.open", nmr_round(provinces=provinces))["status"] == "open"


def test_a_care_region_with_a_programme_figure_of_zero_is_refused(sender: Sender) -> None:
    data = {
        "round_id": "care-boundary",
        "programme": "care-regions",
        "period": "2024Q1",
        "capacity": 10,
        "regions": [{"name": "Antwerpen", "programme_figure": 0, "filled": 0}],
    }
    assert [code for code, _ in refused_fields(sender.send("vazg", "round.open", data))] == ["schema"]


# no input the contract allows makes the register fail: every round command, any values of its fields

ROUND_IDS = st.sampled_from(["r1", "r2", "care-1"])
NAMES = st.one_of(
    st.sampled_from([p["name"] for p in PROVINCES_2023] + ["Brussel", "H1", ""]),
    st.text(max_size=210),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["0", "0.15", "3/20", "1/0", "-1", "1e9", "12345678901234.123456789012", " 7 ", "x"]),
    st.text(max_size=20),
)
INTEGERS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20), st.sampled_from([0, 1, True, "1", 1.5])
)
MOMENTS = st.one_of(
    st.sampled_from([DEADLINE, "2000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01", "not a time"]),
    st.datetimes().map(lambda d: d.isoformat()),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)


def maybe(field: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The field with one of the values, or left out."""
    return st.one_of(st.just({}), values.map(lambda v: {field: v}))


def data_of(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    parts = [maybe(name, values) for name, values in fields.items()]
    return st.tuples(*parts).map(lambda dicts: {k: v for d in dicts for k, v in d.items()})


PROVINCE = data_of(name=NAMES, population=INTEGERS, recognised_devices=INTEGERS)
REGION = data_of(name=NAMES, programme_figure=INTEGERS, filled=st.one_of(st.none(), INTEGERS))

OPEN = data_of(
    round_id=ROUND_IDS,
    programme=st.sampled_from(["nmr", "care-regions", "other"]),
    period=st.sampled_from(["2024", "2024Q1", "2024Q2", ""]),
    capacity=INTEGERS,
    deadline=st.one_of(st.none(), MOMENTS),
    provinces=st.one_of(st.none(), st.just(PROVINCES_2023), st.lists(PROVINCE, max_size=4)),
    reference_activity=st.one_of(
        st.none(), st.just(REFERENCE_2024), st.dictionaries(NAMES, NUMBERS, max_size=4)
    ),
    top_share=NUMBERS,
    new_services_only=st.one_of(st.booleans(), JSON),
    regions=st.one_of(st.none(), st.lists(REGION, max_size=4)),
)

COMMANDS: dict[str, tuple[str, st.SearchStrategy[dict[str, Any]]]] = {
    "round.open": ("vazg", OPEN),
    "round.apply": (
        "hospital",
        data_of(
            round_id=ROUND_IDS,
            campus=NAMES,
            province=NAMES,
            region=st.sampled_from(["flemish", "brussels", "wallonia", "Flemish"]),
            justified_activity_per_device=NUMBERS,
            has_service_on_other_campus=st.one_of(st.booleans(), JSON),
        ),
    ),
    "round.withdraw": ("hospital", data_of(round_id=ROUND_IDS)),
    "round.close": ("vazg", data_of(round_id=ROUND_IDS)),
    "round.decide": ("vazg", data_of(round_id=ROUND_IDS)),
    "round.object": ("hospital", data_of(round_id=ROUND_IDS, text=st.text(max_size=50))),
    "round.rule-objection": (
        "vazg",
        data_of(
            round_id=ROUND_IDS, institution=NAMES, upheld=st.one_of(st.booleans(), JSON), reasoning=NAMES
        ),
    ),
    "round.grant": (
        "vazg",
        data_of(round_id=ROUND_IDS, region=st.one_of(st.none(), NAMES), institution=NAMES, units=INTEGERS),
    ),
    "round.finalise": ("vazg", data_of(round_id=ROUND_IDS)),
    "capacity.correct": (
        "vazg",
        data_of(
            programme=st.sampled_from(["nmr", "care-regions"]), region=NAMES, delta=INTEGERS, reason=NAMES
        ),
    ),
}


VALID: dict[str, dict[str, Any]] = {
    "round.open": nmr_round("r1", capacity=1),
    "round.apply": {
        "round_id": "r1",
        "campus": "Mechelen",
        "province": "Antwerpen",
        "region": "flemish",
        "justified_activity_per_device": 9800,
        "has_service_on_other_campus": False,
    },
    "round.withdraw": {"round_id": "r1"},
    "round.close": {"round_id": "r1"},
    "round.decide": {"round_id": "r1"},
    "round.object": {"round_id": "r1", "text": "our activity is higher"},
    "round.rule-objection": {
        "round_id": "r1",
        "institution": "AZTurnhout",
        "upheld": True,
        "reasoning": "agreed",
    },
    "round.grant": {"round_id": "care-1", "region": "Care", "units": 1},
    "round.finalise": {"round_id": "r1"},
    "capacity.correct": {"programme": "care-regions", "region": "Care", "delta": 1, "reason": "count"},
}


@st.composite
def round_commands(draw: st.DrawFn) -> tuple[str, str, Any]:
    type_ = draw(st.sampled_from(sorted(COMMANDS)))
    kind, generated = COMMANDS[type_]
    hospitals = st.sampled_from(["AZTurnhout", "AZSintMaarten", "AZKlina", "H1"])
    source = "vazg" if kind == "vazg" else f"hospital/{draw(hospitals)}"
    how = draw(st.sampled_from(["valid", "changed", "generated", "any json"]))
    if how == "valid":
        return source, type_, VALID[type_]
    if how == "changed":
        # A valid command with some of its fields replaced by other values or left out.
        changes = draw(generated)
        dropped = draw(st.sets(st.sampled_from(sorted(VALID[type_]))))
        data = {k: v for k, v in {**VALID[type_], **changes}.items() if k not in dropped or k in changes}
        return source, type_, data
    if how == "generated":
        return source, type_, draw(generated)
    # Any JSON at all, as a careless integration might send it.
    return source, type_, draw(JSON)


STAGES = ["none", "opened", "applied", "closed", "decided", "objected"]


def own_ids(data: Any, example: int) -> Any:
    """The example's own rounds: each example starts from rounds no other example touched."""
    if not isinstance(data, dict):
        return data
    if data.get("round_id") in ("r1", "r2", "care-1"):
        data = {**data, "round_id": f"{data['round_id']}-{example}"}
    if data.get("region") == "Care":
        data = {**data, "region": f"Care-{example}"}
    return data


def prepare(sender: Sender, stage: str, example: int) -> None:
    """Valid commands that bring the example's rounds to `stage` before the generated ones arrive."""
    if stage == "none":
        return
    care = {
        "round_id": f"care-1-{example}",
        "programme": "care-regions",
        "period": f"P{example}",
        "capacity": 10,
        "regions": [{"name": f"Care-{example}", "programme_figure": 100, "filled": 50}],
    }
    sender.accepted("vazg", "round.open", care)
    sender.accepted("vazg", "round.open", own_ids(VALID["round.open"], example))
    steps = [
        ("applied", "hospital/AZSintMaarten", "round.apply", VALID["round.apply"]),
        ("applied", "hospital/AZTurnhout", "round.apply", {**VALID["round.apply"], "campus": "Turnhout"}),
        ("closed", "vazg", "round.close", VALID["round.close"]),
        ("closed", "vazg", "round.close", {"round_id": "care-1"}),
        ("decided", "vazg", "round.decide", VALID["round.decide"]),
        ("decided", "vazg", "round.decide", {"round_id": "care-1"}),
        ("objected", "hospital/AZTurnhout", "round.object", VALID["round.object"]),
    ]
    for needed, source, type_, data in steps:
        if STAGES.index(stage) < STAGES.index(needed):
            return
        sender.accepted(source, type_, own_ids(data, example))


@pytest.mark.fuzz
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stage=st.sampled_from(STAGES),
    commands=st.lists(round_commands(), min_size=1, max_size=8),
)
def test_no_round_command_makes_the_register_fail(
    sender: Sender, stage: str, commands: list[tuple[str, str, Any]]
) -> None:
    sender.sequence += 1
    example = sender.sequence
    prepare(sender, stage, example)
    for source, type_, data in commands:
        outcome = sender.send(source, type_, own_ids(data, example))
        codes = [e["code"] for e in outcome["errors"]]
        assert "internal_error" not in codes, (type_, json.dumps(data, default=str)[:500], outcome)
        assert outcome["status"] in ("accepted", "rejected")


@pytest.mark.parametrize("step", ["round.close", "round.decide", "round.finalise"])
def test_a_whole_round_at_the_smallest_capacity_runs_to_its_end(sender: Sender, step: str) -> None:
    sender.accepted("vazg", "round.open", nmr_round("smallest", capacity=1))
    sender.accepted(
        "hospital/AZSintMaarten",
        "round.apply",
        {
            "round_id": "smallest",
            "campus": "Mechelen",
            "province": "Antwerpen",
            "region": "flemish",
            "justified_activity_per_device": 9800,
        },
    )
    for command in ("round.close", "round.decide", "round.finalise"):
        result = sender.accepted("vazg", command, {"round_id": "smallest"})
        if command == step:
            break
    assert result["capacity"] == 1
