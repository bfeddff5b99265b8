"""MID-ID issuance latency over NATS request-reply, against a naive micro endpoint in the same run."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.micro import add_service
from nats.micro.request import Request

from adapters.bootstrap import freeze_startup_heap, started
from adapters.config import load_settings
from adapters.nats.client import KadasterClient, KadasterError
from bench.common import Figure, at_most, database, nats_server, summary, value_at_most
from bench.ingest import NaiveRecord
from services.register import Register, event_store_env

Call = Callable[[int], Awaitable[None]]

RATE_TIMEOUT = 10.0
"""How long a request at the fixed rate may wait: a peer that cannot keep up is not waited for
minutes; its unanswered requests count as this long, so its percentiles are lower bounds."""


@dataclass
class Samples:
    """Latencies in milliseconds, and how many requests went unanswered in time."""

    latencies: list[float] = field(default_factory=list)
    timed_out: int = 0


async def sequential(call: Call, count: int) -> Samples:
    samples = Samples()
    for i in range(count):
        began = time.perf_counter()
        await call(i)
        samples.latencies.append((time.perf_counter() - began) * 1000)
    return samples


async def fixed_rate(call: Call, rate: int, seconds: float, offset: int) -> Samples:
    samples = Samples()

    async def one(i: int) -> None:
        began = time.perf_counter()
        try:
            await call(offset + i)
        except (nats.errors.TimeoutError, KadasterError):
            samples.timed_out += 1
        samples.latencies.append((time.perf_counter() - began) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return samples


class NaivePeer:
    """A bare micro endpoint: parse the request, one eventsourcing save, reply."""

    def __init__(self, register: Register) -> None:
        self.register = register
        self.in_flight: set[asyncio.Task[None]] = set()
        # Its own threads, as many as asyncio's default pool would give it, so `stop` can wait for them.
        self.executor = ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4))

    async def start(self, nc: NATS) -> None:
        loop = asyncio.get_running_loop()
        service = await add_service(nc, name="naive", version="1.0.0")

        async def handle(request: Request) -> None:
            document = json.loads(request.data)
            record = NaiveRecord(body=json.dumps(document))
            await loop.run_in_executor(self.executor, self.register.save, record)
            await request.respond(json.dumps({"status": "accepted", "id": str(record.id)}).encode())

        async def spawn(request: Request) -> None:
            # Each request on its own task, as a naive endpoint would; kept referenced until done.
            task = asyncio.create_task(handle(request))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

        await service.add_endpoint(name="issue", subject="bench.naive.issue", handler=spawn)

    async def stop(self) -> None:
        """Drops the backlog a peer that could not keep up still holds, so it burns no CPU later."""
        for task in list(self.in_flight):
            task.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)
        # Saves already running finish before the store is closed and its schema dropped.
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.executor.shutdown(wait=True, cancel_futures=True)
        )


async def measure(
    kind: str, sequential_count: int, rate: int, seconds: float, peer_seconds: float | None = None
) -> list[Figure]:
    """`peer_seconds`: how long the naive peer is held at the rate (default `seconds`); its p99 is
    settled long before a minute, and the whole run must stay within ten minutes."""
    peer_seconds = seconds if peer_seconds is None else min(seconds, peer_seconds)
    # As `kadaster serve` and every role do at start (the naive peer in this process gains as much).
    freeze_startup_heap()
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

                async def ours_at_rate(i: int) -> None:
                    await client.issue_mid_id("CT", command_id=f"rpc-{i}", timeout=RATE_TIMEOUT, attempts=1)

                ours_seq = await sequential(ours, sequential_count)
                ours_rate = await fixed_rate(ours_at_rate, rate, seconds, 10**6)
                await client.close()
        with database(kind) as url:
            nc = await nats.connect(server.url)
            peer = NaivePeer(Register(env=event_store_env(url)))
            await peer.start(nc)

            def naive_call(timeout: float) -> Call:
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
                    await nc.request("bench.naive.issue", body, timeout=timeout)

                return naive

            naive_seq = await sequential(naive_call(30), sequential_count)
            naive_rate = await fixed_rate(naive_call(RATE_TIMEOUT), rate, peer_seconds, 10**6)
            await peer.stop()
            await nc.close()
            peer.register.close()
    figures = []
    for label, ours_samples, naive_samples in (
        ("one at a time", ours_seq, naive_seq),
        (f"{rate}/s for {seconds:g}s", ours_rate, naive_rate),
    ):
        ours_stats, naive_stats = summary(ours_samples.latencies), summary(naive_samples.latencies)
        notes = [
            f"{who}: {s.timed_out} of {len(s.latencies)} unanswered in {RATE_TIMEOUT:g} s "
            "(counted as that long)"
            for who, s in (("kadaster", ours_samples), ("naive", naive_samples))
            if s.timed_out
        ]
        if ours_samples is ours_rate and peer_seconds < seconds:
            notes.insert(0, f"naive peer at the same rate for {peer_seconds:g}s")
        for p in ("p50", "p99", "p99.9"):
            figures.append(
                Figure(
                    f"MID-ID RPC {kind} {label} {p}",
                    "ms",
                    ours_stats[p],
                    naive_stats[p],
                    "bare micro endpoint, one save per request",
                    (value_at_most(10.0), at_most(2.0)) if p == "p99" else (),
                    higher_is_better=False,
                    note="; ".join(notes),
                    extra={"samples": len(ours_samples.latencies)},
                )
            )
    return figures
