"""Belgium's provinces, regions and postcodes, and the modalities' other names, in one place."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.identifiers import Modality
from domain.reference import (
    PROVINCES,
    REGIONS,
    parse_modality,
    province_named,
    province_of_postcode,
    region_named,
    region_of,
)


@pytest.mark.parametrize(
    ("name", "province"),
    [
        ("Anvers", "Antwerpen"),
        ("antwerp", "Antwerpen"),
        ("LIEGE", "Luik"),
        ("Brabant wallon", "Waals-Brabant"),
    ],
)
def test_a_province_is_known_by_its_dutch_french_and_english_names(name: str, province: str) -> None:
    assert province_named(name) == province


def test_every_province_lies_in_one_of_the_three_regions() -> None:
    assert {region_of(province) for province in PROVINCES} == set(REGIONS)
    assert region_named("Vlaanderen") == "flemish"
    assert region_named("Wallonië") == "wallonia"
    assert region_named("Lapland") is None


def test_a_postcode_places_an_institution_in_its_province() -> None:
    assert province_of_postcode("1000") == "Brussel"
    assert province_of_postcode("3500") == "Limburg"
    assert province_of_postcode("0999") is None
    assert province_of_postcode("B-1000") is None


def test_a_modality_is_known_by_its_other_names_and_anything_else_is_out_of_scope() -> None:
    assert parse_modality("MR") is Modality.MRI
    assert parse_modality("IRM") is Modality.MRI
    assert parse_modality("CT scanner") is Modality.CT
    assert parse_modality("pet-ct") is Modality.PET_CT
    with pytest.raises(DomainError) as raised:
        parse_modality("X-ray")
    assert raised.value.code == "modality_not_in_scope"
