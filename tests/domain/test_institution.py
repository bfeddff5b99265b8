"""The institution's rules: registered by the FOD, updated field by field."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import DomainError
from domain.institution import Institution

FOD: dict[str, Any] = {"source": "fod", "command_id": "f-1"}
FACTS: dict[str, Any] = {
    "name": "AZ Voorbeeld",
    "province": "Antwerpen",
    "region": "flemish",
    "campuses": ["Campus Noord", "Campus Zuid"],
}


def registered() -> Institution:
    institution = Institution.register("H001", **FACTS, **FOD)
    institution.collect_events()
    return institution


def test_an_institution_is_registered_with_its_region_and_campuses() -> None:
    institution = Institution.register("H001", **FACTS, **FOD)
    assert [type(e).__name__ for e in institution.collect_events()] == ["Registered"]
    assert institution.facts == FACTS


def test_a_region_outside_belgiums_three_is_refused() -> None:
    with pytest.raises(DomainError) as refusal:
        Institution.register("H001", **{**FACTS, "region": "lapland"}, **FOD)
    assert refusal.value.code == "schema"


def test_registering_the_same_facts_again_is_harmless_but_other_facts_conflict() -> None:
    institution = registered()
    institution.check_registered_as(dict(FACTS))
    with pytest.raises(DomainError) as refusal:
        institution.check_registered_as({**FACTS, "name": "AZ Ander"})
    assert refusal.value.code == "conflict"


def test_an_update_records_only_the_fields_that_change() -> None:
    institution = registered()
    changed = institution.update({"name": "AZ Voorbeeld", "campuses": ["Campus Noord"]}, **FOD)
    assert changed == ["campuses"]
    (event,) = institution.collect_events()
    assert type(event).__name__ == "Updated"
    assert event.changes == {"campuses": ["Campus Noord"]}  # type: ignore[attr-defined]
    assert institution.campuses == ["Campus Noord"]


def test_an_update_that_changes_nothing_records_nothing() -> None:
    institution = registered()
    assert institution.update({"province": "Antwerpen"}, **FOD) == []
    assert institution.collect_events() == []


@pytest.mark.parametrize("changes", [{"colour": "red"}, {"region": "atlantis"}])
def test_an_update_names_known_fields_and_valid_regions(changes: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as refusal:
        registered().update(changes, **FOD)
    assert refusal.value.code == "schema"
