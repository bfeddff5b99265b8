"""The web application's languages: gettext catalogues read from the package's `.po` files at start."""

from __future__ import annotations

import gettext
import io
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("nl", "fr", "en")
"""Dutch, French and English; English is the catalogues' source language."""
DEFAULT = "en"
LANGUAGE_NAMES = {"nl": "Nederlands", "fr": "Français", "en": "English"}


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The language's catalogue, compiled in memory from its `.po` source (English: the source itself)."""
    if language not in LANGUAGES or language == DEFAULT:
        return gettext.NullTranslations()
    source = resources.files("adapters.http.portal") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language switched to, else the browser's first known preference, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT
