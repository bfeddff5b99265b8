"""The allocation round's rules pinned: every opening input it refuses, every step out of order,
with the contract's error code, the field and the sentence; deadlines judged in UTC.

Codes and fields are literals copied from the integration contract, never the code's constants.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.allocation_round import AllocationRound, RoundIndex, as_utc
from domain.care_capacity import CareCapacity
from domain.errors import DomainError
from tests.domain.test_allocation_policies import PROVINCES_2023
from tests.domain.test_allocation_round import (
    DEADLINE,
    ON_TIME,
    application_of,
    apply,
    decided_round_2024,
    hospital,
    nmr_policy_inputs,
    open_care_round,
    open_round_2024,
    vazg,
)


def refusal(action: Callable[[], Any]) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        action()
    (detail,) = refused.value.details
    return detail.code, detail.field, detail.message


def open_nmr(capacity: int = 2, deadline: datetime | None = DEADLINE, **changes: Any) -> AllocationRound:
    return AllocationRound.open(
        "r", "nmr", "2023", capacity, deadline, nmr_policy_inputs(**changes), **vazg("o")
    )


def open_care(capacity: int = 10, **inputs: Any) -> AllocationRound:
    return AllocationRound.open("c", "care-regions", "2017Q1", capacity, None, inputs, **vazg("o"))


REGION = {"name": "Oostende", "programme_figure": 3602, "filled": 2653}

OPENINGS_REFUSED: list[tuple[str, Callable[[], Any], str, str]] = [
    (
        "another programme",
        lambda: AllocationRound.open("r", "pet", "2023", 1, DEADLINE, {}, **vazg("o")),
        "data.programme",
        "programme is nmr or care-regions, not 'pet'",
    ),
    (
        "a negative capacity",
        lambda: open_care(-1, regions=[REGION]),
        "data.capacity",
        "capacity cannot be negative",
    ),
    (
        "care regions in an mri round",
        lambda: open_nmr(regions=[REGION]),
        "data.regions",
        "an nmr round takes provinces, not care regions",
    ),
    (
        "no deadline",
        lambda: open_nmr(deadline=None),
        "data.deadline",
        "an nmr round needs an application deadline",
    ),
    ("no device", lambda: open_nmr(0), "data.capacity", "an nmr round hands out at least one device"),
    (
        "no provinces",
        lambda: open_nmr(provinces=[]),
        "data.provinces",
        "an nmr round needs the provinces' population and recognised devices",
    ),
    (
        "a province twice",
        lambda: open_nmr(provinces=[*PROVINCES_2023, PROVINCES_2023[0]]),
        "data.provinces",
        "a province is listed twice",
    ),
    (
        "no recognised device anywhere",
        lambda: open_nmr(provinces=[{**p, "recognised_devices": 0} for p in PROVINCES_2023]),
        "data.provinces",
        "the NMR-index is relative to the Flemish average: some province must have a device",
    ),
    (
        "no reference activity",
        lambda: open_nmr(reference_activity=None),
        "data.reference_activity",
        "an nmr round needs the reference activity per hospital",
    ),
    (
        "an empty reference list",
        lambda: open_nmr(reference_activity={}),
        "data.reference_activity",
        "the top-share cut needs the activity of every Flemish hospital with an MRI",
    ),
    (
        "no top share",
        lambda: open_nmr(top_share=None),
        "data.top_share",
        "an nmr round needs top_share and new_services_only",
    ),
    (
        "new_services_only that is no boolean",
        lambda: open_nmr(new_services_only="yes"),
        "data.top_share",
        "an nmr round needs top_share and new_services_only",
    ),
    (
        "a top share of 0",
        lambda: open_nmr(top_share="0"),
        "data.top_share",
        "top_share is a fraction above 0 and at most 1 (0.15 in the decree)",
    ),
    (
        "a top share above 1",
        lambda: open_nmr(top_share="101/100"),
        "data.top_share",
        "top_share is a fraction above 0 and at most 1 (0.15 in the decree)",
    ),
    (
        "provinces in a care round",
        lambda: open_care(provinces=PROVINCES_2023, regions=[REGION]),
        "data.provinces",
        "a care-regions round takes regions, not provinces or activity",
    ),
    (
        "activity in a care round",
        lambda: open_care(reference_activity={"H": "1"}, regions=[REGION]),
        "data.provinces",
        "a care-regions round takes regions, not provinces or activity",
    ),
    (
        "no regions",
        lambda: open_care(regions=[]),
        "data.regions",
        "a care-regions round needs the regions' programme figures",
    ),
    (
        "a region twice",
        lambda: open_care(regions=[REGION, REGION]),
        "data.regions",
        "a care region is listed twice",
    ),
    (
        "a programme figure of 0",
        lambda: open_care(regions=[{**REGION, "programme_figure": 0}]),
        "data.regions",
        "a programme figure is at least 1",
    ),
]


@pytest.mark.parametrize(
    ("action", "field", "message"),
    [case[1:] for case in OPENINGS_REFUSED],
    ids=[case[0] for case in OPENINGS_REFUSED],
)
def test_an_opening_is_refused_as_schema_naming_the_field(
    action: Callable[[], Any], field: str, message: str
) -> None:
    assert refusal(action) == ("schema", field, message)


@pytest.mark.parametrize(
    "opening",
    [
        lambda: open_nmr(1),
        lambda: open_nmr(top_share="1"),
        lambda: open_nmr(reference_activity={}, new_services_only=True),
        lambda: open_care(0, regions=[{**REGION, "programme_figure": 1}]),
    ],
    ids=["one device", "a top share of 1", "new services without reference", "care capacity 0"],
)
def test_the_boundaries_just_inside_are_opened(opening: Callable[[], AllocationRound]) -> None:
    assert opening().status == "open"


def test_an_opening_keeps_only_its_programmes_inputs_and_the_deadline_in_utc() -> None:
    round_ = open_nmr(deadline=datetime(2024, 1, 15, 23, 59, 59))
    assert round_.deadline == datetime(2024, 1, 15, 23, 59, 59, tzinfo=UTC)
    assert sorted(round_.policy_inputs) == [
        "new_services_only",
        "provinces",
        "reference_activity",
        "top_share",
    ]
    care = open_care(regions=[REGION])
    assert care.policy_inputs == {"regions": [REGION]}
    assert care.deadline is None


def test_a_moment_without_a_zone_is_utc_and_one_with_a_zone_is_kept() -> None:
    assert as_utc(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert as_utc(DEADLINE) is DEADLINE


# applications


def test_an_application_sent_exactly_at_the_deadline_is_on_time_and_a_second_later_is_late() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("AZKlina"), received_at=DEADLINE)
    late = application_of("ZNA")
    code, field, message = refusal(lambda: apply(round_, late, received_at=DEADLINE + timedelta(seconds=1)))
    assert (code, field) == ("round_closed", "data.round_id")
    assert message == (
        "received at 2024-01-16T00:00:00+01:00, after round nmr-2023's deadline 2024-01-15T23:59:59+01:00 "
        "(the envelope's time is only the sender's claim)"
    )


def test_an_application_is_recorded_with_its_exact_activity_and_sending_time_in_utc() -> None:
    round_ = open_round_2024()
    apply(round_, {**application_of("AZKlina"), "justified_activity_per_device": "19401/2"})
    (_, filed) = round_.collect_events()
    assert type(filed).__name__ == "ApplicationFiled"
    assert filed.justified_activity_per_device == "19401/2"  # type: ignore[attr-defined]
    assert filed.sent_at == ON_TIME  # type: ignore[attr-defined]
    assert (filed.source, filed.command_id) == ("hospital/AZKlina", "AZKlina-apply")  # type: ignore[attr-defined]
    assert round_.applications["AZKlina"] == {
        "institution": "AZKlina",
        "campus": "Brasschaat",
        "province": "Antwerpen",
        "region": "flemish",
        "justified_activity_per_device": "19401/2",
        "has_service_on_other_campus": False,
    }


def test_the_application_refusals_name_the_round_and_the_field() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("AZKlina"))
    assert refusal(lambda: apply(round_, application_of("AZKlina"))) == (
        "conflict",
        "data.round_id",
        "AZKlina has already applied to round nmr-2023: withdraw first",
    )
    assert refusal(lambda: apply(round_, {**application_of("ZNA"), "province": "Lapland"})) == (
        "schema",
        "data.province",
        "'Lapland' is not one of this round's provinces "
        "(Antwerpen, Limburg, Oost-Vlaanderen, Vlaams-Brabant, West-Vlaanderen)",
    )
    assert refusal(lambda: round_.withdraw_application("ZNA", ON_TIME, **hospital("ZNA"))) == (
        "conflict",
        "data.round_id",
        "ZNA has no application in round nmr-2023",
    )
    # An applicant outside Flanders names a province the round need not know.
    apply(round_, application_of("UZBrussel"))


def test_a_withdrawal_is_recorded_with_its_command_and_leaves_the_others() -> None:
    round_ = open_round_2024()
    apply(round_, application_of("AZKlina"))
    apply(round_, application_of("ZNA"))
    round_.withdraw_application("AZKlina", ON_TIME, **hospital("AZKlina", "withdraw"))
    assert sorted(round_.applications) == ["ZNA"]
    assert round_.withdrawals == [{"institution": "AZKlina", "command_id": "AZKlina-withdraw"}]


def test_a_closed_round_names_its_status_to_late_applicants_and_closers() -> None:
    round_ = open_round_2024()
    round_.close(**vazg("close"))
    assert refusal(lambda: apply(round_, application_of("ZNA"))) == (
        "round_closed",
        "data.round_id",
        "round nmr-2023 is closed: no more applications",
    )
    assert refusal(lambda: round_.close(**vazg("again"))) == (
        "round_closed",
        "data.round_id",
        "round nmr-2023 is already closed",
    )
    assert refusal(lambda: round_.withdraw_application("ZNA", ON_TIME, **hospital("ZNA"))) == (
        "round_closed",
        "data.round_id",
        "round nmr-2023 is closed: no more applications",
    )


# deciding, objecting, ruling, finalising


def test_the_steps_out_of_order_say_what_comes_first() -> None:
    round_ = open_round_2024()
    assert refusal(lambda: round_.decide(**vazg("d"))) == (
        "conflict",
        "data.round_id",
        "round nmr-2023 is still open: close it before deciding",
    )
    assert refusal(lambda: round_.lodge_objection("ZNA", "no", **hospital("ZNA"))) == (
        "conflict",
        "data.round_id",
        "round nmr-2023 is open: it has not been decided yet",
    )
    decided = decided_round_2024()
    assert refusal(lambda: decided.decide(**vazg("d2"))) == (
        "conflict",
        "data.round_id",
        "round nmr-2023 has already been decided",
    )
    decided.finalise(**vazg("f"))
    assert refusal(lambda: decided.decide(**vazg("d3"))) == (
        "round_closed",
        "data.round_id",
        "round nmr-2023 is finalised",
    )
    assert refusal(lambda: decided.finalise(**vazg("f2"))) == (
        "round_closed",
        "data.round_id",
        "round nmr-2023 is finalised",
    )


def test_the_objection_refusals_name_the_reason() -> None:
    round_ = decided_round_2024()
    assert refusal(lambda: round_.lodge_objection("Nobody", "t", **hospital("Nobody"))) == (
        "conflict",
        "data.round_id",
        "Nobody did not apply to round nmr-2023",
    )
    assert refusal(lambda: round_.lodge_objection("AZKlina", "t", **hospital("AZKlina"))) == (
        "conflict",
        "data.round_id",
        "AZKlina received no intent to refuse in round nmr-2023",
    )
    round_.lodge_objection("ZNA", "our activity", **hospital("ZNA", "object"))
    assert round_.pending_objection("ZNA") == {
        "institution": "ZNA",
        "against": "lower_activity_in_province",
        "text": "our activity",
        "command_id": "ZNA-object",
        "ruling": None,
    }
    assert round_.pending_objection("AZTurnhout") is None
    assert refusal(lambda: round_.lodge_objection("ZNA", "again", **hospital("ZNA"))) == (
        "conflict",
        "data.round_id",
        "ZNA's objection is still awaiting a ruling",
    )
    assert refusal(lambda: round_.finalise(**vazg("f"))) == (
        "conflict",
        "data.round_id",
        "objections still await a ruling: ZNA",
    )
    round_.rule_on_objection("ZNA", False, "no", **vazg("rule"))
    assert refusal(lambda: round_.lodge_objection("ZNA", "again", **hospital("ZNA"))) == (
        "conflict",
        "data.round_id",
        "ZNA already objected to the refusal for lower_activity_in_province",
    )
    assert refusal(lambda: round_.rule_on_objection("ZNA", True, "r", **vazg("r2"))) == (
        "conflict",
        "data.institution",
        "ZNA has no objection awaiting a ruling",
    )


def test_a_rejected_objection_records_the_ruling_and_changes_no_decision() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("ZNA", "our activity", **hospital("ZNA"))
    round_.collect_events()
    assert round_.rule_on_objection("ZNA", False, "the rule holds", **vazg("rule")) == []
    (ruled,) = round_.collect_events()
    assert (ruled.upheld, ruled.waivers, ruled.ranking, ruled.decisions) == (  # type: ignore[attr-defined]
        False,
        None,
        None,
        None,
    )
    assert round_.objections[0]["ruling"] == {
        "upheld": False,
        "reasoning": "the rule holds",
        "command_id": "rule",
    }
    assert round_.waivers == {}
    assert len(round_.computations) == 1


def test_an_upheld_objection_reports_the_changes_and_keeps_every_waiver_so_far() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("ZNA", "our activity", **hospital("ZNA"))
    changed = round_.rule_on_objection("ZNA", True, "upheld", **vazg("rule"))
    assert changed == [
        {"institution": "ZNA", "before": "refused", "after": "granted"},
        {"institution": "AZKlina", "before": "granted", "after": "refused"},
    ]
    assert round_.waivers == {"ZNA": ["lower_activity_in_province"]}
    assert round_.statuses["AZKlina"] == "intent_to_refuse"
    assert round_.statuses["ZNA"] == "granted"
    computation = round_.computations[-1]
    assert (computation["step"], computation["command_id"], computation["waivers"]) == (
        "objection",
        "rule",
        {"ZNA": ["lower_activity_in_province"]},
    )
    assert computation["policy_version"] == "nmr/bvr-2023-08-31/v1"
    # AZ Klina objects in turn; its waiver comes on top of ZNA's.
    round_.lodge_objection("AZKlina", "displaced", **hospital("AZKlina"))
    round_.rule_on_objection("AZKlina", True, "upheld too", **vazg("rule2"))
    assert round_.waivers == {
        "AZKlina": ["lower_activity_in_province"],
        "ZNA": ["lower_activity_in_province"],
    }


def test_upholding_a_territory_objection_without_an_nmr_index_is_refused_and_says_why() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("UZBrussel", "Jette", **hospital("UZBrussel"))
    assert refusal(lambda: round_.rule_on_objection("UZBrussel", True, "r", **vazg("r"))) == (
        "conflict",
        "data.upheld",
        "UZBrussel's province 'Brussel' has no NMR-index in this round, so it cannot be ranked even if the "
        "objection is upheld",
    )


def test_finalising_turns_intents_into_refusals_and_names_them() -> None:
    round_ = decided_round_2024()
    refused = round_.finalise(**vazg("final"))
    assert "ZNA" in refused and "AZKlina" not in refused
    assert refused == sorted(refused)
    assert round_.statuses["ZNA"] == "refused"
    assert round_.statuses["AZKlina"] == "granted"
    assert round_.decision_of("ZNA")["status"] == "refused"  # type: ignore[index]
    assert round_.decision_of("Nobody") is None


def test_deciding_records_the_inputs_it_read_in_institution_order() -> None:
    round_ = decided_round_2024()
    inputs = round_.decided_inputs
    assert inputs is not None
    assert [a["institution"] for a in inputs["applications"]] == sorted(round_.applications)
    assert (inputs["capacity"], inputs["top_share"], inputs["new_services_only"]) == (2, "3/20", False)
    assert round_.policy_version == "nmr/bvr-2023-08-31/v1"
    assert round_.computations[0]["step"] == "decide"
    assert round_.computations[0]["waivers"] == {}


# care-region rounds


def test_a_care_round_takes_no_applications_and_an_mri_round_no_grants() -> None:
    care = open_care_round()
    assert refusal(lambda: apply(care, application_of("ZNA"))) == (
        "conflict",
        "data.round_id",
        "round care-regions-2017Q1 is a care-regions round: care-region rounds take no applications from "
        "hospitals",
    )
    assert refusal(lambda: care.withdraw_application("ZNA", ON_TIME, **hospital("ZNA")))[2] == (
        "round care-regions-2017Q1 is a care-regions round: care-region rounds take no applications from "
        "hospitals"
    )
    mri = decided_round_2024()
    assert refusal(lambda: mri.grant("Oostende", None, 1, **vazg("g"))) == (
        "conflict",
        "data.round_id",
        "round nmr-2023 is a nmr round: an MRI round grants through its decision; round.grant records "
        "care-region places",
    )


def decided_care_round(capacity: int = 100) -> AllocationRound:
    round_ = open_care_round(capacity)
    round_.close(**vazg("close"))
    round_.decide(filled={"Oostende": 2653, "Brugge": 3974}, **vazg("decide"))
    return round_


def test_a_care_round_needs_every_regions_filled_figure_to_decide() -> None:
    round_ = open_care_round()
    round_.close(**vazg("close"))
    assert refusal(lambda: round_.decide(filled={"Oostende": 1}, **vazg("d"))) == (
        "conflict",
        "data.round_id",
        "no filled figure known for Brugge",
    )
    assert refusal(lambda: round_.decide(**vazg("d"))) == (
        "conflict",
        "data.round_id",
        "no filled figure known for Oostende, Brugge",
    )


def test_places_are_granted_up_to_the_capacity_exactly() -> None:
    round_ = decided_care_round(capacity=10)
    round_.grant("Oostende", "WZC1", 6, **vazg("g1"))
    round_.grant("Brugge", None, 4, **vazg("g2"))
    assert round_.granted_units == 10
    assert round_.grants[0] == {"region": "Oostende", "institution": "WZC1", "units": 6, "command_id": "g1"}
    assert refusal(lambda: round_.grant("Brugge", None, 1, **vazg("g3"))) == (
        "conflict",
        "data.units",
        "round care-regions-2017Q1 has 0 of 10 places left, not 1",
    )
    assert refusal(lambda: round_.grant("Gent", None, 1, **vazg("g4"))) == (
        "conflict",
        "data.region",
        "'Gent' is not ranked in round care-regions-2017Q1",
    )


def test_the_care_capacity_is_kept_for_the_care_programme_only() -> None:
    with pytest.raises(DomainError) as refused:
        CareCapacity.start("nmr", **vazg("s"))
    (detail,) = refused.value.details
    assert (detail.code, detail.field) == ("schema", "data.programme")
    assert detail.message == (
        "only the care-regions programme keeps a running count of places; an nmr round's recognised devices "
        "are given per province when it opens"
    )


def test_the_round_index_finds_a_care_period_and_lists_every_round() -> None:
    index = RoundIndex(**vazg("i"))
    index.list_round("r1", "nmr", "2023", **vazg("l1"))
    index.list_round("c1", "care-regions", "2017Q1", **vazg("l2"))
    index.list_round("r2", "nmr", "2023", **vazg("l3"))
    assert index.round_ids == ["r1", "c1", "r2"]
    assert index.find("care-regions", "2017Q1") == "c1"
    assert index.find("care-regions", "2017Q2") is None
    assert index.find("nmr", "2017Q1") is None
    assert refusal(lambda: index.list_round("c2", "care-regions", "2017Q1", **vazg("l4"))) == (
        "conflict",
        "data.period",
        "round c1 already ranks the care regions for 2017Q1",
    )


# the running count of care-region places


def care_capacity() -> CareCapacity:
    capacity = CareCapacity.start("care-regions", **vazg("start"))
    capacity.record_baseline("Oostende", 2653, "c1", "data.regions.0.filled", **vazg("open"))
    capacity.collect_events()
    return capacity


def test_a_starting_figure_is_recorded_once_and_the_same_figure_again_records_nothing() -> None:
    capacity = care_capacity()
    assert capacity.filled == {"Oostende": 2653}
    assert capacity.record_baseline("Oostende", 2653, "c2", "data.regions.0.filled", **vazg("o2")) is False
    assert capacity.collect_events() == []
    assert refusal(
        lambda: capacity.record_baseline("Oostende", 2600, "c2", "data.regions.3.filled", **vazg("o3"))
    ) == (
        "conflict",
        "data.regions.3.filled",
        "care region 'Oostende' has 2653 places filled in the register (starting figure, grants and "
        "corrections), not 2600: leave `filled` out to use the register's figure",
    )


def test_grants_and_corrections_move_the_count_and_are_recorded_with_the_new_figure() -> None:
    capacity = care_capacity()
    assert capacity.grant_places("Oostende", 10, "c1", "WZC1", **vazg("g")) == 2663
    assert capacity.correct("Oostende", -2663, "recount", **vazg("k")) == 0
    granted, corrected = capacity.collect_events()
    assert (granted.region, granted.units, granted.filled, granted.institution) == (  # type: ignore[attr-defined]
        "Oostende",
        10,
        2663,
        "WZC1",
    )
    assert (corrected.delta, corrected.filled, corrected.reason) == (-2663, 0, "recount")  # type: ignore[attr-defined]
    assert (corrected.source, corrected.command_id) == ("vazg", "k")  # type: ignore[attr-defined]
    assert (granted.source, granted.command_id, granted.round_id) == ("vazg", "g", "c1")  # type: ignore[attr-defined]
    assert refusal(lambda: capacity.correct("Oostende", -1, "again", **vazg("k2"))) == (
        "conflict",
        "data.delta",
        "care region 'Oostende' has 0 places filled; a correction of -1 would make it negative",
    )


def test_an_unknown_region_has_no_count_to_grant_or_correct() -> None:
    capacity = care_capacity()
    expected = (
        "conflict",
        "data.region",
        "no filled figure is known for care region 'Gent' yet: the opening of a round gives each region's "
        "starting figure (regions[].filled)",
    )
    assert refusal(lambda: capacity.correct("Gent", 1, "r", **vazg("k"))) == expected
    assert refusal(lambda: capacity.grant_places("Gent", 1, "c1", None, **vazg("g"))) == expected
    assert (
        refusal(lambda: capacity.check_known("Gent", "data.regions.1.filled"))[1] == "data.regions.1.filled"
    )
    assert capacity.check_known("Oostende") == 2653


def test_an_upheld_territory_objection_ranks_an_applicant_that_named_a_flemish_province() -> None:
    round_ = open_round_2024()
    for name in ("AZSintMaarten", "AZKlina"):
        apply(round_, application_of(name))
    apply(round_, {**application_of("UZBrussel"), "province": "Limburg"})
    round_.close(**vazg("close"))
    round_.decide(**vazg("decide"))
    assert round_.decision_of("UZBrussel")["reason"] == "outside_flemish_region"  # type: ignore[index]
    round_.lodge_objection("UZBrussel", "we serve Limburg", **hospital("UZBrussel"))
    round_.rule_on_objection("UZBrussel", True, "upheld", **vazg("rule"))
    # The top-share step still applies: UZ Brussel is not on the reference list.
    assert round_.decision_of("UZBrussel")["reason"] == "not_in_top_share"  # type: ignore[index]
    assert round_.waivers == {"UZBrussel": ["outside_flemish_region"]}


def test_a_second_upheld_objection_keeps_the_first_waiver() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("UZA", "top share", **hospital("UZA", "o1"))
    round_.rule_on_objection("UZA", True, "upheld", **vazg("r1"))
    assert round_.decision_of("UZA")["reason"] == "lower_activity_in_province"  # type: ignore[index]
    round_.lodge_objection("UZA", "activity", **hospital("UZA", "o2"))
    round_.rule_on_objection("UZA", True, "upheld again", **vazg("r2"))
    assert round_.waivers["UZA"] == ["lower_activity_in_province", "not_in_top_share"]
    assert round_.decision_of("UZA")["outcome"] == "granted"  # type: ignore[index]


def test_an_opening_names_the_province_without_inhabitants() -> None:
    provinces = [{**PROVINCES_2023[0], "population": 0}, *PROVINCES_2023[1:]]
    assert refusal(lambda: open_nmr(provinces=provinces)) == (
        "schema",
        "data.provinces.0",
        "Antwerpen needs inhabitants and a count of recognised devices that is not negative",
    )


def test_what_a_round_records_and_hands_out_are_copies_nobody_can_change_behind_its_back() -> None:
    round_ = decided_round_2024()
    decided = round_.collect_events()[-1]
    round_.ranking["priority"].clear()  # type: ignore[index]
    round_.decisions[0]["outcome"] = "changed"
    round_.computations[0]["ranking"]["top_share"]["places"] = 0
    round_.computations[0]["decisions"][0]["reason"] = "changed"
    assert decided.ranking["priority"] != []  # type: ignore[attr-defined]
    assert decided.decisions[0]["outcome"] != "changed"  # type: ignore[attr-defined]
    assert decided.ranking["top_share"]["places"] == 8  # type: ignore[attr-defined]
    assert decided.decisions[0]["reason"] != "changed"  # type: ignore[attr-defined]
    inputs = round_.decision_inputs()
    inputs["provinces"][0]["population"] = 0
    assert round_.policy_inputs["provinces"][0]["population"] > 0


def test_a_care_rounds_recorded_inputs_carry_its_capacity() -> None:
    round_ = decided_care_round(capacity=42)
    assert round_.decided_inputs["capacity"] == 42  # type: ignore[index]


def test_finalising_names_every_objection_still_awaiting_a_ruling() -> None:
    round_ = decided_round_2024()
    round_.lodge_objection("ZNA", "t", **hospital("ZNA"))
    round_.lodge_objection("AZTurnhout", "t", **hospital("AZTurnhout"))
    assert (
        refusal(lambda: round_.finalise(**vazg("f")))[2] == "objections still await a ruling: ZNA, AZTurnhout"
    )


def test_grants_listings_and_starting_figures_carry_who_recorded_them() -> None:
    round_ = decided_care_round(capacity=10)
    round_.collect_events()
    round_.grant("Oostende", None, 1, source="vazg", command_id="grant")
    (granted,) = round_.collect_events()
    assert (granted.source, granted.command_id) == ("vazg", "grant")  # type: ignore[attr-defined]
    index = RoundIndex(source="vazg", command_id="start")
    index.collect_events()
    index.list_round("r1", "nmr", "2023", source="vazg", command_id="list")
    (listed,) = index.collect_events()
    assert (listed.source, listed.command_id, listed.round_id) == ("vazg", "list", "r1")  # type: ignore[attr-defined]
    capacity = CareCapacity.start("care-regions", source="vazg", command_id="start")
    capacity.collect_events()
    capacity.record_baseline("Oostende", 5, "c1", "data.regions.0.filled", source="vazg", command_id="open")
    (baseline,) = capacity.collect_events()
    assert (baseline.round_id, baseline.source, baseline.command_id, baseline.filled) == (  # type: ignore[attr-defined]
        "c1",
        "vazg",
        "open",
        5,
    )


def test_an_application_without_a_claimed_sending_time_is_judged_by_its_receipt_alone() -> None:
    round_ = open_round_2024()
    round_.collect_events()
    round_.file_application(
        **application_of("ZNA"), received_at=ON_TIME, sent_at=None, source="hospital/ZNA", command_id="apply"
    )
    (filed,) = round_.collect_events()
    assert filed.sent_at is None  # type: ignore[attr-defined]
    assert sorted(round_.applications) == ["ZNA"]
