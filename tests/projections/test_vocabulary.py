"""Provinces and modalities as people write them: in Dutch, French, German or English, and `MR`."""

from __future__ import annotations

import pytest

from domain.reference import parse_modality, province_named
from projections.queries import Queries
from tests.conftest import Sender
from tests.projections.conftest import answer


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("Liège", "Luik"),
        ("liege", "Luik"),
        ("Lüttich", "Luik"),
        ("Anvers", "Antwerpen"),
        ("Hennegau", "Henegouwen"),
    ],
)
def test_a_province_is_known_in_every_language_of_the_country(written: str, kept: str) -> None:
    assert province_named(written) == kept


@pytest.mark.parametrize(
    ("written", "kept"), [("MR", "MRI"), ("mr", "MRI"), ("PET/CT", "PET-CT"), ("petct", "PET-CT")]
)
def test_a_modality_is_known_as_commonly_written(written: str, kept: str) -> None:
    assert parse_modality(written).value == kept


def test_mr_is_accepted_by_midid_issue_and_by_the_filters(queries: Queries, lifecycle: Sender) -> None:
    issued = lifecycle.accepted("hospital/H001", "midid.issue", {"modality": "MR"})
    assert issued["modality"] == "MRI"
    queries.projector.catch_up()  # type: ignore[union-attr]
    by_alias = answer(queries, "midids", {"modality": "MR"}, "H001")["items"]
    assert by_alias == answer(queries, "midids", {"modality": "MRI"}, "H001")["items"] != []


def test_a_province_filter_in_french_finds_what_the_register_keeps_in_dutch(queries: Queries) -> None:
    in_dutch = answer(queries, "devices", {"province": "Antwerpen"})["items"]
    assert in_dutch
    assert answer(queries, "devices", {"province": "Anvers"})["items"] == in_dutch


def test_an_institution_registered_with_a_french_province_is_kept_under_its_dutch_name(
    sender: Sender,
) -> None:
    registered = {
        "institution": "H777",
        "name": "CHU",
        "province": "Liège",
        "region": "wallonia",
        "campuses": [],
    }
    assert sender.accepted("fod", "institution.register", registered)["province"] == "Luik"
    # Saying the same province in German changes nothing: it is the province the register keeps.
    again = sender.accepted("fod", "institution.update", {"institution": "H777", "province": "Lüttich"})
    assert again["province"] == "Luik" and not again["changed"], again
