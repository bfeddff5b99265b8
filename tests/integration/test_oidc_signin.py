"""OpenID Connect sign-in (authorization code with PKCE) against a real provider process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI

from adapters.bootstrap import Running
from adapters.cli.access import record_access
from adapters.http.auth import SESSION_COOKIE, Guard
from adapters.nats.server import free_port
from tests.integration.conftest import asgi_client, wait_until_answering, web_app


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`oidc-provider-mock` as its own process on a free port."""
    port = free_port()
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("oidc-provider-mock")),
            "--port",
            str(port),
            "--require-nonce",
            "true",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{issuer}/.well-known/openid-configuration", process, 30, "the provider")
        yield issuer
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def app(kadaster: Running, guard: Guard, provider: str) -> FastAPI:
    settings = kadaster.settings.model_copy(
        update={"oidc_issuer": provider, "oidc_client_id": "kadaster", "oidc_client_secret": "not-so-secret"}
    )
    return web_app(kadaster, guard, settings)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


async def through_the_provider(browser: httpx.AsyncClient, subject: str) -> httpx.Response:
    """The browser's trip: to the provider, the person says who they are, back to the register."""
    assert "/auth/login" in (await browser.get("/signin")).text
    leaving = await browser.get("/auth/login")
    assert leaving.status_code == 303
    authorize = leaving.headers["location"]
    asked = parse_qs(urlparse(authorize).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"] and asked["nonce"]
    async with httpx.AsyncClient() as at_provider:
        answered = await at_provider.post(authorize, data={"sub": subject})
    assert answered.status_code == 302, answered.text
    back = answered.headers["location"]
    assert back.startswith("http://kadaster/auth/callback?")
    return await browser.get(back.removeprefix("http://kadaster"))


async def test_a_person_with_a_role_signs_in_through_the_provider_and_reads_their_hospital(
    kadaster: Running, browser: httpx.AsyncClient
) -> None:
    granted = record_access(
        kadaster.register,
        "access.grant",
        {"person": "carla@h002.example", "name": "Carla", "party": "hospital/H002", "role": "local-admin"},
    )
    assert granted["status"] == "accepted"
    arrived = await through_the_provider(browser, "carla@h002.example")
    assert arrived.status_code == 303, arrived.text
    assert SESSION_COOKIE in browser.cookies
    home = await browser.get("/")
    assert "carla@h002.example" in home.text and "hospital/H002" in home.text
    assert (await browser.get("/hospitals/H002/midids")).status_code == 200
    assert (await browser.get("/hospitals/H001/midids")).status_code == 403


async def test_a_person_without_any_role_is_not_signed_in(browser: httpx.AsyncClient) -> None:
    arrived = await through_the_provider(browser, "stranger@example.org")
    assert arrived.status_code == 403
    assert SESSION_COOKIE not in browser.cookies


async def test_a_forged_answer_from_the_provider_signs_nobody_in(browser: httpx.AsyncClient) -> None:
    await browser.get("/auth/login")
    forged = await browser.get("/auth/callback", params={"code": "made-up", "state": "made-up"})
    assert forged.status_code == 401
    assert SESSION_COOKIE not in browser.cookies
