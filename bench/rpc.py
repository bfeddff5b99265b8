"""MID-ID issuance latency over NATS request-reply, against a naive micro endpoint in the same run."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NATS
from nats.micro import add_service
from nats.micro.request import Request

from adapters.client import KadasterClient
from adapters.config import load_settings
from adapters.runtime import started
from bench.common import Figure, database, nats_server, summary
from bench.ingest import NaiveRecord
from services.register import Register, event_store_env

Call = Callable[[int], Awaitable[None]]


async def sequential(call: Call, count: int) -> list[float]:
    samples = []
    for i in range(count):
        began = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def fixed_rate(call: Call, rate: int, seconds: float, offset: int) -> list[float]:
    samples: list[float] = []

    async def one(i: int) -> None:
        began = time.perf_counter()
        await call(offset + i)
        samples.append((time.perf_counter() - began) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return samples


async def naive_peer(nc: NATS, url: str) -> Register:
    """A bare micro endpoint: parse the request, one eventsourcing save, reply."""
    register = Register(env=event_store_env(url))
    loop = asyncio.get_running_loop()
    service = await add_service(nc, name="naive", version="1.0.0")

    async def handle(request: Request) -> None:
        document = json.loads(request.data)
        record = NaiveRecord(body=json.dumps(document))
        await loop.run_in_executor(None, register.save, record)
        await request.respond(json.dumps({"status": "accepted", "id": str(record.id)}).encode())

    in_flight: set[asyncio.Task[None]] = set()

    async def spawn(request: Request) -> None:
        # Each request on its own task, as a naive endpoint would; kept referenced until done.
        task = asyncio.create_task(handle(request))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    await service.add_endpoint(name="issue", subject="bench.naive.issue", handler=spawn)
    return register


async def measure(kind: str, sequential_count: int, rate: int, seconds: float) -> list[Figure]:
    figures = []
    with nats_server() as server, tempfile.TemporaryDirectory() as data_dir:
        with database(kind) as url:
            settings = load_settings(
                environ={},
                nats_url=server.url,
                database_url=url,
                data_dir=data_dir,
                http_port=0,
                log_level="error",
                log_format="json",
                stream_replicas=1,
            )
            async with started(settings, ["rpc"], asyncio.Event()) as running:
                client = await KadasterClient.connect(running.nats_url, "hospital/H001")

                async def ours(i: int) -> None:
                    await client.issue_mid_id("CT", command_id=f"rpc-{i}", timeout=30, attempts=1)

                ours_seq = await sequential(ours, sequential_count)
                ours_rate = await fixed_rate(ours, rate, seconds, 10**6)
                await client.close()
        with database(kind) as url:
            nc = await nats.connect(server.url)
            register = await naive_peer(nc, url)

            async def naive(i: int) -> None:
                body = json.dumps(
                    {
                        "specversion": "1.0",
                        "id": f"n{i}",
                        "type": "midid.issue",
                        "source": "hospital/H001",
                        "data": {"modality": "CT"},
                    }
                ).encode()
                await nc.request("bench.naive.issue", body, timeout=30)

            naive_seq = await sequential(naive, sequential_count)
            naive_rate = await fixed_rate(naive, rate, seconds, 10**6)
            await nc.close()
            register.close()
    for label, ours_samples, naive_samples in (
        ("one at a time", ours_seq, naive_seq),
        (f"{rate}/s for {seconds:g}s", ours_rate, naive_rate),
    ):
        ours_stats, naive_stats = summary(ours_samples), summary(naive_samples)
        for p in ("p50", "p99", "p99.9"):
            figures.append(
                Figure(
                    f"MID-ID RPC {kind} {label} {p}",
                    "ms",
                    ours_stats[p],
                    naive_stats[p],
                    "bare micro endpoint, one save per request",
                    "<= 1 x (lower is better)",
                    higher_is_better=False,
                )
            )
    return figures
