"""The web application's pages on a large register: the national view, a hospital's start page, capacity.

Each page is asked by a signed-in person over HTTP, one at a time; the figure is the server's own time
for the page (its `Server-Timing` header), the round trip on this machine is noted beside it.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from adapters.bootstrap import freeze_startup_heap, started
from adapters.cli.access import record_access
from adapters.credentials import Credentials
from bench.common import Figure, api_settings, nats_server, summary, value_at_most
from bench.fill import MODALITIES, PROVINCES, Shape, institution
from bench.queries import _wait_for_http, build, timed
from services.register import Register, event_store_env

PASSWORD = "bench-password"
TARGET_MS = 150.0
Page = Callable[[int], str]


def pages(shape: Shape) -> dict[str, tuple[str, Page]]:
    """Which person asks which page: (login, path of the i-th sample)."""

    def national(i: int) -> str:
        if i % 2:
            return f"/app/kadaster?page={1 + i % 20}"
        province = PROVINCES[i % len(PROVINCES)][0]
        return f"/app/kadaster?province={province}&modality={MODALITIES[i % len(MODALITIES)]}"

    return {
        "the national kadaster view": ("bench-fod", national),
        "a hospital's start page": ("bench-hospital", lambda i: "/"),
        "the capacity chart": (
            "bench-fod",
            lambda i: f"/app/capacity?modality={MODALITIES[i % len(MODALITIES)]}",
        ),
    }


def people(events_url: str, credentials_url: str) -> None:
    register = Register(env=event_store_env(events_url))
    credentials = Credentials(credentials_url)
    try:
        for login, party, role in (
            ("bench-fod", "fod", "operator"),
            ("bench-hospital", f"hospital/{institution(0)}", "local-admin"),
            ("bench-hospital", f"hospital/{institution(0)}", "requester"),
        ):
            data = {"person": login, "name": login, "party": party, "role": role}
            assert record_access(register, "access.grant", data)["status"] == "accepted"
            if credentials.account(login) is None:
                credentials.add_account(login, login, party, PASSWORD)
    finally:
        credentials.close()
        register.close()


async def sign_in(http: httpx.AsyncClient, login: str) -> None:
    form = await http.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    signed = await http.post("/signin", data={"login": login, "password": PASSWORD, "csrf": csrf[1]})
    assert signed.status_code == 303, signed.text


async def measure(
    shape: Shape, samples: int, events_url: str | None = None, read_model_url: str | None = None
) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-pages-") as scratch:
        directory = Path(scratch)
        loop = asyncio.get_running_loop()
        if events_url is None or read_model_url is None:
            events_url, read_model_url = await loop.run_in_executor(None, build, directory, shape)
        with nats_server() as server:
            settings = api_settings(
                server.url, events_url, read_model_url, directory, http_queries_per_second=1e6
            )
            await loop.run_in_executor(None, people, events_url, settings.credentials_database_url)
            server_ms: dict[str, list[float]] = {}
            round_trip: dict[str, list[float]] = {}
            async with started(settings, ["api", "projector"], asyncio.Event()) as running:
                assert running.queries is not None
                # As `kadaster serve` does before its roles start: what start-up (here: the generated
                # register) left behind is kept out of the full collections that would pause a page.
                freeze_startup_heap()
                base = f"http://127.0.0.1:{settings.http_port}"
                clients: dict[str, httpx.AsyncClient] = {}
                try:
                    for name, (login, path_of) in pages(shape).items():
                        if login not in clients:
                            clients[login] = httpx.AsyncClient(base_url=base, timeout=60)
                            await _wait_for_http(clients[login])
                            await sign_in(clients[login], login)
                        http = clients[login]
                        timings: list[float] = []

                        async def ask(
                            i: int,
                            http: httpx.AsyncClient = http,
                            path_of: Page = path_of,
                            timings: list[float] = timings,
                        ) -> object:
                            response = await http.get(path_of(i))
                            assert response.status_code == 200, (response.status_code, response.text[:300])
                            timings.append(float(response.headers["server-timing"].partition("dur=")[2]))
                            return response

                        round_trip[name] = await timed(samples, ask)
                        server_ms[name] = timings[-samples:]
                finally:
                    for client in clients.values():
                        await client.aclose()
    figures = []
    for name in server_ms:
        ours, trip = summary(server_ms[name]), summary(round_trip[name])
        figures.append(
            Figure(
                f"page {name} server time p99",
                "ms",
                ours["p99"],
                goals=(value_at_most(TARGET_MS),),
                higher_is_better=False,
                note=f"p50 {ours['p50']:.1f} ms; round trip p99 {trip['p99']:.1f} ms",
                extra={"p50": round(ours["p50"], 3), "round_trip_p99": round(trip["p99"], 3)},
            )
        )
    figures[0].note += f"; {shape.devices:,} devices of {shape.institutions} institutions"
    return figures
