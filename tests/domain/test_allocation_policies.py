"""The allocation policies as pure functions: the 2024 and 2021 MRI rounds, edge cases, care regions."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest

from domain.allocation_policies import (
    GRANTED,
    HAS_SERVICE,
    LOWER_ACTIVITY_IN_PROVINCE,
    NOT_IN_TOP_SHARE,
    OUTSIDE_FLEMISH_REGION,
    PROVINCE_NOT_PRIORITISED,
    REFUSAL_REASONS,
    REFUSED,
    SERVICE_ON_OTHER_CAMPUS,
    Province,
    RegionFigures,
    decide_care_regions,
    decide_nmr,
    decimal_text,
    fill_rate_text,
    rank_care_regions,
    rank_provinces,
    top_share_of,
)
from tests.conftest import SHARED_DATA

# Populations: roughly those of 1 January 2023. Device counts are illustrative, chosen so that
# Limburg has the lowest NMR-index and Antwerpen the second-lowest, as in the 2024 answer.
PROVINCES_2023 = [
    {"name": "Antwerpen", "population": 1_926_522, "recognised_devices": 20},
    {"name": "Limburg", "population": 887_263, "recognised_devices": 8},
    {"name": "Oost-Vlaanderen", "population": 1_559_337, "recognised_devices": 19},
    {"name": "Vlaams-Brabant", "population": 1_173_440, "recognised_devices": 17},
    {"name": "West-Vlaanderen", "population": 1_217_379, "recognised_devices": 16},
]

# The 2024 answer's hospitals: (province, campus, justified activity per recognised MRI device).
# Activities are illustrative: the top 8 of 52 hospitals (15%, rounded up) are the seven
# applicants the answer ranks on province and activity, plus AZ Delta, who did not apply.
HOSPITALS_2024: dict[str, tuple[str, str, int]] = {
    "AZSintJanBrugge": ("West-Vlaanderen", "Brugge", 9900),
    "AZSintMaarten": ("Antwerpen", "Mechelen", 9800),
    "AZKlina": ("Antwerpen", "Brasschaat", 9700),
    "ASZ": ("Oost-Vlaanderen", "Aalst", 9600),
    "AZMariaMiddelares": ("Oost-Vlaanderen", "Gent", 9500),
    "AZTurnhout": ("Antwerpen", "Turnhout", 9400),
    "ZNA": ("Antwerpen", "Middelheim", 9300),
    "AZDelta": ("West-Vlaanderen", "Roeselare", 9200),
    "ZOLGenk": ("Limburg", "Genk", 9100),
    "UZLeuven": ("Vlaams-Brabant", "Gasthuisberg", 7000),
    "AZSintMariaHalle": ("Vlaams-Brabant", "Halle", 6900),
    "AZJanPortaels": ("Vlaams-Brabant", "Vilvoorde", 6800),
    "AZOostende": ("West-Vlaanderen", "Serruys", 6700),
    "AZGroeninge": ("West-Vlaanderen", "Kortrijk", 6600),
    "Noorderhart": ("Limburg", "Pelt", 6500),
    "UZA": ("Antwerpen", "Edegem", 6400),
    "AZMonica": ("Antwerpen", "Deurne", 6300),
}
REFERENCE_2024: dict[str, int] = {
    **{institution: activity for institution, (_, _, activity) in HOSPITALS_2024.items()},
    **{f"H{n:02d}": 4000 + 10 * n for n in range(1, 36)},
}
APPLICANTS_2024 = [i for i in HOSPITALS_2024 if i != "AZDelta"]

# What the minister's answer of 2024 published for that round.
PUBLISHED_2024 = {
    "AZSintMaarten": GRANTED,
    "AZKlina": GRANTED,
    "UZBrussel": OUTSIDE_FLEMISH_REGION,
    "UZLeuven": NOT_IN_TOP_SHARE,
    "AZSintMariaHalle": NOT_IN_TOP_SHARE,
    "AZJanPortaels": NOT_IN_TOP_SHARE,
    "AZOostende": NOT_IN_TOP_SHARE,
    "AZGroeninge": NOT_IN_TOP_SHARE,
    "ZOLGenk": NOT_IN_TOP_SHARE,
    "Noorderhart": NOT_IN_TOP_SHARE,
    "UZA": NOT_IN_TOP_SHARE,
    "AZMonica": NOT_IN_TOP_SHARE,
    "AZTurnhout": LOWER_ACTIVITY_IN_PROVINCE,
    "ZNA": LOWER_ACTIVITY_IN_PROVINCE,
    "ASZ": PROVINCE_NOT_PRIORITISED,
    "AZMariaMiddelares": PROVINCE_NOT_PRIORITISED,
    "AZSintJanBrugge": PROVINCE_NOT_PRIORITISED,
}


def application(
    institution: str,
    province: str,
    activity: int | str = 0,
    region: str = "flemish",
    campus: str | None = None,
    other_campus: bool = False,
) -> dict[str, Any]:
    return {
        "institution": institution,
        "campus": campus or institution,
        "province": province,
        "region": region,
        "justified_activity_per_device": str(activity),
        "has_service_on_other_campus": other_campus,
    }


def applications_2024() -> list[dict[str, Any]]:
    applied = [
        application(i, HOSPITALS_2024[i][0], HOSPITALS_2024[i][2], campus=HOSPITALS_2024[i][1])
        for i in APPLICANTS_2024
    ]
    return [*applied, application("UZBrussel", "Brussel", 8000, region="brussels", campus="Jette")]


def nmr_inputs(
    applications: list[dict[str, Any]],
    capacity: int = 2,
    reference: dict[str, int] | None = None,
    provinces: list[dict[str, Any]] | None = None,
    new_services_only: bool = False,
) -> dict[str, Any]:
    return {
        "capacity": capacity,
        "provinces": provinces or PROVINCES_2023,
        "reference_activity": {
            k: str(v) for k, v in (REFERENCE_2024 if reference is None else reference).items()
        },
        "top_share": "3/20",
        "new_services_only": new_services_only,
        "applications": applications,
    }


def outcomes(decisions: list[dict[str, Any]]) -> dict[str, str]:
    return {d["institution"]: d["reason"] or d["outcome"] for d in decisions}


def by_institution(decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["institution"]: d for d in decisions}


# the 2024 round (two devices, decree of 31 August 2023)


def test_the_2024_round_grants_both_devices_to_hospitals_of_antwerp_province() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()))
    granted = [d["institution"] for d in result.decisions if d["outcome"] == GRANTED]
    assert granted == ["AZSintMaarten", "AZKlina"]
    assert {by_institution(result.decisions)[i]["province"] for i in granted} == {"Antwerpen"}


def test_every_refused_hospital_of_2024_gets_the_published_kind_of_reason() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()))
    assert outcomes(result.decisions) == PUBLISHED_2024


def test_antwerp_had_priority_because_limburg_the_lowest_province_had_no_eligible_applicant() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()))
    provinces = [p["province"] for p in result.ranking["provinces"]]
    assert provinces[:2] == ["Limburg", "Antwerpen"]
    assert all(p["province"] != "Limburg" for p in result.ranking["priority"])
    assert result.ranking["priority"][0]["province_rank"] == 2


def test_a_refusal_for_province_names_the_province_that_had_priority() -> None:
    decision = by_institution(decide_nmr(nmr_inputs(applications_2024())).decisions)["AZSintJanBrugge"]
    assert decision["priority_province"] == "Antwerpen"
    assert "Antwerpen" in decision["message"]
    assert "West-Vlaanderen (NMR-index rank 4 of 5)" in decision["message"]


def test_a_higher_activity_in_a_later_province_does_not_beat_province_priority() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()))
    assert REFERENCE_2024["AZSintJanBrugge"] > REFERENCE_2024["AZSintMaarten"]
    assert by_institution(result.decisions)["AZSintJanBrugge"]["outcome"] == REFUSED


def test_every_decision_is_granted_or_refused_with_one_contract_reason_and_a_sentence() -> None:
    for decision in decide_nmr(nmr_inputs(applications_2024())).decisions:
        if decision["outcome"] == GRANTED:
            assert decision["reason"] is None
        else:
            assert decision["outcome"] == REFUSED
            assert decision["reason"] in REFUSAL_REASONS
        assert decision["message"].startswith(decision["institution"])
        assert decision["message"].endswith(".")


def test_the_decision_does_not_depend_on_the_order_applications_arrived_in() -> None:
    forward = decide_nmr(nmr_inputs(applications_2024()))
    backward = decide_nmr(nmr_inputs(list(reversed(applications_2024()))))
    assert forward == backward


def test_the_recorded_ranking_and_decisions_are_plain_json() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()))
    again = json.loads(json.dumps({"ranking": result.ranking, "decisions": result.decisions}))
    assert again == {"ranking": result.ranking, "decisions": result.decisions}


# the 2021 round (hospitals without an MRI service only)


def test_the_2021_round_refuses_hospitals_with_a_service_on_another_campus() -> None:
    newcomers = [
        application("AZLokeren", "Oost-Vlaanderen", 3000),
        application("AZSintVincentiusDeinze", "Oost-Vlaanderen", 2900),
        application("HHZMol", "Antwerpen", 2800),
        application("MaasEnKempen", "Limburg", 2700),
        application("AZWest", "West-Vlaanderen", 2600),
        application("SintAndriesTielt", "West-Vlaanderen", 2500),
        application("SintJozefIzegem", "West-Vlaanderen", 2400),
    ]
    with_service = [
        application("ASZ", "Oost-Vlaanderen", 5000, campus="Geraardsbergen", other_campus=True),
        application("AZRivierenland", "Antwerpen", 4000, campus="Bornem", other_campus=True),
    ]
    reference = {"ASZ": 9600, "AZRivierenland": 7000, "UZA": 6400}
    result = decide_nmr(nmr_inputs([*newcomers, *with_service], 7, reference, new_services_only=True))
    assert outcomes(result.decisions) == {
        **{a["institution"]: GRANTED for a in newcomers},
        "ASZ": SERVICE_ON_OTHER_CAMPUS,
        "AZRivierenland": SERVICE_ON_OTHER_CAMPUS,
    }
    assert result.ranking["top_share"] is None


def test_in_a_new_services_round_a_hospital_with_its_own_service_is_refused() -> None:
    inputs = nmr_inputs([application("UZA", "Antwerpen", 6400)], 1, {"UZA": 6400}, new_services_only=True)
    assert outcomes(decide_nmr(inputs).decisions) == {"UZA": HAS_SERVICE}


# the top share, the NMR-index and ties


@pytest.mark.parametrize(("hospitals", "places"), [(52, 8), (60, 9), (40, 6), (7, 2), (1, 1)])
def test_the_top_share_is_fifteen_percent_of_the_hospitals_rounded_up(hospitals: int, places: int) -> None:
    share = top_share_of({f"H{n}": Fraction(n) for n in range(hospitals)}, Fraction(15, 100))
    assert share.places == places
    assert len(share.members) == places


def test_hospitals_tied_with_the_last_place_of_the_top_share_are_all_in() -> None:
    reference = {
        "A": Fraction(900),
        "B": Fraction(800),
        "C": Fraction(800),
        **{f"H{n}": Fraction(n) for n in range(10)},
    }
    share = top_share_of(reference, Fraction(15, 100))
    assert share.places == 2
    assert share.members == ["A", "B", "C"]


def test_the_nmr_index_is_devices_per_inhabitant_relative_to_the_flemish_average() -> None:
    provinces = rank_provinces(Province(**p) for p in PROVINCES_2023)
    limburg = provinces[0]
    average = Fraction(80, sum(p["population"] for p in PROVINCES_2023))
    assert limburg.name == "Limburg"
    assert limburg.index == Fraction(8, 887_263) / average
    assert limburg.as_record()["devices_per_100k"] == "0.902"


def test_provinces_with_an_equal_nmr_index_are_ordered_by_name() -> None:
    provinces = rank_provinces(
        [Province("Zeeland", 1000, 1), Province("Antwerpen", 2000, 2), Province("Limburg", 1000, 3)]
    )
    assert [p.name for p in provinces] == ["Antwerpen", "Zeeland", "Limburg"]


def test_equal_activity_within_a_province_goes_by_institution_id_order() -> None:
    reference = {"B": 500, "A": 500, **{f"H{n}": n for n in range(20)}}
    applications = [application("B", "Antwerpen"), application("A", "Antwerpen")]
    result = decide_nmr(nmr_inputs(applications, capacity=1, reference=reference))
    assert outcomes(result.decisions) == {"A": GRANTED, "B": LOWER_ACTIVITY_IN_PROVINCE}
    assert "equal activity goes by institution id order" in by_institution(result.decisions)["B"]["message"]


def test_when_the_lowest_province_has_no_eligible_applicant_the_next_lowest_has_priority() -> None:
    reference = {"WVL": 900, "ANT": 1, **{f"H{n}": n for n in range(20)}}
    applications = [
        application("WVL", "West-Vlaanderen"),
        application("ANT", "Antwerpen"),
        application("LIM", "Limburg", 10_000),
    ]
    result = decide_nmr(nmr_inputs(applications, capacity=1, reference=reference))
    assert outcomes(result.decisions) == {
        "ANT": NOT_IN_TOP_SHARE,
        "LIM": NOT_IN_TOP_SHARE,
        "WVL": GRANTED,
    }


def test_capacity_left_after_the_priority_province_goes_to_the_next_province() -> None:
    reference = {"ANT": 900, "OVL": 800, "WVL": 700, **{f"H{n}": n for n in range(20)}}
    applications = [
        application("ANT", "Antwerpen"),
        application("OVL", "Oost-Vlaanderen"),
        application("WVL", "West-Vlaanderen"),
    ]
    result = decide_nmr(nmr_inputs(applications, capacity=2, reference=reference))
    assert outcomes(result.decisions) == {"ANT": GRANTED, "OVL": GRANTED, "WVL": PROVINCE_NOT_PRIORITISED}
    assert by_institution(result.decisions)["WVL"]["priority_province"] == "Oost-Vlaanderen"


def test_capacity_larger_than_the_eligible_applicants_grants_them_all_and_leaves_the_rest_unused() -> None:
    reference = {"ANT": 900, "OVL": 800, "SMALL": 1, **{f"H{n}": n for n in range(20)}}
    applications = [
        application("ANT", "Antwerpen"),
        application("OVL", "Oost-Vlaanderen"),
        application("SMALL", "Limburg"),
        application("BXL", "Brussel", region="brussels"),
    ]
    result = decide_nmr(nmr_inputs(applications, capacity=5, reference=reference))
    assert outcomes(result.decisions) == {
        "ANT": GRANTED,
        "OVL": GRANTED,
        "SMALL": NOT_IN_TOP_SHARE,
        "BXL": OUTSIDE_FLEMISH_REGION,
    }
    assert result.ranking["unused_capacity"] == 3


def test_a_hospital_missing_from_the_reference_list_is_not_in_the_top_share() -> None:
    result = decide_nmr(nmr_inputs([application("NEW", "Antwerpen", 99_999)], capacity=1))
    decision = by_institution(result.decisions)["NEW"]
    assert decision["reason"] == NOT_IN_TOP_SHARE
    assert "no justified activity per recognised MRI device on the reference list" in decision["message"]


# upheld objections: the contested step is waived and the round recomputed


def test_waiving_the_top_share_for_an_objector_in_the_lowest_province_displaces_the_last_grantee() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()), {"ZOLGenk": [NOT_IN_TOP_SHARE]})
    decisions = by_institution(result.decisions)
    assert decisions["ZOLGenk"]["outcome"] == GRANTED
    assert decisions["ZOLGenk"]["waived"] == [NOT_IN_TOP_SHARE]
    assert decisions["AZSintMaarten"]["outcome"] == GRANTED
    assert decisions["AZKlina"]["reason"] == LOWER_ACTIVITY_IN_PROVINCE


def test_waiving_lower_activity_puts_the_objector_ahead_in_its_province() -> None:
    result = decide_nmr(nmr_inputs(applications_2024()), {"ZNA": [LOWER_ACTIVITY_IN_PROVINCE]})
    granted = [d["institution"] for d in result.decisions if d["outcome"] == GRANTED]
    assert granted == ["ZNA", "AZSintMaarten"]


def test_a_waived_reason_does_not_waive_the_other_steps() -> None:
    # UZ Leuven's top-share refusal is waived, but Vlaams-Brabant has the highest NMR-index.
    result = decide_nmr(nmr_inputs(applications_2024()), {"UZLeuven": [NOT_IN_TOP_SHARE]})
    assert by_institution(result.decisions)["UZLeuven"]["reason"] == PROVINCE_NOT_PRIORITISED


# care regions


def test_fill_rates_are_shown_as_percentages_rounded_half_up_to_two_decimals() -> None:
    assert fill_rate_text(Fraction(4582, 4927)) == "93.00"
    assert fill_rate_text(Fraction(1, 20_000)) == "0.01"
    assert fill_rate_text(Fraction(5, 20_000)) == "0.03"
    assert fill_rate_text(Fraction(2, 3)) == "66.67"
    assert fill_rate_text(Fraction(1)) == "100.00"
    assert decimal_text(Fraction(-5, 1000), 2) == "-0.01"


def test_care_regions_are_ranked_lowest_fill_rate_first_and_ties_by_region_name() -> None:
    ranking = rank_care_regions(
        [RegionFigures("Gent", 200, 100), RegionFigures("Aalst", 100, 50), RegionFigures("Brugge", 100, 40)]
    )
    assert [(r["region"], r["rank"], r["fill_rate"]) for r in ranking] == [
        ("Brugge", 1, "40.00"),
        ("Aalst", 2, "50.00"),
        ("Gent", 3, "50.00"),
    ]


def test_fill_rates_that_print_alike_are_still_compared_exactly() -> None:
    ranking = rank_care_regions([RegionFigures("A", 300_000, 100_001), RegionFigures("B", 3, 1)])
    assert [r["fill_rate"] for r in ranking] == ["33.33", "33.33"]
    assert [r["region"] for r in ranking] == ["B", "A"]


def test_the_published_first_trimester_of_2017_follows_from_its_figures() -> None:
    series = json.loads((SHARED_DATA / "care_regions_2017h1.json").read_text())
    expected = json.loads((SHARED_DATA / "care_regions_2017h1_expected.json").read_text())["2017Q1"]
    figures = series["trimesters"][0]["programme_figures"]
    regions = [{"name": n, "programme_figure": f, "filled": series["start"][n]} for n, f in figures.items()]
    ranking = decide_care_regions({"capacity": 0, "regions": regions}).ranking["regions"]
    shown = [
        {k: r[k] for k in ("region", "programme_figure", "filled", "fill_rate", "rank")} for r in ranking
    ]
    assert sorted(shown, key=lambda r: r["region"]) == sorted(expected, key=lambda r: r["region"])
