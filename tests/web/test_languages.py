"""Every page in Dutch and in French with no English left on it; the contract's English labels as written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Browser, Page

from adapters.http.portal.catalogue import messages
from adapters.http.portal.i18n import choose, translations
from adapters.nats.client import KadasterClient
from tests.web.conftest import MID_ID, Site, open_page, sign_in

UNLABELLED = """() => Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea"))
  .filter(field => field.labels.length === 0 && !field.getAttribute("aria-label"))
  .map(field => field.name || field.id)"""
"""Form fields that a screen reader could not name."""

TEXTS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !["SCRIPT", "STYLE"].includes(parent.tagName)) found.push(walker.currentNode.textContent);
  }
  for (const element of document.querySelectorAll("[aria-label], [placeholder], [title], [alt]")) {
    for (const name of ["aria-label", "placeholder", "title", "alt"]) {
      if (element.getAttribute(name)) found.push(element.getAttribute(name));
    }
  }
  return found;
}"""


def english_patterns(language: str) -> list[tuple[str, re.Pattern[str]]]:
    """The English messages that read differently in `language`, as patterns of a whole text."""
    catalogue = translations(language)
    patterns = []
    for message in messages():
        if catalogue.gettext(message) == message:
            continue
        pattern = re.escape(message)
        pattern = re.sub(r"%\\\(\w+\\\)s", ".+", pattern)
        patterns.append((message, re.compile(pattern)))
    return patterns


def untranslated(texts: list[str], patterns: list[tuple[str, re.Pattern[str]]]) -> list[str]:
    left = []
    for text in texts:
        shown = " ".join(text.split()).strip(" :·()")
        if not shown:
            continue
        left += [message for message, pattern in patterns if pattern.fullmatch(shown)]
    return left


async def walk(page: Page, language: str, paths: list[str], artefacts: Path, who: str) -> list[str]:
    patterns = english_patterns(language)
    problems = []
    for asked in paths:
        # "!path": a page this person may not see, answered with the refusal page.
        path, expected = (asked[1:], 403) if asked.startswith("!") else (asked, 200)
        answer = await page.goto(path)
        assert answer is not None and answer.status == expected, (path, answer and answer.status)
        assert await page.get_attribute("html", "lang") == language, path
        left = untranslated(await page.evaluate(TEXTS), patterns)
        problems += [f"{who} {path}: {message!r}" for message in left]
        problems += [f"{who} {path}: field {name} has no label" for name in await page.evaluate(UNLABELLED)]
        name = re.sub(r"\W+", "-", path.strip("/")) or "start"
        await page.screenshot(path=artefacts / f"{language}-{who}-{name}.png", full_page=True)
    return problems


def test_every_message_has_a_dutch_and_a_french_translation() -> None:
    for language in ("nl", "fr"):
        catalogue = translations(language)
        missing = [m for m in messages() if not catalogue.gettext(m).strip() or catalogue.gettext(m) is m]
        assert missing == [], language


def test_the_browsers_language_comes_first_unless_the_reader_switched() -> None:
    assert choose(None, "fr-BE,fr;q=0.9,en;q=0.8") == "fr"
    assert choose(None, "de-DE,nl;q=0.5,fr;q=0.4") == "nl"
    assert choose(None, "de-DE") == "en"
    assert choose("nl", "fr-BE") == "nl"
    assert choose("xx", None) == "en"


async def test_every_page_reads_in_dutch_and_french_with_no_english_word_and_every_field_labelled(
    site: Site, chromium: Browser, artefacts: Path
) -> None:
    site.person("anna", "hospital/H001", "local-admin", "requester", "reporter")
    site.person("fons", "fod", "operator")
    site.person("vera", "vazg", "operator")
    site.person("audrey", "*", "auditor")
    fod = await KadasterClient.connect(site.running.nats_url, "fod")
    h001 = await KadasterClient.connect(site.running.nats_url, "hospital/H001")
    try:
        registered = await fod.send(
            "institution.register",
            {"institution": "H001", "name": "AZ Voorbeeld", "province": "Antwerpen", "region": "flemish"},
        )
        assert registered["status"] == "accepted", registered
        mid_ids = []
        for modality in ("MRI", "CT"):
            issued = await h001.send("midid.issue", {"modality": modality})
            mid_ids.append(issued["result"]["mid_id"])
        device = {
            "mid_id": mid_ids[0],
            "modality": "MRI",
            "manufacturer": "Philips",
            "model": "Ingenia",
            "serial_number": "S-1",
            "campus": "Campus Zuid",
            "installed_on": "2024-02-01",
            "use": "clinical",
        }
        assert (await h001.send("device.report", device))["status"] == "accepted"
        assert (await fod.send("midid.link", {"mid_id": mid_ids[0]}))["status"] == "accepted"
    finally:
        await fod.close()
        await h001.close()
    moment = datetime.now(UTC).isoformat()
    mid_id = mid_ids[0]
    assert MID_ID.fullmatch(mid_id)
    pages = {
        "anna": [
            "/",
            "/app/devices",
            f"/app/devices/{mid_id}",
            "/app/report",
            "/app/discrepancies",
            "/app/people",
            "!/app/kadaster",
        ],
        "fons": [
            "/app/kadaster",
            "/app/worklist",
            "/app/discrepancies?status=all",
            "/app/capacity",
            "/app/institutions",
            "/app/people",
            f"/app/devices/{mid_id}",
            "/app/rounds",
        ],
        "vera": ["/app/rounds", "/app/capacity?modality=CT"],
        "audrey": [f"/app/timeline?key={mid_id}", f"/app/as-of?moment={quote(moment)}", "/app/ledger"],
    }
    problems: list[str] = []
    # Dutch from the browser's language; French by the switch on the page.
    for language in ("nl", "fr"):
        for who, paths in pages.items():
            page = await open_page(chromium, site, locale="nl-BE")
            await page.goto("/signin")
            if language == "fr":
                await page.get_by_role("link", name="Français").click()
            problems += await walk(page, language, ["/signin"], artefacts, who)
            await page.locator("#login").fill(who)
            await page.locator("#password").fill("s3cret-pw!")
            await page.locator("form[action='/signin'] button").click()
            await page.wait_for_load_state()
            problems += await walk(page, language, paths, artefacts, who)
            await page.context.close()
    assert problems == []


async def test_the_english_labels_are_the_contracts(site: Site, chromium: Browser) -> None:
    site.person("rita", "hospital/H001", "requester")
    page = await open_page(chromium, site, locale="en-US")
    await page.goto("/signin")
    for text in ("User name", "Password"):
        assert await page.locator(f"label:text-is('{text}')").count() == 1
    assert await page.locator("button:text-is('Sign in')").count() == 1
    await sign_in(page, "rita")
    assert await page.locator("label:text-is('Modality')").count() == 1
    assert await page.locator("button:text-is('Request a MID-ID')").count() == 1
    await page.context.close()


def test_the_check_finds_english_left_on_a_dutch_page() -> None:
    patterns = english_patterns("nl")
    assert untranslated(["Request a MID-ID", " Page 2 of 7 ", "Aanmelden", "MID-0000001-95"], patterns) == [
        "Request a MID-ID",
        "Page %(number)s of %(pages)s",
    ]
