"""The allocation policies' rules pinned: waivers, the reference figure, the recorded ranking, the boundaries.

Reason codes, error codes and the ranking's field names are literals copied from the integration
contract (or, for the ranking, from what `rounds verify` and the public read), never the code's constants.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest

from domain.allocation_policies import (
    REFUSAL_REASONS,
    Province,
    RegionFigures,
    apply_policy,
    decide_care_regions,
    decide_nmr,
    decimal_text,
    fill_rate_text,
    number_text,
    rank_care_regions,
    rank_provinces,
    top_share_of,
)
from domain.errors import DomainError
from tests.domain.test_allocation_policies import (
    PROVINCES_2023,
    application,
    applications_2024,
    by_institution,
    nmr_inputs,
)


def refusal(action: Any, *args: Any) -> DomainError:
    with pytest.raises(DomainError) as refused:
        action(*args)
    return refused.value


def test_the_refusal_reasons_are_the_contracts_six_in_the_order_the_steps_are_taken() -> None:
    assert REFUSAL_REASONS == (
        "outside_flemish_region",
        "service_on_other_campus",
        "has_service",
        "not_in_top_share",
        "province_not_prioritised",
        "lower_activity_in_province",
    )


# upheld objections


def test_waiving_province_not_prioritised_puts_the_objector_first_whatever_its_province() -> None:
    # ASZ (Oost-Vlaanderen, NMR-index rank 3) was refused because Antwerpen (rank 2) had priority.
    result = decide_nmr(nmr_inputs(applications_2024()), {"ASZ": ["province_not_prioritised"]})
    decisions = by_institution(result.decisions)
    assert decisions["ASZ"]["outcome"] == "granted"
    assert decisions["ASZ"]["place"] == 1
    assert decisions["ASZ"]["waived"] == ["province_not_prioritised"]
    assert decisions["ASZ"]["message"].endswith(" An upheld objection waived: province_not_prioritised.")
    assert decisions["AZSintMaarten"]["outcome"] == "granted"
    assert decisions["AZKlina"]["reason"] == "lower_activity_in_province"
    assert [(p["place"], p["institution"], p["outcome"]) for p in result.ranking["priority"][:3]] == [
        (1, "ASZ", "granted"),
        (2, "AZSintMaarten", "granted"),
        (3, "AZKlina", "refused"),
    ]


def test_without_the_waiver_the_same_objector_stays_refused_for_its_province() -> None:
    decisions = by_institution(decide_nmr(nmr_inputs(applications_2024())).decisions)
    assert decisions["ASZ"]["reason"] == "province_not_prioritised"
    assert decisions["ASZ"]["priority_province"] == "Antwerpen"
    assert decisions["ASZ"]["waived"] == []


def test_a_waiver_for_one_hospital_changes_nothing_for_another() -> None:
    plain = decide_nmr(nmr_inputs(applications_2024()))
    waived = decide_nmr(nmr_inputs(applications_2024()), {"NotApplying": ["province_not_prioritised"]})
    assert waived == plain


# VAZG's reference figure, not the hospital's declared activity


def test_the_ranking_takes_vazgs_reference_figure_not_the_declared_activity() -> None:
    # 13 hospitals: the top 15% are two places, A1 and A2.
    reference = {"A1": 9000, "A2": 8000, **{f"O{n}": 100 for n in range(11)}}
    applications = [
        application("A1", "Antwerpen", activity=1),
        application("A2", "Antwerpen", activity=99_999),
    ]
    result = decide_nmr(nmr_inputs(applications, capacity=1, reference=reference, provinces=PROVINCES_2023))
    decisions = by_institution(result.decisions)
    assert decisions["A1"]["outcome"] == "granted"
    assert decisions["A2"]["reason"] == "lower_activity_in_province"
    assert "(8000)" in decisions["A2"]["message"]
    assert [p["activity"] for p in result.ranking["priority"]] == ["9000", "8000"]


def test_the_declared_activity_counts_only_where_there_is_no_reference_figure() -> None:
    reference = {"A1": 9000, "Other": 100}
    applications = [application("A1", "Antwerpen", 9000), application("New", "Antwerpen", "9500.5")]
    result = decide_nmr(
        nmr_inputs(applications, capacity=1, reference=reference), {"New": ["not_in_top_share"]}
    )
    assert [(p["institution"], p["activity"]) for p in result.ranking["priority"]] == [
        ("New", "19001/2"),
        ("A1", "9000"),
    ]


def test_in_a_new_services_round_the_declared_activity_ranks_the_applicants() -> None:
    applications = [application("N1", "Antwerpen", 100), application("N2", "Antwerpen", 200)]
    result = decide_nmr(nmr_inputs(applications, capacity=1, reference={}, new_services_only=True))
    assert by_institution(result.decisions)["N2"]["outcome"] == "granted"
    assert result.ranking["top_share"] is None
    assert [p["activity"] for p in result.ranking["priority"]] == ["200", "100"]


# the recorded ranking: what `rounds verify` recomputes and the public reads


def expected_decimal(value: Fraction, places: int) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def test_the_recorded_top_share_names_its_cut_places_and_members() -> None:
    ranking = decide_nmr(nmr_inputs(applications_2024())).ranking
    # 15% of 52 hospitals is 7.8, rounded up to 8; the 8th highest activity is AZ Delta's 9200.
    assert ranking["top_share"] == {
        "share": "3/20",
        "hospitals": 52,
        "places": 8,
        "cut_activity": "9200",
        "institutions": [
            "ASZ",
            "AZDelta",
            "AZKlina",
            "AZMariaMiddelares",
            "AZSintJanBrugge",
            "AZSintMaarten",
            "AZTurnhout",
            "ZNA",
        ],
    }


def test_the_recorded_priority_list_has_every_eligible_applicant_in_order_with_its_outcome() -> None:
    ranking = decide_nmr(nmr_inputs(applications_2024())).ranking
    assert ranking["priority"] == [
        {
            "place": place,
            "institution": institution,
            "province": province,
            "province_rank": rank,
            "activity": activity,
            "outcome": outcome,
        }
        for place, (institution, province, rank, activity, outcome) in enumerate(
            [
                ("AZSintMaarten", "Antwerpen", 2, "9800", "granted"),
                ("AZKlina", "Antwerpen", 2, "9700", "granted"),
                ("AZTurnhout", "Antwerpen", 2, "9400", "refused"),
                ("ZNA", "Antwerpen", 2, "9300", "refused"),
                ("ASZ", "Oost-Vlaanderen", 3, "9600", "refused"),
                ("AZMariaMiddelares", "Oost-Vlaanderen", 3, "9500", "refused"),
                ("AZSintJanBrugge", "West-Vlaanderen", 4, "9900", "refused"),
            ],
            start=1,
        )
    ]
    assert (ranking["capacity"], ranking["granted"], ranking["unused_capacity"]) == (2, 2, 0)


def test_every_decision_records_its_place_in_the_priority_list_and_the_province_that_had_priority() -> None:
    decisions = by_institution(decide_nmr(nmr_inputs(applications_2024())).decisions)
    assert {name: decisions[name]["place"] for name in ("AZSintMaarten", "ZNA", "AZSintJanBrugge")} == {
        "AZSintMaarten": 1,
        "ZNA": 4,
        "AZSintJanBrugge": 7,
    }
    assert decisions["ZOLGenk"]["place"] is None
    assert decisions["AZSintJanBrugge"]["priority_province"] == "Antwerpen"
    assert decisions["ZNA"]["priority_province"] is None
    assert decisions["UZBrussel"] == {
        "institution": "UZBrussel",
        "campus": "Jette",
        "province": "Brussel",
        "region": "brussels",
        "outcome": "refused",
        "reason": "outside_flemish_region",
        "message": "UZBrussel is not on the territory of the Flemish Region (region: brussels) and cannot "
        "claim MRI programming in the Flemish Region (niet op het grondgebied van het Vlaams Gewest).",
        "place": None,
        "priority_province": None,
        "waived": [],
    }


def test_the_recorded_provinces_carry_the_nmr_index_exactly_and_rounded() -> None:
    ranking = decide_nmr(nmr_inputs(applications_2024())).ranking
    devices = sum(p["recognised_devices"] for p in PROVINCES_2023)
    population = sum(p["population"] for p in PROVINCES_2023)
    by_name = {p["name"]: p for p in PROVINCES_2023}
    assert [p["province"] for p in ranking["provinces"]] == [
        "Limburg",
        "Antwerpen",
        "Oost-Vlaanderen",
        "West-Vlaanderen",
        "Vlaams-Brabant",
    ]
    for rank, recorded in enumerate(ranking["provinces"], start=1):
        given = by_name[recorded["province"]]
        index = Fraction(given["recognised_devices"], given["population"]) / Fraction(devices, population)
        per_100k = Fraction(given["recognised_devices"] * 100_000, given["population"])
        assert recorded == {
            "province": given["name"],
            "population": given["population"],
            "recognised_devices": given["recognised_devices"],
            "devices_per_100k": expected_decimal(per_100k, 3),
            "nmr_index": expected_decimal(index, 4),
            "nmr_index_exact": str(index),
            "rank": rank,
        }


def test_the_sentences_name_the_places_the_cut_and_the_capacity() -> None:
    decisions = by_institution(decide_nmr(nmr_inputs(applications_2024(), capacity=1)).decisions)
    assert decisions["AZSintMaarten"]["message"] == (
        "AZSintMaarten is granted one MRI device: eligible, in Antwerpen (NMR-index rank 2 of 5), place 1 "
        "in the priority order with a justified activity per device of 9800."
    )
    assert decisions["AZKlina"]["message"] == (
        "AZKlina is in Antwerpen (NMR-index rank 2 of 5), a province that had priority, but ranks lower on "
        "justified activity per MRI device (9700) than AZSintMaarten, granted before the capacity of "
        "1 device was used (lager gerangschikt op verantwoorde activiteit per NMR)."
    )
    assert decisions["ASZ"]["message"] == (
        "ASZ is in Oost-Vlaanderen (NMR-index rank 3 of 5), not in the province that had priority: "
        "Antwerpen (NMR-index rank 2), whose applicants used the capacity of 1 device (behoort niet tot de "
        "provincie met voorrang)."
    )
    assert decisions["UZLeuven"]["message"] == (
        "UZLeuven is not among the 8 of 52 Flemish hospitals (15%) with the highest justified activity per "
        "recognised MRI device (its activity per device is 7000, rank 10; the cut is at 9200)."
    )


def test_equal_activity_in_a_province_is_named_in_the_refusal() -> None:
    reference = {"A1": 9000, "A2": 9000, "Other": 100}
    applications = [application("A1", "Antwerpen"), application("A2", "Antwerpen")]
    decisions = by_institution(
        decide_nmr(nmr_inputs(applications, capacity=1, reference=reference)).decisions
    )
    assert decisions["A2"]["message"].endswith(
        " Its activity equals that of A1; equal activity goes by institution id order."
    )


def test_new_services_only_sentences_name_the_campus_and_the_service() -> None:
    applications = [
        application("Other", "Antwerpen", campus="Noord", other_campus=True),
        application("Has", "Antwerpen"),
    ]
    decisions = by_institution(
        decide_nmr(
            nmr_inputs(applications, capacity=1, reference={"Has": 1}, new_services_only=True)
        ).decisions
    )
    assert decisions["Other"]["reason"] == "service_on_other_campus"
    assert decisions["Other"]["message"] == (
        "Other already has a recognised MRI service on another campus than Noord; this round is reserved "
        "for hospitals without an MRI service."
    )
    assert decisions["Has"]["reason"] == "has_service"
    assert decisions["Has"]["message"] == (
        "Has already has a recognised MRI service; this round is reserved for hospitals "
        "without an MRI service."
    )


def test_waived_eligibility_steps_let_the_applicant_through_to_the_ranking() -> None:
    applications = [
        application("Out", "Antwerpen", 5, region="wallonia"),
        application("Other", "Antwerpen", 4, other_campus=True),
        application("Has", "Antwerpen", 3),
    ]
    waivers = {
        "Out": ["outside_flemish_region"],
        "Other": ["service_on_other_campus"],
        "Has": ["has_service"],
    }
    inputs = nmr_inputs(applications, capacity=3, reference={"Has": 1}, new_services_only=True)
    decisions = by_institution(decide_nmr(inputs, waivers).decisions)
    assert {name: d["outcome"] for name, d in decisions.items()} == dict.fromkeys(waivers, "granted")


# boundaries: the policies refuse what has no ranking rather than divide by zero


def test_the_mri_policy_refuses_a_capacity_of_zero() -> None:
    error = refusal(decide_nmr, nmr_inputs(applications_2024(), capacity=0))
    assert (error.code, error.details[0].field) == ("schema", "data.capacity")
    assert error.details[0].message == "an nmr round hands out at least one device"


def test_the_mri_policy_refuses_provinces_without_any_recognised_device() -> None:
    provinces = [{**p, "recognised_devices": 0} for p in PROVINCES_2023]
    error = refusal(decide_nmr, nmr_inputs(applications_2024(), provinces=provinces))
    assert (error.code, error.details[0].field) == ("schema", "data.provinces")
    assert error.details[0].message == (
        "the NMR-index is relative to the Flemish average: some province must have a device"
    )


def test_one_province_without_a_device_has_the_lowest_nmr_index() -> None:
    provinces = [Province("A", 100, 0), Province("B", 100, 1), Province("C", 100, 2)]
    standings = rank_provinces(provinces)
    assert [(s.name, s.index, s.rank) for s in standings] == [
        ("A", Fraction(0), 1),
        ("B", Fraction(1), 2),
        ("C", Fraction(2), 3),
    ]


@pytest.mark.parametrize(
    ("provinces", "field"),
    [
        ([], "data.provinces"),
        ([Province("A", 0, 1)], "data.provinces.0"),
        ([Province("A", 10, 1), Province("B", 10, -1)], "data.provinces.1"),
    ],
)
def test_provinces_need_inhabitants_and_a_count_of_devices(provinces: list[Province], field: str) -> None:
    error = refusal(rank_provinces, provinces)
    assert (error.code, error.details[0].field) == ("schema", field)


def test_a_province_without_inhabitants_is_named() -> None:
    error = refusal(rank_provinces, [Province("Nowhere", 0, 1)])
    assert error.details[0].message == (
        "Nowhere needs inhabitants and a count of recognised devices that is not negative"
    )
    assert refusal(rank_provinces, []).details[0].message == (
        "an nmr round needs the provinces' population and recognised devices"
    )


def test_a_capacity_of_one_is_enough_for_a_ranking() -> None:
    result = decide_nmr(nmr_inputs(applications_2024(), capacity=1))
    assert result.ranking["granted"] == 1


@pytest.mark.parametrize(
    ("regions", "field"),
    [
        ([{"name": "A", "programme_figure": 0, "filled": 0}], "data.regions.0"),
        (
            [
                {"name": "A", "programme_figure": 10, "filled": 1},
                {"name": "B", "programme_figure": 10, "filled": -1},
            ],
            "data.regions.1",
        ),
    ],
)
def test_the_care_region_policy_refuses_a_region_without_a_fill_rate(
    regions: list[dict[str, Any]], field: str
) -> None:
    error = refusal(decide_care_regions, {"regions": regions})
    assert (error.code, error.details[0].field) == ("schema", field)


def test_a_region_with_a_programme_figure_of_one_and_nothing_filled_ranks_first() -> None:
    rows = rank_care_regions([RegionFigures("B", 1, 1), RegionFigures("A", 1, 0)])
    assert [(r["region"], r["fill_rate"], r["fill_rate_exact"], r["rank"]) for r in rows] == [
        ("A", "0.00", "0", 1),
        ("B", "100.00", "1", 2),
    ]


# exact numbers as recorded and shown


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (Fraction(93005, 1000), 2, "93.01"),
        (Fraction(93004, 1000), 2, "93.00"),
        (Fraction(-93005, 1000), 2, "-93.01"),
        (Fraction(-1, 1000), 2, "0.00"),
        (Fraction(5, 2), 0, "3"),
        (Fraction(7, 3), 3, "2.333"),
        (Fraction(0), 2, "0.00"),
    ],
)
def test_decimals_are_rounded_half_up_away_from_zero(value: Fraction, places: int, text: str) -> None:
    assert decimal_text(value, places) == text


def test_whole_numbers_read_as_such_and_others_with_two_decimals() -> None:
    assert number_text(Fraction(9800)) == "9800"
    assert number_text(Fraction(19001, 2)) == "9500.50"
    assert fill_rate_text(Fraction(93, 100)) == "93.00"


def test_an_empty_reference_list_has_no_top_share_and_no_cut() -> None:
    share = top_share_of({}, Fraction(3, 20))
    assert (share.hospitals, share.places, share.cut_activity, share.members) == (0, 0, None, [])
    assert share.as_record()["cut_activity"] is None


def test_a_share_of_one_takes_every_hospital_and_cuts_at_the_lowest() -> None:
    share = top_share_of({"A": Fraction(3), "B": Fraction(1), "C": Fraction(2)}, Fraction(1))
    assert (share.places, share.cut_activity, share.members) == (3, Fraction(1), ["A", "B", "C"])
    assert share.ranks == {"A": 1, "B": 3, "C": 2}


def test_the_recorded_policy_versions_are_those_of_the_decrees() -> None:
    nmr = apply_policy("nmr/bvr-2023-08-31/v1", nmr_inputs(applications_2024()))
    assert nmr == decide_nmr(nmr_inputs(applications_2024()))
    regions = {"regions": [{"name": "A", "programme_figure": 4, "filled": 1}]}
    assert (
        apply_policy("care-regions/bvr-2013-12-20/v1", regions).ranking["regions"][0]["fill_rate"] == "25.00"
    )
    with pytest.raises(KeyError):
        apply_policy("nmr/unknown", nmr_inputs(applications_2024()))


def test_a_waived_province_step_goes_ahead_of_the_province_that_had_priority_whatever_the_activity() -> None:
    provinces = [
        {"name": "P1", "population": 100, "recognised_devices": 1},
        {"name": "P2", "population": 100, "recognised_devices": 2},
    ]
    reference = {"A": 100, "B": 50}
    inputs = {
        **nmr_inputs(
            [application("A", "P1", 100), application("B", "P2", 50)], capacity=1, reference=reference
        ),
        "provinces": provinces,
        "top_share": "1",
    }
    assert by_institution(decide_nmr(inputs).decisions)["A"]["outcome"] == "granted"
    waived = by_institution(decide_nmr(inputs, {"B": ["province_not_prioritised"]}).decisions)
    assert (waived["B"]["outcome"], waived["A"]["outcome"]) == ("granted", "refused")


def test_a_top_share_of_one_place_cuts_at_the_highest_activity() -> None:
    share = top_share_of({"A": Fraction(3), "B": Fraction(1)}, Fraction(1, 2))
    assert (share.places, share.cut_activity, share.members) == (1, Fraction(3), ["A"])


def test_a_province_of_one_inhabitant_and_a_single_device_are_enough_for_an_index() -> None:
    standings = rank_provinces([Province("A", 1, 1), Province("B", 1, 0)])
    assert [(s.name, s.index) for s in standings] == [("B", Fraction(0)), ("A", Fraction(2))]


def test_an_applicant_of_an_unranked_province_cannot_be_decided() -> None:
    inputs = nmr_inputs([application("AZKlina", "Lapland", 1)])
    with pytest.raises(ValueError) as refused:
        decide_nmr(inputs)
    assert str(refused.value) == "AZKlina's province Lapland has no NMR-index"


def test_sentences_name_every_grantee_ahead_every_province_and_the_plural_capacity() -> None:
    decisions = by_institution(decide_nmr(nmr_inputs(applications_2024(), capacity=5)).decisions)
    assert decisions["AZMariaMiddelares"]["message"] == (
        "AZMariaMiddelares is in Oost-Vlaanderen (NMR-index rank 3 of 5), a province that had priority, but "
        "ranks lower on justified activity per MRI device (9500) than ASZ, granted before the capacity of "
        "5 devices was used (lager gerangschikt op verantwoorde activiteit per NMR)."
    )
    assert decisions["AZSintJanBrugge"]["message"] == (
        "AZSintJanBrugge is in West-Vlaanderen (NMR-index rank 4 of 5), not in the province that had "
        "priority: Antwerpen then Oost-Vlaanderen (NMR-index rank 3), whose applicants used the capacity "
        "of 5 devices (behoort niet tot de provincie met voorrang)."
    )
    two = by_institution(decide_nmr(nmr_inputs(applications_2024(), capacity=2)).decisions)
    assert (
        "than AZSintMaarten and AZKlina, granted before the capacity of 2 devices"
        in two["AZTurnhout"]["message"]
    )


def test_a_tie_with_two_grantees_names_both_and_several_waivers_are_listed() -> None:
    reference = {"A1": 9000, "A2": 9000, "A3": 9000, **{f"O{n}": 1 for n in range(17)}}
    applications = [application(n, "Antwerpen") for n in ("A1", "A2", "A3")]
    decisions = by_institution(
        decide_nmr(nmr_inputs(applications, capacity=2, reference=reference)).decisions
    )
    assert decisions["A3"]["message"].endswith(
        " Its activity equals that of A1 and A2; equal activity goes by institution id order."
    )
    waivers = {"A3": ["lower_activity_in_province", "not_in_top_share"]}
    waived = by_institution(
        decide_nmr(nmr_inputs(applications, capacity=2, reference=reference), waivers).decisions
    )
    assert waived["A3"]["message"].endswith(
        " An upheld objection waived: lower_activity_in_province, not_in_top_share."
    )


def test_a_care_region_without_a_fill_rate_is_named() -> None:
    error = refusal(rank_care_regions, [RegionFigures("Oostende", 0, 0)])
    assert error.details[0].message == (
        "Oostende needs a programme figure of at least 1 and a count of places that is not negative: "
        "its fill rate is places over programme figure"
    )


def test_a_hospital_missing_from_the_reference_list_is_told_so() -> None:
    applications = [application("NEW", "Antwerpen", 99_999)]
    decisions = by_institution(decide_nmr(nmr_inputs(applications)).decisions)
    assert decisions["NEW"]["message"] == (
        "NEW is not among the 8 of 52 Flemish hospitals (15%) with the highest justified activity per "
        "recognised MRI device (it has no justified activity per recognised MRI device on the reference "
        "list)."
    )
