"""The round commands' outcomes pinned, through the pipeline: every result field and every refusal's
code, field and sentence, as integrations read them.

Codes, fields, statuses and reason codes are literals copied from the integration contract.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Sender
from tests.services.test_round_boundaries import DEADLINE, nmr_round

APPLICATION = {
    "round_id": "r1",
    "campus": "Mechelen",
    "province": "Antwerpen",
    "region": "flemish",
    "justified_activity_per_device": 9800,
}
CARE = {
    "round_id": "c1",
    "programme": "care-regions",
    "period": "2017Q1",
    "capacity": 10,
    "regions": [{"name": "Oostende", "programme_figure": 100, "filled": 50}],
}


def error_of(outcome: dict[str, Any]) -> dict[str, Any]:
    assert outcome["status"] == "rejected", outcome
    (error,) = outcome["errors"]
    return dict(error)


def test_an_mri_round_answers_each_step_with_its_state(sender: Sender) -> None:
    opened = sender.accepted("vazg", "round.open", nmr_round("r1", capacity=1))
    assert opened == {
        "round_id": "r1",
        "programme": "nmr",
        "period": "2024",
        "status": "open",
        "capacity": 1,
        "deadline": DEADLINE,
        "applications": 0,
        "policy_version": None,
    }
    assert sender.accepted("hospital/AZSintMaarten", "round.apply", APPLICATION) == {
        "round_id": "r1",
        "institution": "AZSintMaarten",
        "status": "applied",
        "applications": 1,
    }
    middelheim = {**APPLICATION, "campus": "Middelheim"}
    sender.accepted("hospital/ZNA", "round.apply", middelheim)
    assert sender.accepted("hospital/ZNA", "round.withdraw", {"round_id": "r1"}) == {
        "round_id": "r1",
        "institution": "ZNA",
        "status": "withdrawn",
        "applications": 1,
    }
    sender.accepted("hospital/ZNA", "round.apply", middelheim)
    closed = sender.accepted("vazg", "round.close", {"round_id": "r1"})
    assert (closed["status"], closed["applications"]) == ("closed", 2)
    decided = sender.accepted("vazg", "round.decide", {"round_id": "r1"})
    assert (decided["status"], decided["policy_version"]) == ("decided", "nmr/bvr-2023-08-31/v1")
    assert decided["ranking"]["granted"] == 1
    statuses = {d["institution"]: (d["outcome"], d["reason"], d["status"]) for d in decided["decisions"]}
    assert statuses == {
        "AZSintMaarten": ("granted", None, "granted"),
        "ZNA": ("refused", "lower_activity_in_province", "intent_to_refuse"),
    }
    assert sender.accepted("hospital/ZNA", "round.object", {"round_id": "r1", "text": "t"}) == {
        "round_id": "r1",
        "institution": "ZNA",
        "status": "objection_lodged",
        "against": "lower_activity_in_province",
    }
    ruled = sender.accepted(
        "vazg",
        "round.rule-objection",
        {"round_id": "r1", "institution": "ZNA", "upheld": False, "reasoning": "no"},
    )
    assert {k: ruled[k] for k in ("round_id", "institution", "upheld", "changed")} == {
        "round_id": "r1",
        "institution": "ZNA",
        "upheld": False,
        "changed": [],
    }
    assert ruled["decision"]["status"] == "intent_to_refuse"
    assert [d["institution"] for d in ruled["decisions"]] == ["AZSintMaarten", "ZNA"]
    final = sender.accepted("vazg", "round.finalise", {"round_id": "r1"})
    assert (final["status"], final["refused"]) == ("finalised", ["ZNA"])
    assert {d["institution"]: d["status"] for d in final["decisions"]} == {
        "AZSintMaarten": "granted",
        "ZNA": "refused",
    }


def test_an_upheld_objection_answers_with_the_changed_decisions(sender: Sender) -> None:
    sender.accepted("vazg", "round.open", nmr_round("r1", capacity=1))
    sender.accepted("hospital/AZSintMaarten", "round.apply", APPLICATION)
    sender.accepted("hospital/ZNA", "round.apply", {**APPLICATION, "campus": "Middelheim"})
    sender.accepted("vazg", "round.close", {"round_id": "r1"})
    sender.accepted("vazg", "round.decide", {"round_id": "r1"})
    sender.accepted("hospital/ZNA", "round.object", {"round_id": "r1", "text": "t"})
    ruled = sender.accepted(
        "vazg",
        "round.rule-objection",
        {"round_id": "r1", "institution": "ZNA", "upheld": True, "reasoning": "ok"},
    )
    assert ruled["changed"] == [
        {"institution": "ZNA", "before": "refused", "after": "granted"},
        {"institution": "AZSintMaarten", "before": "granted", "after": "refused"},
    ]
    assert ruled["decision"]["outcome"] == "granted"
    assert ruled["upheld"] is True


def test_a_care_round_answers_grants_and_corrections_with_the_registers_count(sender: Sender) -> None:
    sender.accepted("vazg", "round.open", CARE)
    assert sender.accepted(
        "vazg",
        "capacity.correct",
        {"programme": "care-regions", "region": "Oostende", "delta": -5, "reason": "r"},
    ) == {"programme": "care-regions", "region": "Oostende", "delta": -5, "filled": 45}
    sender.accepted("vazg", "round.close", {"round_id": "c1"})
    decided = sender.accepted("vazg", "round.decide", {"round_id": "c1"})
    assert decided["ranking"] == {
        "regions": [
            {
                "region": "Oostende",
                "programme_figure": 100,
                "filled": 45,
                "fill_rate": "45.00",
                "fill_rate_exact": "9/20",
                "rank": 1,
            }
        ]
    }
    assert decided["deadline"] is None
    granted = sender.accepted(
        "vazg", "round.grant", {"round_id": "c1", "region": "Oostende", "institution": "WZC1", "units": 3}
    )
    assert granted == {
        "round_id": "c1",
        "region": "Oostende",
        "institution": "WZC1",
        "units": 3,
        "granted_in_round": 3,
        "filled": 48,
    }


def test_the_round_refusals_name_the_round_and_the_field(sender: Sender) -> None:
    assert error_of(sender.send("vazg", "round.close", {"round_id": "nope"})) == {
        "code": "round_unknown",
        "message": "no round nope was ever opened",
        "field": "data.round_id",
    }
    sender.accepted("vazg", "round.open", CARE)
    assert error_of(sender.send("vazg", "round.open", CARE)) == {
        "code": "conflict",
        "message": "round c1 was already opened",
        "field": "data.round_id",
    }
    unknown_region = {
        **CARE,
        "round_id": "c2",
        "period": "2017Q2",
        "regions": [{"name": "Gent", "programme_figure": 1}],
    }
    assert error_of(sender.send("vazg", "round.open", unknown_region)) == {
        "code": "conflict",
        "message": "no filled figure is known for care region 'Gent' yet: the opening of a round gives each "
        "region's starting figure (regions[].filled)",
        "field": "data.regions.0.filled",
    }
    other_figure = {
        **CARE,
        "round_id": "c3",
        "period": "2017Q3",
        "regions": [{**CARE["regions"][0], "filled": 1}],
    }  # type: ignore[index]
    assert error_of(sender.send("vazg", "round.open", other_figure))["field"] == "data.regions.0.filled"
    known_region = {
        **CARE,
        "round_id": "c4",
        "period": "2017Q4",
        "regions": [{"name": "Oostende", "programme_figure": 9}],
    }
    assert sender.accepted("vazg", "round.open", known_region)["status"] == "open"


def test_the_rounds_refusals_through_the_pipeline_keep_the_contracts_codes(sender: Sender) -> None:
    sender.accepted("vazg", "round.open", nmr_round("r1", capacity=1))
    assert error_of(sender.send("hospital/H1", "round.withdraw", {"round_id": "r1"}))["code"] == "conflict"
    assert error_of(sender.send("vazg", "round.decide", {"round_id": "r1"}))["code"] == "conflict"
    assert (
        error_of(sender.send("hospital/H1", "round.object", {"round_id": "r1", "text": "t"}))["code"]
        == "conflict"
    )
    assert (
        error_of(sender.send("vazg", "round.grant", {"round_id": "r1", "region": "Oostende", "units": 1}))[
            "code"
        ]
        == "conflict"
    )
    sender.accepted("vazg", "round.close", {"round_id": "r1"})
    assert error_of(sender.send("hospital/H1", "round.apply", APPLICATION))["code"] == "round_closed"
