"""Signing in to the web application: local accounts, sessions, CSRF, throttling, and a person's commands."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.bootstrap import Running
from adapters.cli.access import record_access
from adapters.http.auth import SESSION_COOKIE, Guard
from adapters.http.web import SIGNIN_COOKIE, SignInThrottle
from tests.integration.conftest import asgi_client, csrf_of, web_app


@pytest.fixture
def app(kadaster: Running, guard: Guard) -> FastAPI:
    settings = kadaster.settings.model_copy(update={"signin_attempts": 3, "signin_pause_seconds": 60})
    return web_app(kadaster, guard, settings)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def person(
    kadaster: Running, guard: Guard, login: str, party: str, role: str, password: str = "s3cret!"
) -> None:
    """What `kadaster people add` does: the account, and the role granted through the pipeline."""
    data = {"person": login, "name": login.title(), "party": party, "role": role}
    assert record_access(kadaster.register, "access.grant", data)["status"] == "accepted"
    guard.credentials.add_account(login, login.title(), party, password)


async def sign_in(browser: httpx.AsyncClient, login: str, password: str = "s3cret!") -> httpx.Response:
    form = await browser.get("/signin")
    return await browser.post(
        "/signin", data={"login": login, "password": password, "csrf": csrf_of(form.text)}
    )


async def test_the_sign_in_form_has_the_contracts_labels_and_sets_a_signed_httponly_samesite_session(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    person(kadaster, guard, "anna", "hospital/H001", "local-admin")
    form = await browser.get("/signin")
    for label in (">User name</label>", ">Password</label>", ">Sign in</button>"):
        assert label in form.text
    signed_in = await sign_in(browser, "anna")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = await browser.get("/")
    assert "anna" in home.text and "hospital/H001" in home.text
    # The session reads the hospital's own data over the API, and no other hospital's.
    assert (await browser.get("/hospitals/H001/midids")).status_code == 200
    assert (await browser.get("/hospitals/H002/midids")).status_code == 403
    # Sign-out ends it.
    signed_out = await browser.post("/signout", data={"csrf": csrf_of(home.text)})
    assert signed_out.status_code == 303
    assert (await browser.get("/hospitals/H001/midids")).status_code == 401


async def test_a_wrong_password_or_a_missing_csrf_token_signs_nobody_in(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    person(kadaster, guard, "anna", "hospital/H001", "local-admin")
    assert (await sign_in(browser, "anna", "wrong")).status_code == 401
    await browser.get("/signin")
    no_csrf = await browser.post("/signin", data={"login": "anna", "password": "s3cret!"})
    assert no_csrf.status_code == 403
    browser.cookies.delete(SIGNIN_COOKIE)
    forged = await browser.post("/signin", data={"login": "anna", "password": "s3cret!", "csrf": "guessed"})
    assert forged.status_code == 403
    assert SESSION_COOKIE not in browser.cookies


async def test_sign_in_is_throttled_per_account_after_repeated_failures(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    person(kadaster, guard, "anna", "hospital/H001", "local-admin")
    for _ in range(3):
        assert (await sign_in(browser, "anna", "guess")).status_code == 401
    throttled = await sign_in(browser, "anna")  # even the right password waits now
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0


def test_the_throttle_counts_per_address_too_and_forgets_after_the_pause() -> None:
    throttle = SignInThrottle(attempts=3, pause=60)
    for login in ("a", "b", "c"):
        throttle.failed([f"login:{login}", "address:10.0.0.9"], now=100)
    assert throttle.wait(["login:d", "address:10.0.0.9"], now=101) > 0
    assert throttle.wait(["login:d", "address:10.0.0.8"], now=101) == 0
    assert throttle.wait(["login:d", "address:10.0.0.9"], now=161) == 0


def test_a_session_ends_when_idle_and_after_its_absolute_timeout(guard: Guard) -> None:
    sessions = guard.sessions
    session = sessions.new("anna", "hospital/H001")
    cookie = sessions.encode(session)
    assert sessions.decode(cookie, now=session["began"] + 60) is not None
    assert sessions.decode(cookie, now=session["began"] + sessions.idle_seconds + 1) is None
    lively = sessions.encode({**session, "seen": session["began"] + sessions.absolute_seconds})
    assert sessions.decode(lively, now=session["began"] + sessions.absolute_seconds + 1) is None
    assert sessions.decode(cookie[:-2] + "xx", now=session["began"] + 1) is None


async def test_a_requester_signed_in_requests_a_mid_id_that_carries_them_until_revoked(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    # H001's local administrator grants Bert the requester role, through the HTTP API as herself.
    person(kadaster, guard, "anna", "hospital/H001", "local-admin")
    await sign_in(browser, "anna")
    home = await browser.get("/")
    grant = {"person": "bert", "name": "Bert", "party": "hospital/H001", "role": "requester"}
    headers = {"X-CSRF-Token": csrf_of(home.text)}
    granted = await browser.post("/commands/access.grant", json=grant, headers=headers)
    assert granted.status_code == 200 and granted.json()["person"] == "anna", granted.text
    for_h002 = await browser.post(
        "/commands/access.grant", json={**grant, "party": "hospital/H002"}, headers=headers
    )
    assert for_h002.status_code == 403
    guard.credentials.add_account("bert", "Bert", "hospital/H001", "b3rt-pw!")
    # Bert signs in and requests a MID-ID with the form.
    browser.cookies.clear()
    await sign_in(browser, "bert", "b3rt-pw!")
    home = await browser.get("/")
    assert ">Modality</label>" in home.text and ">Request a MID-ID</button>" in home.text
    requested = await browser.post("/midid", data={"modality": "CT", "csrf": csrf_of(home.text)})
    mid_id = re.search(r'id="new-mid-id">([^<]+)<', requested.text)
    assert mid_id, requested.text
    history = (await browser.get(f"/hospitals/H001/history/{mid_id[1]}")).json()
    said = [item for item in history["items"] if item["source"] == "hospital/H001"]
    assert said and {item["person"] for item in said} == {"bert"}
    # Anna revokes the role: Bert's next request is refused at receipt.
    revoke = {"person": "bert", "party": "hospital/H001", "role": "requester", "reason": "left"}
    assert record_access(kadaster.register, "access.revoke", revoke)["status"] == "accepted"
    refused = await browser.post("/midid", data={"modality": "CT", "csrf": csrf_of(home.text)})
    assert "forbidden" in refused.text and 'id="new-mid-id"' not in refused.text
    over_api = await browser.post(
        "/commands/midid.issue", json={"modality": "CT"}, headers={"X-CSRF-Token": csrf_of(home.text)}
    )
    assert over_api.status_code == 403 and over_api.json()["errors"][0]["code"] == "forbidden"


async def test_a_sessions_command_without_its_csrf_header_is_refused(
    kadaster: Running, guard: Guard, browser: httpx.AsyncClient
) -> None:
    person(kadaster, guard, "anna", "hospital/H001", "local-admin")
    await sign_in(browser, "anna")
    grant: dict[str, Any] = {"person": "bert", "name": "Bert", "party": "hospital/H001", "role": "viewer"}
    refused = await browser.post("/commands/access.grant", json=grant)
    assert refused.status_code == 403
