"""Fair share: one party's flood of expensive queries is bounded and never refuses another party.

How fast the other party's questions stay beside such a flood is a benchmark's figure (`make bench`,
"ordinary query p99 while 8 parties ask fresh moments"), not a timed assertion here."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.bootstrap import Running
from adapters.fair_share import FairShare, RateLimited, TokenBuckets
from adapters.http.api import create_app, run_http
from adapters.http.auth import Guard
from adapters.nats.client import KadasterClient
from adapters.nats.server import free_port
from services.processor import CommandProcessor, Inbound
from tests.integration.conftest import bearer, make_guard

FLOODERS = 8
ORDINARY_QUERIES = 500


def issue_many(kadaster: Running, institution: str, count: int) -> None:
    """MID-IDs recorded through the command pipeline, so an as-of question has a register to read."""
    processor = CommandProcessor(kadaster.register)
    batch = []
    for i in range(count):
        envelope = {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": f"hospital/{institution}",
            "type": "midid.issue",
            "data": {"modality": "CT", "note": f"tender {i}"},
        }
        subject = f"kadaster.cmd.hospital.{institution}.midid.issue"
        batch.append(Inbound(json.dumps(envelope).encode(), subject))
    for start in range(0, count, 100):
        processor.process(batch[start : start + 100])


@pytest.fixture
def guard(kadaster: Running, tmp_path: Path) -> Iterator[Guard]:
    # The per-second query rate is raised so that the bound on expensive queries is what is tested.
    guard = make_guard(kadaster.register, tmp_path, queries_per_second=10_000, expensive_per_party=2)
    yield guard
    guard.credentials.close()


async def test_a_flood_of_as_of_queries_from_one_party_is_bounded_and_refuses_none_of_anothers(
    kadaster: Running, guard: Guard
) -> None:
    assert kadaster.queries is not None
    loop = asyncio.get_running_loop()
    began = datetime.now(UTC)
    await loop.run_in_executor(None, issue_many, kadaster, "H001", 600)
    await loop.run_in_executor(None, issue_many, kadaster, "H002", 50)
    ended = datetime.now(UTC)
    await asyncio.sleep(1.1)  # every moment asked about is now well in the past
    port, stop = free_port(), asyncio.Event()
    serving = asyncio.create_task(run_http(create_app(kadaster.queries, guard), "127.0.0.1", port, stop))
    flooder, asker = bearer(guard, "hospital/H001"), bearer(guard, "hospital/H002")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(100):
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            # A first as-of question answers; then H001 floods from a process of its own, as a
            # misbehaving client would.
            first = await http.get(
                "/hospitals/H001/midids", params={"as_of": ended.isoformat()}, headers=flooder
            )
            assert first.status_code == 200 and first.json()["items"]
            flood = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tests.integration.flood", f"http://127.0.0.1:{port}"),
                    *(flooder["Authorization"].removeprefix("Bearer "), began.isoformat(), ended.isoformat()),
                    str(FLOODERS),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert flood.stdout is not None and flood.stdin is not None
            await loop.run_in_executor(None, flood.stdout.readline)
            await asyncio.sleep(1.0)  # the flood is under way
            took = []
            for _ in range(ORDINARY_QUERIES):
                start = time.perf_counter()
                response = await http.get("/hospitals/H002/midids", headers=asker)
                took.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            flood.stdin.close()
            statuses = {
                int(k): v for k, v in json.loads(await loop.run_in_executor(None, flood.stdout.read)).items()
            }
            flood.wait(30)
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
    p50 = statistics.median(took)
    p99 = statistics.quantiles(took, n=100)[98]
    print(
        f"\nfair share: H002 ordinary query p50 {p50:.1f} ms, p99 {p99:.1f} ms over {ORDINARY_QUERIES} "
        f"queries while H001 flooded with {FLOODERS} concurrent as-of queries: {dict(statuses)}"
    )
    assert statuses.get(200, 0) > 0, "the flood must really have run as-of queries"
    assert statuses.get(429, 0) > 0, "the flood must have hit the bound"


def test_a_partys_rate_is_refused_beyond_its_burst_with_the_seconds_to_wait() -> None:
    buckets = TokenBuckets(rate=2.0, capacity=4.0, what="2 queries a second")
    for _ in range(4):
        buckets.take("hospital/H001", now=10.0)
    with pytest.raises(RateLimited) as refused:
        buckets.take("hospital/H001", now=10.0)
    assert refused.value.retry_after == 1
    buckets.take("hospital/H002", now=10.0)  # another party's bucket is its own
    buckets.take("hospital/H001", now=10.6)  # refilled at the rate


async def test_a_party_over_its_bound_of_expensive_queries_is_refused_while_another_party_is_not() -> None:
    share = FairShare(expensive_per_party=1, expensive_total=4)
    async with share.expensive("hospital/H001"):
        with pytest.raises(RateLimited):
            async with share.expensive("hospital/H001"):
                pass
        async with share.expensive("hospital/H002"):
            pass
    async with share.expensive("hospital/H001"):
        pass


async def test_over_nats_a_hospitals_expensive_queries_beyond_its_bound_are_refused_with_429(
    kadaster: Running, h001: KadasterClient
) -> None:
    await asyncio.get_running_loop().run_in_executor(None, issue_many, kadaster, "H001", 200)
    moments = [datetime.now(UTC) - timedelta(milliseconds=300 + i) for i in range(6)]
    await asyncio.sleep(0.5)

    async def ask(moment: datetime) -> Any:
        body = json.dumps({"as_of": moment.isoformat()}).encode()
        return await h001.nc.request("kadaster.query.hospital.H001.midids", body, timeout=60)

    replies = await asyncio.gather(*(ask(m) for m in moments))
    refused = [r for r in replies if (r.headers or {}).get("Nats-Service-Error-Code") == "429"]
    answered = [r for r in replies if "items" in json.loads(r.data)]
    assert refused and answered, [r.data[:200] for r in replies]
    assert {json.loads(r.data)["errors"][0]["code"] for r in refused} == {"rate_limited"}
