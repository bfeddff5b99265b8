"""The allocation round, care capacity and round index aggregates: given events, when a command, then."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from domain.allocation_policies import (
    GRANTED,
    LOWER_ACTIVITY_IN_PROVINCE,
    NOT_IN_TOP_SHARE,
    OUTSIDE_FLEMISH_REGION,
    REFUSED,
)
from domain.allocation_round import (
    CLOSED,
    DECIDED,
    FINALISED,
    INTENT_TO_REFUSE,
    AllocationRound,
    RoundIndex,
)
from domain.care_capacity import CareCapacity
from domain.errors import DomainError
from tests.domain.test_allocation_policies import PROVINCES_2023, REFERENCE_2024, applications_2024

CET = timezone(timedelta(hours=1))
DEADLINE = datetime(2024, 1, 15, 23, 59, 59, tzinfo=CET)
ON_TIME = datetime(2023, 12, 1, 9, 0, tzinfo=UTC)


def vazg(step: str) -> dict[str, str]:
    return {"source": "vazg", "command_id": step}


def hospital(institution: str, step: str = "cmd") -> dict[str, str]:
    return {"source": f"hospital/{institution}", "command_id": f"{institution}-{step}"}


def nmr_policy_inputs(**changes: Any) -> dict[str, Any]:
    return {
        "provinces": PROVINCES_2023,
        "reference_activity": {k: str(v) for k, v in REFERENCE_2024.items()},
        "top_share": "3/20",
        "new_services_only": False,
        **changes,
    }


def open_round_2024() -> AllocationRound:
    return AllocationRound.open("nmr-2023", "nmr", "2023", 2, DEADLINE, nmr_policy_inputs(), **vazg("open"))


def apply(
    round_: AllocationRound,
    application: dict[str, Any],
    received_at: datetime = ON_TIME,
    sent_at: datetime | None = None,
) -> None:
    round_.file_application(
        **application,
        received_at=received_at,
        sent_at=received_at if sent_at is None else sent_at,
        **hospital(application["institution"], "apply"),
    )


def decided_round_2024() -> AllocationRound:
    round_ = open_round_2024()
    for application in applications_2024():
        apply(round_, application)
    round_.close(**vazg("close"))
    round_.decide(**vazg("decide"))
    return round_


def application_of(institution: str) -> dict[str, Any]:
    return next(a for a in applications_2024() if a["institution"] == institution)


@contextmanager
def refused_with(code: str) -> Iterator[None]:
    """The block raises a DomainError carrying that contract error code."""
    with pytest.raises(DomainError) as refused:
        yield
    assert refused.value.code == code, str(refused.value)


def event_names(aggregate: Aggregate) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def replay(events: list[Any]) -> Any:
    aggregate = None
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


# opening


def test_opening_an_mri_round_records_its_policy_inputs_and_who_opened_it() -> None:
    round_ = open_round_2024()
    (opened,) = round_.collect_events()
    assert type(opened).__name__ == "Opened"
    assert opened.source == "vazg" and opened.command_id == "open"  # type: ignore[attr-defined]
    assert opened.policy_inputs["provinces"] == PROVINCES_2023  # type: ignore[attr-defined]
    assert round_.deadline == DEADLINE


@pytest.mark.parametrize(
    ("changes", "deadline", "capacity", "field"),
    [
        ({}, None, 2, "data.deadline"),
        ({"provinces": []}, DEADLINE, 2, "data.provinces"),
        ({"reference_activity": None}, DEADLINE, 2, "data.reference_activity"),
        ({"reference_activity": {}}, DEADLINE, 2, "data.reference_activity"),
        ({"top_share": "0"}, DEADLINE, 2, "data.top_share"),
        ({}, DEADLINE, 0, "data.capacity"),
        ({"regions": [{"name": "Gent", "programme_figure": 1, "filled": 1}]}, DEADLINE, 2, "data.regions"),
    ],
)
def test_an_mri_round_needs_a_deadline_provinces_reference_activity_and_a_device(
    changes: dict[str, Any], deadline: datetime | None, capacity: int, field: str
) -> None:
    with pytest.raises(DomainError) as refused:
        AllocationRound.open(
            "r", "nmr", "2023", capacity, deadline, nmr_policy_inputs(**changes), **vazg("o")
        )
    assert refused.value.code == "schema"
    assert refused.value.details[0].field == field


# applications


def test_a_hospital_may_apply_up_to_the_deadline_and_not_after() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("ZNA"), received_at=DEADLINE.astimezone(UTC))
    with refused_with("round_closed"):
        apply(round_, application_of("UZA"), received_at=DEADLINE + timedelta(seconds=1))
    assert list(round_.applications) == ["ZNA"]


def test_the_deadline_is_judged_by_when_the_register_received_the_application_not_by_the_claimed_time() -> (
    None
):
    round_ = open_round_2024()
    with refused_with("round_closed"):
        apply(
            round_,
            application_of("ZNA"),
            received_at=DEADLINE + timedelta(hours=1),
            sent_at=DEADLINE - timedelta(days=1),
        )
    assert round_.applications == {}


def test_a_hospital_applies_once_but_may_withdraw_and_apply_again() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("ZNA"))
    with refused_with("conflict"):
        apply(round_, application_of("ZNA"))
    round_.withdraw_application("ZNA", ON_TIME, **hospital("ZNA", "withdraw"))
    apply(round_, application_of("ZNA"))
    assert event_names(round_) == ["Opened", "ApplicationFiled", "ApplicationWithdrawn", "ApplicationFiled"]


def test_a_withdrawn_application_gets_no_decision() -> None:
    round_ = open_round_2024()
    for application in applications_2024():
        apply(round_, application)
    round_.withdraw_application("AZSintMaarten", ON_TIME, **hospital("AZSintMaarten", "withdraw"))
    round_.close(**vazg("close"))
    round_.decide(**vazg("decide"))
    assert round_.decision_of("AZSintMaarten") is None
    granted = [d["institution"] for d in round_.decisions if d["outcome"] == GRANTED]
    assert granted == ["AZKlina", "AZTurnhout"]


def test_a_flemish_applicant_must_name_one_of_the_rounds_provinces() -> None:
    round_ = open_round_2024()
    with refused_with("schema"):
        apply(round_, {**application_of("ZNA"), "province": "Antwerp"})


def test_a_closed_round_takes_no_more_applications_or_withdrawals() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("ZNA"))
    round_.close(**vazg("close"))
    assert round_.status == CLOSED
    with refused_with("round_closed"):
        apply(round_, application_of("UZA"))
    with refused_with("round_closed"):
        round_.withdraw_application("ZNA", ON_TIME, **hospital("ZNA", "withdraw"))
    with refused_with("round_closed"):
        round_.close(**vazg("close-again"))


# deciding


def test_a_round_is_decided_once_and_only_after_closing() -> None:
    round_ = open_round_2024()
    with refused_with("conflict"):
        round_.decide(**vazg("too-early"))
    round_.close(**vazg("close"))
    round_.decide(**vazg("decide"))
    with refused_with("conflict"):
        round_.decide(**vazg("again"))


def test_deciding_records_inputs_policy_version_ranking_and_intents_to_refuse() -> None:
    round_ = decided_round_2024()
    decided = round_.collect_events()[-1]
    assert type(decided).__name__ == "Decided"
    assert decided.policy_version == "nmr/bvr-2023-08-31/v1"  # type: ignore[attr-defined]
    assert len(decided.inputs["applications"]) == 17  # type: ignore[attr-defined]
    assert round_.status == DECIDED
    assert round_.statuses["AZKlina"] == GRANTED
    assert round_.statuses["ZNA"] == INTENT_TO_REFUSE
    assert {s for s in round_.statuses.values()} == {GRANTED, INTENT_TO_REFUSE}


# objections


def test_only_an_applicant_with_an_intent_to_refuse_may_object_once_at_a_time() -> None:
    round_ = decided_round_2024()
    with refused_with("conflict"):
        round_.lodge_objection("AZKlina", "we were granted", **hospital("AZKlina"))
    with refused_with("conflict"):
        round_.lodge_objection("AZDelta", "we did not apply", **hospital("AZDelta"))
    round_.lodge_objection("ZNA", "our activity is higher", **hospital("ZNA", "object"))
    with refused_with("conflict"):
        round_.lodge_objection("ZNA", "again", **hospital("ZNA", "object-again"))


def test_an_objection_before_the_decision_is_a_conflict() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("ZNA"))
    with refused_with("conflict"):
        round_.lodge_objection("ZNA", "too early", **hospital("ZNA"))


def test_an_upheld_objection_grants_the_objector_and_the_displaced_grantee_gets_an_intent_to_refuse() -> None:
    round_ = decided_round_2024()
    # ZOL Genk contests the reference activity that kept it out of the top share.
    round_.lodge_objection(
        "ZOLGenk", "our justified activity was undercounted", **hospital("ZOLGenk", "object")
    )
    # The advisory committee agrees: the top-share step is waived and the round recomputed.
    changed = round_.rule_on_objection("ZOLGenk", True, "activity recounted", **vazg("rule"))
    assert changed == [
        {"institution": "ZOLGenk", "before": REFUSED, "after": GRANTED},
        {"institution": "AZKlina", "before": GRANTED, "after": REFUSED},
    ]
    assert round_.statuses["ZOLGenk"] == GRANTED
    assert round_.statuses["AZKlina"] == INTENT_TO_REFUSE
    assert round_.decision_of("AZKlina")["reason"] == LOWER_ACTIVITY_IN_PROVINCE  # type: ignore[index]
    assert round_.waivers == {"ZOLGenk": [NOT_IN_TOP_SHARE]}
    assert [c["step"] for c in round_.computations] == ["decide", "objection"]
    # The displaced grantee may object in turn.
    round_.lodge_objection("AZKlina", "we were granted first", **hospital("AZKlina", "object"))
    assert round_.pending_objection("AZKlina") is not None


def test_a_rejected_objection_changes_nothing_and_the_refusal_becomes_final() -> None:
    round_ = decided_round_2024()
    before = round_.decisions_with_status()
    round_.lodge_objection("ZNA", "our activity is higher", **hospital("ZNA", "object"))
    assert round_.rule_on_objection("ZNA", False, "the figures stand", **vazg("rule")) == []
    assert round_.decisions_with_status() == before
    round_.finalise(**vazg("finalise"))
    assert round_.statuses["ZNA"] == REFUSED


def test_upholding_a_territory_objection_needs_a_province_with_an_nmr_index() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("UZBrussel", "we serve Flemish patients", **hospital("UZBrussel", "object"))
    assert round_.pending_objection("UZBrussel")["against"] == OUTSIDE_FLEMISH_REGION  # type: ignore[index]
    with refused_with("conflict"):
        round_.rule_on_objection("UZBrussel", True, "upheld", **vazg("rule"))


def test_a_ruling_needs_a_pending_objection() -> None:
    round_ = decided_round_2024()
    with refused_with("conflict"):
        round_.rule_on_objection("ZNA", True, "no objection was lodged", **vazg("rule"))


# finalising


def test_finalising_waits_for_every_ruling_then_makes_intents_to_refuse_final() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("ZNA", "our activity is higher", **hospital("ZNA", "object"))
    with refused_with("conflict"):
        round_.finalise(**vazg("finalise-early"))
    round_.rule_on_objection("ZNA", False, "the figures stand", **vazg("rule"))
    refused = round_.finalise(**vazg("finalise"))
    assert round_.status == FINALISED
    assert len(refused) == 15
    assert {s for s in round_.statuses.values()} == {GRANTED, REFUSED}


def test_after_finalising_objections_and_decisions_are_refused_as_round_closed() -> None:
    round_ = decided_round_2024()
    round_.finalise(**vazg("finalise"))
    with refused_with("round_closed"):
        round_.lodge_objection("ZNA", "too late", **hospital("ZNA"))
    with refused_with("round_closed"):
        round_.decide(**vazg("decide-again"))
    with refused_with("round_closed"):
        round_.finalise(**vazg("finalise-again"))


def test_every_event_of_a_round_carries_its_source_and_command_id() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("ZOLGenk", "undercounted", **hospital("ZOLGenk", "object"))
    round_.rule_on_objection("ZOLGenk", True, "recounted", **vazg("rule"))
    round_.finalise(**vazg("finalise"))
    events = round_.collect_events()
    assert {type(e).__name__ for e in events} == {
        "Opened",
        "ApplicationFiled",
        "Closed",
        "Decided",
        "ObjectionLodged",
        "ObjectionRuled",
        "Finalised",
    }
    assert all(e.source and e.command_id for e in events)  # type: ignore[attr-defined]


def test_replaying_a_rounds_events_rebuilds_the_same_round() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("ZOLGenk", "undercounted", **hospital("ZOLGenk", "object"))
    round_.rule_on_objection("ZOLGenk", True, "recounted", **vazg("rule"))
    round_.finalise(**vazg("finalise"))
    rebuilt = replay(round_.collect_events())
    assert rebuilt.decisions_with_status() == round_.decisions_with_status()
    assert rebuilt.computations == round_.computations
    assert rebuilt.status == FINALISED


# care-region rounds


def open_care_round(capacity: int = 100) -> AllocationRound:
    regions = [
        {"name": "Oostende", "programme_figure": 3602, "filled": 2653},
        {"name": "Brugge", "programme_figure": 5383, "filled": 3974},
    ]
    return AllocationRound.open(
        "care-regions-2017Q1", "care-regions", "2017Q1", capacity, None, {"regions": regions}, **vazg("open")
    )


def test_a_care_region_round_ranks_the_figures_it_is_given_and_takes_no_hospital_applications() -> None:
    round_ = open_care_round()
    with refused_with("conflict"):
        apply(round_, application_of("ZNA"))
    round_.close(**vazg("close"))
    round_.decide(filled={"Oostende": 2653, "Brugge": 3974}, **vazg("decide"))
    assert round_.ranking is not None
    assert [(r["region"], r["fill_rate"], r["rank"]) for r in round_.ranking["regions"]] == [
        ("Oostende", "73.65", 1),
        ("Brugge", "73.83", 2),
    ]


def test_places_are_granted_to_ranked_regions_within_the_rounds_capacity() -> None:
    round_ = open_care_round(capacity=100)
    round_.close(**vazg("close"))
    with refused_with("conflict"):
        round_.grant("Oostende", None, 56, **vazg("grant-too-early"))
    round_.decide(filled={"Oostende": 2653, "Brugge": 3974}, **vazg("decide"))
    round_.grant("Oostende", None, 56, **vazg("grant-1"))
    with refused_with("conflict"):
        round_.grant("Brugge", None, 45, **vazg("grant-2"))
    with refused_with("conflict"):
        round_.grant("Gent", None, 1, **vazg("grant-3"))
    assert round_.granted_units == 56


def test_an_mri_round_grants_only_through_its_decision() -> None:
    round_ = decided_round_2024()
    with refused_with("conflict"):
        round_.grant("Antwerpen", "ZNA", 1, **vazg("grant"))


def test_the_register_counts_a_regions_places_from_its_starting_figure() -> None:
    capacity = CareCapacity.start("care-regions", **vazg("start"))
    assert capacity.record_baseline("Gent", 11321, "r1", "data.regions.0.filled", **vazg("open"))
    assert not capacity.record_baseline("Gent", 11321, "r2", "data.regions.0.filled", **vazg("open-2"))
    assert capacity.grant_places("Gent", 176, "r1", None, **vazg("grant")) == 11497
    assert capacity.correct("Gent", -97, "double counted", **vazg("correct")) == 11400
    assert event_names(capacity) == ["Started", "BaselineRecorded", "PlacesGranted", "Corrected"]


def test_a_starting_figure_that_disagrees_with_the_register_is_a_conflict() -> None:
    capacity = CareCapacity.start("care-regions", **vazg("start"))
    capacity.record_baseline("Gent", 11321, "r1", "data.regions.0.filled", **vazg("open"))
    with refused_with("conflict"):
        capacity.record_baseline("Gent", 11000, "r2", "data.regions.0.filled", **vazg("open-2"))


def test_a_correction_needs_a_known_region_and_cannot_make_it_negative() -> None:
    capacity = CareCapacity.start("care-regions", **vazg("start"))
    with refused_with("conflict"):
        capacity.correct("Gent", 5, "unknown region", **vazg("c1"))
    capacity.record_baseline("Gent", 10, "r1", "data.regions.0.filled", **vazg("open"))
    with refused_with("conflict"):
        capacity.correct("Gent", -11, "too much", **vazg("c2"))


def test_only_care_regions_keep_a_running_count_of_places() -> None:
    with refused_with("schema"):
        CareCapacity.start("nmr", **vazg("start"))


def test_a_period_has_one_care_region_round_but_mri_rounds_may_share_one() -> None:
    index = RoundIndex(**vazg("start"))
    index.list_round("care-regions-2017Q1", "care-regions", "2017Q1", **vazg("open-1"))
    with refused_with("conflict"):
        index.list_round("care-regions-bis", "care-regions", "2017Q1", **vazg("open-2"))
    index.list_round("nmr-a", "nmr", "2023", **vazg("open-3"))
    index.list_round("nmr-b", "nmr", "2023", **vazg("open-4"))
    assert index.round_ids == ["care-regions-2017Q1", "nmr-a", "nmr-b"]
    assert index.find("care-regions", "2017Q1") == "care-regions-2017Q1"
