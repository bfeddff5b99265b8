"""Queries on a large register: the kadaster view's common questions over NATS and HTTP.

The running `api` role answers them; the baseline is the same question put to the same `Queries`
in-process, without a transport, so the ratio is what NATS or HTTP adds.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.bootstrap import all_projections, started
from adapters.credentials import Credentials
from adapters.nats.client import KadasterClient
from bench.common import Figure, api_settings, nats_server, summary, value_at_most
from bench.fill import MODALITIES, PROVINCES, Shape, fill, institution
from projections.projector import Projector
from projections.queries import Queries
from projections.store import ReadModelStore
from services.register import Register, event_store_env

HOSPITALS_ASKING = 8
"""Hospitals whose own questions are asked (each over a client of its own)."""


@dataclass(frozen=True)
class Question:
    """One query as every transport puts it: NATS name and filters, HTTP path and parameters."""

    query: str
    filters: dict[str, Any]
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    hospital: str | None = None


Asking = Callable[[int], Question]


def common_questions(shape: Shape, mid_ids: list[str]) -> dict[str, Asking]:
    """What the kadaster view is asked most, each sample about another institution, province or device."""

    def by_institution(i: int) -> Question:
        filters = {"institution": institution(i % shape.institutions), "limit": 50, "offset": 50 * (i % 4)}
        return Question("devices", filters, "/devices", filters)

    def by_modality(i: int) -> Question:
        filters = {"modality": MODALITIES[i % len(MODALITIES)], "sort": "-installed_on", "limit": 50}
        return Question("devices", filters, "/devices", filters)

    def by_province(i: int) -> Question:
        filters = {
            "province": PROVINCES[i % len(PROVINCES)][0],
            "sort": "installed_on",
            "limit": 100,
            "offset": 100 * (i % 10),
        }
        return Question("devices", filters, "/devices", filters)

    def by_province_and_modality(i: int) -> Question:
        filters = {
            "province": PROVINCES[i % len(PROVINCES)][0],
            "modality": MODALITIES[(i // len(PROVINCES)) % len(MODALITIES)],
            "limit": 50,
        }
        return Question("devices", filters, "/devices", filters)

    def device(i: int) -> Question:
        mid_id = mid_ids[i % len(mid_ids)]
        return Question("device", {"mid_id": mid_id}, f"/devices/{mid_id}")

    def hospital_mid_ids(i: int) -> Question:
        hospital = institution(i % HOSPITALS_ASKING)
        return Question("midids", {"limit": 100}, f"/hospitals/{hospital}/midids", {"limit": 100}, hospital)

    return {
        "devices of an institution, paged": by_institution,
        "devices of a modality, newest first": by_modality,
        "devices of a province, oldest first, paged": by_province,
        "devices of a province and modality": by_province_and_modality,
        "device by MID-ID": device,
        "a hospital's MID-IDs": hospital_mid_ids,
    }


def sample_mid_ids(read_model_url: str, count: int = 2000) -> list[str]:
    store = ReadModelStore(read_model_url)
    try:
        with store.reading() as tx:
            rows = tx.execute("SELECT mid_id FROM rm_devices ORDER BY mid_id").all()
    finally:
        store.close()
    chosen = [row["mid_id"] for row in rows]
    random.Random(9).shuffle(chosen)
    return chosen[:count]


def build(directory: Path, shape: Shape) -> tuple[str, str]:
    """A register of `shape` in SQLite files, its read models caught up; the two URLs."""
    events_url = f"sqlite:///{directory / 'kadaster.db'}"
    read_model_url = f"sqlite:///{directory / 'kadaster.readmodels.db'}"
    register = Register(env=event_store_env(events_url))
    store = ReadModelStore(read_model_url)
    try:
        fill(register, shape)
        projector = Projector(register, store, all_projections())
        projector.catch_up(batch_size=2000)
        projector.refresh_statistics(fresh=True)
    finally:
        store.close()
        register.close()
    return events_url, read_model_url


async def timed(samples: int, ask: Callable[[int], Awaitable[object]]) -> list[float]:
    """Latencies in milliseconds of `samples` questions one at a time, after a few unmeasured."""
    warm_up = max(5, samples // 10)
    for i in range(warm_up):
        await ask(i)
    latencies = []
    for i in range(warm_up, warm_up + samples):
        began = time.perf_counter()
        await ask(i)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies


async def measure(
    shape: Shape,
    samples: int,
    events_url: str | None = None,
    read_model_url: str | None = None,
) -> list[Figure]:
    """p50/p99 of each common question over NATS and HTTP; builds the register unless given one."""
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-queries-") as scratch:
        directory = Path(scratch)
        if events_url is None or read_model_url is None:
            built = await asyncio.get_running_loop().run_in_executor(None, build, directory, shape)
            events_url, read_model_url = built
        questions = common_questions(shape, sample_mid_ids(read_model_url))
        with nats_server() as server:
            # One asker, one question at a time: the quota is not what is measured here.
            settings = api_settings(
                server.url, events_url, read_model_url, directory, http_queries_per_second=1e6
            )
            credentials = Credentials(settings.credentials_database_url)
            _, token = credentials.issue_token("fod", "benchmark", None)
            credentials.close()
            async with started(settings, ["api"], asyncio.Event()) as running:
                assert running.queries is not None
                results = await ask_everything(
                    running.nats_url, settings.http_port, running.queries, questions, samples, token
                )
    figures = []
    for transport in ("NATS", "HTTP"):
        for name in questions:
            ours, bare = summary(results[(transport, name)]), summary(results[("in-process", name)])
            figures.append(
                Figure(
                    f"query {name} over {transport} p99",
                    "ms",
                    ours["p99"],
                    bare["p99"],
                    "the same query in-process",
                    (value_at_most(10.0),),
                    higher_is_better=False,
                    note=f"p50 {ours['p50']:.2f} ms (in-process {bare['p50']:.2f} ms)",
                    extra={"p50": round(ours["p50"], 3), "baseline_p50": round(bare["p50"], 3)},
                )
            )
    figures[0].note += f"; {shape.devices:,} devices of {shape.institutions} institutions"
    return figures


async def ask_everything(
    nats_url: str,
    http_port: int,
    queries: Queries,
    questions: dict[str, Asking],
    samples: int,
    token: str,
) -> dict[tuple[str, str], list[float]]:
    """Every question over NATS, over HTTP and in-process, one at a time."""
    operator = await KadasterClient.connect(nats_url, "fod")
    hospitals = {
        institution(i): await KadasterClient.connect(nats_url, f"hospital/{institution(i)}")
        for i in range(HOSPITALS_ASKING)
    }
    loop = asyncio.get_running_loop()
    results: dict[tuple[str, str], list[float]] = {}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            await _wait_for_http(http)
            for name, asking in questions.items():

                async def over_nats(i: int, asking: Asking = asking) -> object:
                    question = asking(i)
                    client = hospitals[question.hospital] if question.hospital else operator
                    return await client.query(question.query, question.filters)

                async def over_http(i: int, asking: Asking = asking) -> object:
                    question = asking(i)
                    response = await http.get(question.path, params=question.params)
                    response.raise_for_status()
                    return response.content

                async def in_process(i: int, asking: Asking = asking) -> object:
                    question = asking(i)
                    return await loop.run_in_executor(
                        None, queries.run, question.query, question.filters, question.hospital
                    )

                results[("NATS", name)] = await timed(samples, over_nats)
                results[("HTTP", name)] = await timed(samples, over_http)
                results[("in-process", name)] = await timed(samples, in_process)
    finally:
        for client in (operator, *hospitals.values()):
            await client.close()
    return results


async def _wait_for_http(http: httpx.AsyncClient, patience: float = 20.0) -> None:
    deadline = time.monotonic() + patience
    while True:
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)
