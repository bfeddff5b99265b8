"""Reference data pinned at its edges: postcode ranges to their last number, modalities' other names."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.reference import parse_modality, province_of_postcode


@pytest.mark.parametrize(
    ("postcode", "province"),
    [
        ("1000", "Brussel"),
        ("1299", "Brussel"),
        ("1300", "Waals-Brabant"),
        ("3499", "Vlaams-Brabant"),
        ("3500", "Limburg"),
        ("9999", "Oost-Vlaanderen"),
        ("0999", None),
        ("B-1000", None),
    ],
)
def test_a_postcode_belongs_to_its_province_up_to_the_last_number_of_its_range(
    postcode: str, province: str | None
) -> None:
    assert province_of_postcode(postcode) == province


def test_an_unknown_modality_is_refused_under_the_field_it_came_in() -> None:
    with pytest.raises(DomainError) as refused:
        parse_modality("X-ray")
    assert (refused.value.code, refused.value.details[0].field) == ("modality_not_in_scope", "data.modality")
    with pytest.raises(DomainError) as refused:
        parse_modality("X-ray", "data.changes.modality")
    assert refused.value.details[0].field == "data.changes.modality"
    assert parse_modality("pet_ct").value == "PET-CT"
