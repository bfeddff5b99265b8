"""The population shipped for capacity per 100,000 inhabitants: every province, named in any language."""

from __future__ import annotations

from domain.reference import (
    PROVINCE_POPULATION,
    PROVINCES,
    REGION_POPULATION,
    per_100k,
    province_population,
    region_of,
)


def test_every_province_has_a_population_and_is_found_by_its_other_names() -> None:
    assert set(PROVINCE_POPULATION) == set(PROVINCES)
    assert province_population("Anvers") == province_population("antwerpen") == 1_926_522
    assert province_population("Liège") == PROVINCE_POPULATION["Luik"]
    assert province_population("Atlantis") is None and province_population(None) is None


def test_the_brussels_and_walloon_figures_add_up_to_statbels_regional_totals() -> None:
    for region in ("brussels", "wallonia"):
        provinces = [name for name in PROVINCE_POPULATION if region_of(name) == region]
        assert sum(PROVINCE_POPULATION[name] for name in provinces) == REGION_POPULATION[region]


def test_devices_per_100k_inhabitants_is_rounded_to_two_decimals_and_absent_without_a_population() -> None:
    assert per_100k(23, 1_926_522) == 1.19
    assert per_100k(3, None) is None and per_100k(3, 0) is None
