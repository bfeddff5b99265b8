"""The pages behind the browser: people, XLSX, errors beside their field, rounds, and no trace on failure."""

from __future__ import annotations

import html
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from adapters.bootstrap import Running
from adapters.cli.access import record_access
from adapters.http.auth import Guard
from adapters.nats.client import KadasterClient
from tests.domain.test_allocation_policies import PROVINCES_2023, REFERENCE_2024, applications_2024
from tests.integration.conftest import asgi_client, guard, h001, h002, kadaster, web_app
from tests.services.test_rounds import (
    AFTER_DEADLINE,
    APPLIED,
    DECIDED,
    OPENED,
    ROUND_2024,
    application_data,
)
from tests.web.test_languages import english_patterns, untranslated

__all__ = ["guard", "h001", "h002", "kadaster"]
PASSWORD = "s3cret-pw!"


@pytest.fixture
def app(kadaster: Running, guard: Guard) -> FastAPI:
    return web_app(kadaster, guard)


def person(kadaster: Running, guard: Guard, login: str, party: str, *roles: str) -> None:
    for role in roles:
        data = {"person": login, "name": login.title(), "party": party, "role": role}
        assert record_access(kadaster.register, "access.grant", data)["status"] == "accepted"
    if guard.credentials.account(login) is None:
        guard.credentials.add_account(login, login.title(), party, PASSWORD)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields (csrf, envelope) of the first form posting to `action`."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, html
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form[0]))


async def sign_in(browser: httpx.AsyncClient, login: str) -> None:
    browser.cookies.clear()
    page = await browser.get("/signin")
    fields = form_fields(page.text, "/signin")
    signed = await browser.post("/signin", data={**fields, "login": login, "password": PASSWORD})
    assert signed.status_code == 303, signed.text


async def test_a_local_administrator_grants_and_revokes_her_hospitals_people_and_sees_who_did_what(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    person(kadaster, guard, "anna", "hospital/H001", "local-admin")
    await sign_in(browser, "anna")
    page = await browser.get("/app/people")
    assert page.status_code == 200
    assert '<option value="local-admin">' not in page.text  # hers to grant: requester, reporter, viewer
    fields = form_fields(page.text, "/app/people/grant")
    grant = {"person": "bert", "name": "Bert Peeters", "role": "requester", "party": "hospital/H002"}
    granted = await browser.post("/app/people/grant", data={**fields, **grant})
    assert granted.status_code == 303
    listed = await browser.get("/app/people")
    assert 'data-person="bert"' in listed.text and "hospital/H001" in listed.text
    assert "hospital/H002" not in listed.text  # the party is always her own hospital
    # A forged form granting local-admin is refused by the grant rules, next to the role.
    forged = await browser.post(
        "/app/people/grant",
        data={**form_fields(listed.text, "/app/people/grant"), **grant, "role": "local-admin"},
    )
    assert forged.status_code == 400 and 'id="role-error"' in forged.text and "(forbidden)" in forged.text
    # Bert requests a MID-ID; Anna sees who did it.
    guard.credentials.add_account("bert", "Bert", "hospital/H001", PASSWORD)
    await sign_in(browser, "bert")
    start = await browser.get("/")
    issued = await browser.post("/midid", data={**form_fields(start.text, "/midid"), "modality": "CT"})
    assert 'id="new-mid-id"' in issued.text
    await sign_in(browser, "anna")
    people = await browser.get("/app/people")
    assert re.search(r"<td>bert</td><td>MidIdRecord\.Issued</td>", people.text), people.text
    revoke = re.search(r'<tr data-person="bert">.*?</tr>', people.text, re.S)
    assert revoke
    fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', revoke[0]))
    revoked = await browser.post("/app/people/revoke", data={**fields, "reason": "left"})
    assert revoked.status_code == 303
    assert 'data-person="bert"' not in (await browser.get("/app/people")).text


async def test_a_hospital_downloads_its_own_register_as_xlsx_and_no_other_hospitals(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient, h001: KadasterClient, h002: KadasterClient
) -> None:
    for client, serial in ((h001, "OURS-1"), (h002, "THEIRS-1")):
        mid_id = (await client.send("midid.issue", {"modality": "CT"}))["result"]["mid_id"]
        report = {
            "mid_id": mid_id,
            "modality": "CT",
            "manufacturer": "GE",
            "model": "Revolution",
            "serial_number": serial,
            "campus": "Campus A",
            "installed_on": "2023-05-01",
            "use": "clinical",
        }
        assert (await client.send("device.report", report))["status"] == "accepted"
    person(kadaster, guard, "vic", "hospital/H001", "viewer")
    await sign_in(browser, "vic")
    download = await browser.get("/app/export.xlsx")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="kadaster-H001.xlsx"'
    workbook = load_workbook(io.BytesIO(download.content))
    cells = {str(cell.value) for sheet in workbook for row in sheet.iter_rows() for cell in row}
    assert "OURS-1" in cells and "THEIRS-1" not in cells


async def test_a_refused_report_is_explained_beside_its_field_in_the_readers_language_and_changes_nothing(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    person(kadaster, guard, "rita", "hospital/H001", "requester", "reporter")
    await sign_in(browser, "rita")
    start = await browser.get("/")
    issued = await browser.post("/midid", data={**form_fields(start.text, "/midid"), "modality": "MRI"})
    mid_id = re.search(r'id="new-mid-id">([^<]+)<', issued.text)
    assert mid_id
    form = await browser.get(f"/app/report?mid_id={mid_id[1]}", headers={"Accept-Language": "fr-BE"})
    data = {
        **form_fields(form.text, "/app/report"),
        "mid_id": mid_id[1],
        "manufacturer": "Siemens",
        "model": "Vida",
        "serial_number": "S-9",
        "campus": "Campus A",
        "installed_on": "2023-02-30",
        "use": "clinical",
    }
    refused = await browser.post("/app/report", data=data, headers={"Accept-Language": "fr-BE"})
    assert refused.status_code == 400
    beside = re.search(r'<span class="error" id="installed_on-error">(.*?)</span>\s*</p>', refused.text, re.S)
    assert beside, refused.text
    assert "Cette valeur n'est pas valide." in html.unescape(beside[1]) and "(schema)" in beside[1]
    assert 'value="Siemens"' in refused.text  # what was typed is kept
    devices = await browser.get("/app/devices")
    assert mid_id[1] not in devices.text


async def test_a_page_that_fails_shows_its_code_and_never_a_trace(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    person(kadaster, guard, "rita", "hospital/H001", "viewer")
    await sign_in(browser, "rita")
    assert kadaster.queries is not None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away at /secret/path.py line 42")

    monkeypatch.setattr(kadaster.queries, "run", broken)
    page = await browser.get("/", headers={"Accept-Language": "nl"})
    assert page.status_code == 500
    assert "(internal_error)" in page.text and "Er ging bij ons iets mis" in page.text
    assert "Traceback" not in page.text and "secret" not in page.text and "RuntimeError" not in page.text


async def test_the_vazg_sees_a_rounds_decisions_with_their_sentences_and_its_verification(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    vazg = await KadasterClient.connect(kadaster.nats_url, "vazg")
    hospitals: dict[str, KadasterClient] = {}

    async def send_at(client: KadasterClient, time: str, type_: str, data: dict[str, Any]) -> None:
        envelope = client.envelope(type_, data)
        envelope["time"] = time
        outcome = await client.send_envelope(envelope)
        assert outcome["status"] == "accepted", outcome

    try:
        opened = {
            "round_id": ROUND_2024,
            "programme": "nmr",
            "period": "2023",
            "capacity": 2,
            # Applications are judged by when the register receives them: the deadline lies ahead.
            "deadline": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "provinces": PROVINCES_2023,
            "reference_activity": REFERENCE_2024,
            "top_share": 0.15,
            "new_services_only": False,
        }
        await send_at(vazg, OPENED, "round.open", opened)
        for application in applications_2024():
            source = f"hospital/{application['institution']}"
            if source not in hospitals:
                hospitals[source] = await KadasterClient.connect(kadaster.nats_url, source)
            await send_at(hospitals[source], APPLIED, "round.apply", application_data(application))
        await send_at(vazg, AFTER_DEADLINE, "round.close", {"round_id": ROUND_2024})
        await send_at(vazg, DECIDED, "round.decide", {"round_id": ROUND_2024})
    finally:
        for client in (vazg, *hospitals.values()):
            await client.close()
    person(kadaster, guard, "vera", "vazg", "operator")
    await sign_in(browser, "vera")
    listed = await browser.get("/app/rounds")
    assert f'href="/app/rounds/{ROUND_2024}"' in listed.text
    shown = await browser.get(f"/app/rounds/{ROUND_2024}")
    assert shown.status_code == 200
    assert 'id="verification" class="done"' in shown.text
    decisions = re.search(r'<table id="decisions">.*?</table>', shown.text, re.S)
    assert decisions and decisions[0].count("<tr>") == len(applications_2024()) + 1
    assert "lower_activity_in_province" in decisions[0] or "not_in_top_share" in decisions[0]
    applied = re.search(r'<table id="applications">.*?</table>', shown.text, re.S)
    assert applied and applied[0].count("<tr>") == len(applications_2024()) + 1
    # In French, the round's tables have no English heading left (the decisions' sentences are data).
    french = await browser.get(f"/app/rounds/{ROUND_2024}", headers={"Accept-Language": "fr"})
    texts = [html.unescape(text) for text in re.findall(r">([^<]+)<", french.text)]
    assert untranslated(texts, english_patterns("fr")) == []
    assert "Activité justifiée par appareil" in texts


async def test_a_requester_cancels_a_free_mid_id_and_a_reporter_decommissions_a_device(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient, h001: KadasterClient
) -> None:
    linked = (await h001.send("midid.issue", {"modality": "PET-CT"}))["result"]["mid_id"]
    report = {
        "mid_id": linked,
        "modality": "PET-CT",
        "manufacturer": "Siemens",
        "model": "Biograph",
        "serial_number": "B-1",
        "campus": "Campus A",
        "installed_on": "2020-05-01",
        "use": "clinical",
    }
    assert (await h001.send("device.report", report))["status"] == "accepted"
    person(kadaster, guard, "rita", "hospital/H001", "requester", "reporter")
    await sign_in(browser, "rita")
    start = await browser.get("/")
    issued = await browser.post("/midid", data={**form_fields(start.text, "/midid"), "modality": "CT"})
    free = re.search(r'id="new-mid-id">([^<]+)<', issued.text)
    assert free
    row = re.search(rf'<tr data-mid-id="{free[1]}">.*?</tr>', issued.text, re.S)
    assert row
    fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', row[0]))
    cancelled = await browser.post("/app/midid/cancel", data={**fields, "reason": "ordered twice"})
    assert cancelled.status_code == 200 and f"<strong>{free[1]}</strong>" in cancelled.text
    shown = re.search(rf'<tr data-mid-id="{free[1]}">.*?</tr>', cancelled.text, re.S)
    assert shown and '<td class="status">cancelled</td>' in shown[0]
    # The device carrying the other MID-ID leaves service.
    device = await browser.get(f"/app/devices/{linked}")
    action = f"/app/devices/{linked}/decommission"
    data = {**form_fields(device.text, action), "effective_on": "2025-06-30", "reason": "replaced"}
    done = await browser.post(action, data=data)
    assert done.status_code == 303
    after = await browser.get(done.headers["location"])
    assert '<strong id="device-status">decommissioned</strong>' in after.text
    assert "The decommissioning was recorded." in after.text
    assert 'id="change-form"' not in after.text
