"""Belgium as the kadaster names it: provinces, their regions, postcodes, and the modalities' other names."""

from __future__ import annotations

import unicodedata

from domain.identifiers import Modality

REGIONS = ("flemish", "brussels", "wallonia")

PROVINCES = {
    "Antwerpen": ("flemish", ("antwerpen", "antwerp", "anvers")),
    "Limburg": ("flemish", ("limburg", "limbourg")),
    "Oost-Vlaanderen": ("flemish", ("oost-vlaanderen", "east flanders", "flandre orientale", "ostflandern")),
    "West-Vlaanderen": (
        "flemish",
        ("west-vlaanderen", "west flanders", "flandre occidentale", "westflandern"),
    ),
    "Vlaams-Brabant": (
        "flemish",
        ("vlaams-brabant", "flemish brabant", "brabant flamand", "flämisch-brabant"),
    ),
    "Brussel": (
        "brussels",
        (
            "brussel",
            "brussels",
            "bruxelles",
            "brüssel",
            "brussels hoofdstedelijk gewest",
            "brussels-capital region",
            "région de bruxelles-capitale",
        ),
    ),
    "Henegouwen": ("wallonia", ("henegouwen", "hainaut", "hennegau")),
    "Luik": ("wallonia", ("luik", "liège", "liege", "lüttich")),
    "Luxemburg": ("wallonia", ("luxemburg", "luxembourg")),
    "Namen": ("wallonia", ("namen", "namur")),
    "Waals-Brabant": (
        "wallonia",
        ("waals-brabant", "walloon brabant", "brabant wallon", "wallonisch-brabant"),
    ),
}
"""Each province under its Dutch name, with its region and its Dutch, English, French and German names."""

REGION_ALIASES = {
    "flemish": ("flemish", "vlaanderen", "vlaams gewest", "vlaams", "flanders", "flandre", "flamand"),
    "brussels": ("brussels", "brussel", "bruxelles", "brussels-capital", "brussels hoofdstedelijk gewest"),
    "wallonia": ("wallonia", "wallonie", "wallonië", "waals gewest", "waals", "walloon", "wallon"),
}

POSTCODE_PROVINCES = (
    (1000, 1299, "Brussel"),
    (1300, 1499, "Waals-Brabant"),
    (1500, 1999, "Vlaams-Brabant"),
    (2000, 2999, "Antwerpen"),
    (3000, 3499, "Vlaams-Brabant"),
    (3500, 3999, "Limburg"),
    (4000, 4999, "Luik"),
    (5000, 5999, "Namen"),
    (6000, 6599, "Henegouwen"),
    (6600, 6999, "Luxemburg"),
    (7000, 7999, "Henegouwen"),
    (8000, 8999, "West-Vlaanderen"),
    (9000, 9999, "Oost-Vlaanderen"),
)
UNKNOWN_PROVINCE = "onbekend"
"""What an institution's province is recorded as when nobody said it."""

MODALITY_ALIASES = {
    Modality.MRI: ("mr", "nmr", "mri", "irm", "mrt"),
    Modality.CT: ("ct scan", "ct scanner", "scanner"),
    Modality.PET: ("pet scan",),
    Modality.PET_MRI: ("pet mr",),
}
"""What hospitals and the legacy register call a modality besides its name in the kadaster."""


def vocabulary_key(text: str) -> str:
    """Names match whatever their case, accents, spacing and punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


_PROVINCE_WORDS = {
    vocabulary_key(word): name for name, (_, words) in PROVINCES.items() for word in (name, *words)
}
_REGION_WORDS = {vocabulary_key(word): region for region, words in REGION_ALIASES.items() for word in words}
_MODALITY_WORDS = {
    **{vocabulary_key(m.value): m for m in Modality},
    **{vocabulary_key(word): m for m, words in MODALITY_ALIASES.items() for word in words},
}


def province_named(text: str) -> str | None:
    """The province (its Dutch name) that a name in any of the country's languages stands for."""
    return _PROVINCE_WORDS.get(vocabulary_key(text))


def region_of(province: str) -> str:
    return PROVINCES[province][0]


def region_named(text: str) -> str | None:
    return _REGION_WORDS.get(vocabulary_key(text))


def province_of_postcode(postcode: str) -> str | None:
    if not postcode.isdigit():
        return None
    for low, high, province in POSTCODE_PROVINCES:
        if low <= int(postcode) <= high:
            return province
    return None


def modality_named(text: str) -> Modality | None:
    return _MODALITY_WORDS.get(vocabulary_key(text))


def parse_modality(value: str, field: str = "data.modality") -> Modality:
    """A modality by its name or another name it goes by (`MR` is the MRI)."""
    found = modality_named(value)
    if found is None:
        return Modality.parse(value, field)
    return found


POPULATION_SOURCE = "Statbel"
"""Belgium's statistical office: the legal population on 1 January of `POPULATION_YEAR`."""
POPULATION_YEAR = 2024

PROVINCE_POPULATION: dict[str, int] = {
    "Antwerpen": 1_926_522,
    "Limburg": 900_098,
    "Oost-Vlaanderen": 1_558_463,
    "Vlaams-Brabant": 1_187_483,
    "West-Vlaanderen": 1_226_375,
    "Brussel": 1_249_597,
    "Waals-Brabant": 415_335,
    "Henegouwen": 1_356_975,
    "Luik": 1_117_004,
    "Luxemburg": 297_020,
    "Namen": 505_949,
}
"""Inhabitants per province; the Brussels-Capital Region counts as one, as the allocation rounds do.

Brussels and the Walloon provinces add up to Statbel's regional totals below, and Antwerpen is Statbel's
published figure; Limburg, the two Flanders and Vlaams-Brabant add up to 22,829 fewer than the Flemish
Region's total, so those four are to be checked against Statbel's table before a decision relies on them.
"""

REGION_POPULATION = {"flemish": 6_821_770, "brussels": 1_249_597, "wallonia": 3_692_283}


def province_population(name: str | None) -> int | None:
    """The reference population of a province named in any of the country's languages."""
    known = None if name is None else province_named(name)
    return None if known is None else PROVINCE_POPULATION[known]


def per_100k(devices: int, population: int | None) -> float | None:
    return None if not population else round(devices * 100_000 / population, 2)
