"""A real kadaster serving the web application on a free port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from adapters.bootstrap import ROLES, Running, started
from adapters.cli.access import record_access
from adapters.credentials import Credentials
from adapters.nats.server import NatsServer, free_port
from domain.command_record import command_record_id
from tests.integration.conftest import nats_server, service_settings

__all__ = ["nats_server"]

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(os.environ.get("KADASTER_WEB_ARTEFACTS", ROOT / "artefacts" / "web"))
"""Screenshots of the pages the browser tests saw (git-ignored)."""
CHROMIUM = os.environ.get("KADASTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "s3cret-pw!"
WAIT_MS = 20_000
"""How long an expectation or an action may wait: a loaded CI machine is slower than a desk."""
expect.set_options(timeout=WAIT_MS)
MID_ID = re.compile(r"MID-\d{7}-\d{2}")


@dataclass
class Site:
    """The kadaster behind the browser: its URL, its register, and its people."""

    url: str
    running: Running
    credentials: Credentials

    def person(self, login: str, party: str, *roles: str, password: str = PASSWORD) -> None:
        """What `kadaster people add` does: the account, and each role granted through the pipeline."""
        for role in roles:
            data = {"person": login, "name": login.title(), "party": party, "role": role}
            outcome = record_access(self.running.register, "access.grant", data)
            assert outcome["status"] == "accepted", outcome
        if self.credentials.account(login) is None:
            self.credentials.add_account(login, login.title(), party, password)

    def revoke(self, login: str, party: str, role: str) -> None:
        data = {"person": login, "party": party, "role": role, "reason": "left the hospital"}
        assert record_access(self.running.register, "access.revoke", data)["status"] == "accepted"

    def recorded_command(self, sender: str, type_: str) -> dict[str, Any]:
        """The newest command of that type from that sender, as the register recorded it on arrival."""
        assert self.running.queries is not None
        log = self.running.queries.run("commands", {"source": sender, "limit": "1000"})
        ids = [item["command_id"] for item in log["items"] if item["type"] == type_]
        assert ids, f"no {type_} from {sender}"
        key = command_record_id(sender, ids[-1])
        record = self.running.register.created([key])[key]
        body: dict[str, Any] = json.loads(record.body)
        return {**body, "person": record.person}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The browser tests run on a SQLite file; the pipeline below them is tested on both stores."""
    return f"sqlite:///{tmp_path / 'kadaster.db'}"


@pytest.fixture
async def site(nats_server: NatsServer, database_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    port = free_port()
    settings = service_settings(nats_server.url, database_url, tmp_path / "data").model_copy(
        update={"http_port": port, "http_host": "127.0.0.1"}
    )
    stop = asyncio.Event()
    async with started(settings, ROLES, stop) as running:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        credentials = Credentials(settings.credentials_database_url)
        try:
            yield Site(url, running, credentials)
        finally:
            credentials.close()
            stop.set()


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Iterator[Path]:
    folder = ARTEFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, site: Site, locale: str = "en-GB") -> Page:
    context = await browser.new_context(base_url=site.url, locale=locale)
    context.set_default_timeout(WAIT_MS)
    return await context.new_page()


async def sign_in(page: Page, login: str, password: str = PASSWORD) -> None:
    await page.goto("/signin")
    await page.get_by_label("User name").fill(login)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()
