"""In a real browser: a MID-ID requested, its device reported, linked by the FOD and changed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect

from tests.web.conftest import MID_ID, Site, open_page, sign_in


async def test_a_mid_id_goes_from_request_to_report_to_link_to_change_and_no_other_hospital_sees_it(
    site: Site, chromium: Browser, artefacts: Path
) -> None:
    site.person("rita", "hospital/H001", "requester", "reporter")
    site.person("fons", "fod", "operator")
    site.person("olga", "hospital/H002", "requester", "reporter", "viewer")

    # Rita signs in and requests an MRI MID-ID: it is there at once, free.
    hospital = await open_page(chromium, site)
    await sign_in(hospital, "rita")
    await hospital.get_by_label("Modality").select_option("MRI")
    await hospital.get_by_role("button", name="Request a MID-ID").click()
    new = hospital.locator("#new-mid-id")
    await expect(new).to_have_text(MID_ID)
    mid_id = await new.inner_text()
    row = hospital.locator(f'#midids tr[data-mid-id="{mid_id}"]')
    await expect(row.locator(".status")).to_have_text("free")
    await expect(row).to_contain_text("MRI")
    await hospital.screenshot(path=artefacts / "hospital-mid-ids.png", full_page=True)

    # She reports the device carrying it.
    await row.get_by_role("link", name="Report a device").click()
    await expect(hospital.get_by_label("MID-ID")).to_have_value(mid_id)
    await hospital.get_by_label("Manufacturer").fill("Siemens Healthineers")
    await hospital.get_by_label("Model").fill("Magnetom Vida")
    await hospital.get_by_label("Serial number").fill("SN-4711")
    await hospital.get_by_label("Campus").fill("Campus Zuid")
    await hospital.get_by_label("Installed on").fill("2024-03-01")
    await hospital.get_by_role("button", name="Report the device").click()
    await expect(hospital.locator("#device-status")).to_have_text("reported")
    await expect(hospital.locator("#provenance")).to_contain_text("hospital/H001 · rita")
    await hospital.screenshot(path=artefacts / "hospital-device.png", full_page=True)

    # The FOD's operator finds it on the work list and links it from there.
    fod = await open_page(chromium, site)
    await sign_in(fod, "fons")
    await fod.goto("/app/worklist")
    listed = fod.locator(f'#worklist tr[data-mid-id="{mid_id}"]')
    await expect(listed).to_contain_text("Magnetom Vida")
    await fod.screenshot(path=artefacts / "fod-work-list.png", full_page=True)
    await listed.get_by_role("button", name=f"Link {mid_id}").click()
    await expect(fod.get_by_role("status")).to_contain_text(mid_id)
    await expect(fod.locator(f'#worklist tr[data-mid-id="{mid_id}"]')).to_have_count(0)
    await fod.goto("/app/capacity?modality=MRI")
    await expect(fod.locator("svg[role=img]")).to_be_visible()
    await fod.screenshot(path=artefacts / "fod-capacity.png", full_page=True)

    # The hospital sees it linked.
    await hospital.goto("/")
    await expect(hospital.locator(f'#midids tr[data-mid-id="{mid_id}"] .status')).to_have_text("linked")

    # A change of campus: the form is filled from the register, only the changed field is sent.
    await hospital.goto(f"/app/devices/{mid_id}")
    await expect(hospital.locator("#change-campus")).to_have_value("Campus Zuid")
    await expect(hospital.locator("#change-model")).to_have_value("Magnetom Vida")
    await hospital.locator("#change-campus").fill("Campus Noord")
    await hospital.get_by_label("Effective on").first.fill("2025-01-15")
    await hospital.get_by_role("button", name="Report the change").click()
    await expect(hospital.get_by_role("status").first).to_have_text("The change was recorded.")
    sent = site.recorded_command("hospital/H001", "device.change")
    assert sent["data"] == {
        "mid_id": mid_id,
        "changes": {"campus": "Campus Noord"},
        "effective_on": "2025-01-15",
    }
    assert sent["person"] == "rita"
    await expect(hospital.locator("#provenance")).to_contain_text("Campus Noord")

    # Olga of H002 sees none of it: not in her list, not by its address, not over the API.
    other = await open_page(chromium, site)
    await sign_in(other, "olga")
    await expect(other.locator("h1")).to_contain_text("H002")
    assert mid_id not in await other.content()
    shown = await other.goto(f"/app/devices/{mid_id}")
    assert shown is not None and shown.status == 400
    assert "Magnetom" not in await other.content() and "Campus" not in await other.inner_text("main")
    api = await other.request.get("/hospitals/H001/midids")
    assert api.status == 403
    for page in (hospital, fod, other):
        await page.context.close()


async def test_a_double_submit_of_the_request_form_issues_one_mid_id(
    site: Site, chromium: Browser, artefacts: Path
) -> None:
    site.person("rita", "hospital/H001", "requester")
    page = await open_page(chromium, site)
    await sign_in(page, "rita")
    form = page.locator('form[action="/midid"]')
    fields = {
        "csrf": await form.locator('input[name="csrf"]').input_value(),
        "envelope": await form.locator('input[name="envelope"]').input_value(),
        "modality": "CT",
    }
    # What a double click sends: the same form twice, at once, then once more.
    first, second = await asyncio.gather(
        page.request.post("/midid", form=fields), page.request.post("/midid", form=fields)
    )
    third = await page.request.post("/midid", form=fields)
    issued = {MID_ID.search(await answer.text())[0] for answer in (first, second, third)}  # type: ignore[index]
    assert len(issued) == 1
    await page.goto("/")
    assert await page.locator("#midids tbody tr").count() == 1
    # A new form is a new request.
    await page.get_by_role("button", name="Request a MID-ID").click()
    await expect(page.locator("#new-mid-id")).not_to_have_text(issued.pop())
    assert await page.locator("#midids tbody tr").count() == 2
    await page.context.close()


async def test_a_wrong_password_and_a_revoked_person_are_refused(
    site: Site, chromium: Browser, artefacts: Path
) -> None:
    site.person("rita", "hospital/H001", "requester")
    site.person("bert", "hospital/H001", "requester")
    page = await open_page(chromium, site)
    await sign_in(page, "rita", "not-her-password")
    await expect(page.get_by_role("alert")).to_have_text("The user name or password is not right.")
    assert page.url.endswith("/signin")
    await page.screenshot(path=artefacts / "signin-refused.png")
    # Bert is signed in when his role is revoked: his next request is refused at receipt.
    bert = await open_page(chromium, site)
    await sign_in(bert, "bert")
    await expect(bert.get_by_role("button", name="Request a MID-ID")).to_be_visible()
    site.revoke("bert", "hospital/H001", "requester")
    await bert.get_by_role("button", name="Request a MID-ID").click()
    await expect(bert.get_by_role("alert")).to_contain_text("forbidden")
    assert await bert.locator("#new-mid-id").count() == 0
    # And he cannot sign in again.
    await bert.context.clear_cookies()
    await sign_in(bert, "bert")
    await expect(bert.get_by_role("alert")).to_contain_text("You hold no role in the register")
    async with httpx.AsyncClient(base_url=site.url) as client:
        assert (await client.get("/hospitals/H001/midids")).status_code == 401
    for each in (page, bert):
        await each.context.close()
    assert re.search(r"\bkadaster_session=", "") is None
