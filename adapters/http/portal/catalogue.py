"""Which messages the pages show: every message marked in the templates and code, and the words of data."""

from __future__ import annotations

import re
from importlib import resources

from adapters.http.portal.render import ERROR_MESSAGES, LABELS, WORDS

_CALL = re.compile(
    r"""\b_?gettext\(\s*"((?:[^"\\]|\\.)*)"|\b_\(\s*"((?:[^"\\]|\\.)*)"|\b_\(\s*'((?:[^'\\]|\\.)*)'"""
)


def messages() -> list[str]:
    """Every message id, in the order first found; the catalogues must translate each of them."""
    found: list[str] = []
    package = resources.files("adapters.http.portal")
    sources = sorted(
        [entry for entry in (package / "templates").iterdir() if entry.name.endswith(".html")]
        + [entry for entry in package.iterdir() if entry.name.endswith(".py")],
        key=lambda entry: entry.name,
    )
    for source in sources:
        for match in _CALL.finditer(source.read_text(encoding="utf-8")):
            found.append(next(group for group in match.groups() if group is not None))
    found += [*ERROR_MESSAGES.values(), *WORDS, *LABELS.values()]
    return list(dict.fromkeys(found))
