"""MID-ID sequence numbers stay unique across processes and across `kill -9`."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from adapters.nats.client import KadasterClient
from adapters.nats.server import NatsServer
from services.register import Register, event_store_env
from tests.integration.conftest import ServiceProcess, process_env, wait_for_service


def issued_numbers(database_url: str) -> list[int]:
    """Every MID-ID sequence number recorded in the event store, in log order."""
    register = Register(env=event_store_env(database_url))
    try:
        numbers = []
        for notification in register.recorder.select_notifications(start=None, limit=1_000_000):
            if notification.topic.endswith("MidIdRecord.Issued"):
                numbers.append(register.mapper.to_domain_event(notification).sequence)  # type: ignore[attr-defined]
        return numbers
    finally:
        register.close()


async def test_two_issuing_processes_never_hand_out_the_same_number(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    env = process_env(nats_server.url, database_url, tmp_path / "data")
    issuers = [ServiceProcess("rpc", env, tmp_path / f"rpc{i}.log") for i in range(2)]
    ingest = ServiceProcess("ingest", env, tmp_path / "ingest.log")
    for process in (*issuers, ingest):
        process.start()
    try:
        await wait_for_service(nats_server.url, instances=2)
        clients = [await KadasterClient.connect(nats_server.url, f"hospital/H{i:03d}") for i in range(4)]
        # Requests spread over both issuers (queue group) and the stream at the same time.
        rpc = [clients[i % 4].issue_mid_id("CT", command_id=f"r{i}", timeout=20) for i in range(240)]
        stream = [
            clients[i % 4].send("midid.issue", {"modality": "MRI"}, command_id=f"s{i}", timeout=30)
            for i in range(60)
        ]
        outcomes = await asyncio.gather(*rpc, *stream)
        assert all(o["status"] == "accepted" for o in outcomes)
        handed_out = [o["result"]["mid_id"] for o in outcomes]
        assert len(set(handed_out)) == 300
        for client in clients:
            await client.close()
    finally:
        for process in (*issuers, ingest):
            process.stop()
    numbers = issued_numbers(database_url)
    assert sorted(numbers) == list(range(1, 301))


async def test_after_kill_9_the_sequence_continues_and_no_request_is_lost_or_doubled(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    env = process_env(nats_server.url, database_url, tmp_path / "data")
    service = ServiceProcess("serve", env, tmp_path / "serve.log")
    service.start()
    await wait_for_service(nats_server.url)
    client = await KadasterClient.connect(nats_server.url, "hospital/H001")
    rng = random.Random(7)
    try:
        requests: list[asyncio.Task[dict[str, object]]] = []

        async def steady_requests() -> None:
            for i in range(400):
                requests.append(
                    asyncio.create_task(client.issue_mid_id("CT", command_id=f"k{i}", timeout=2, attempts=30))
                )
                await asyncio.sleep(0.008)

        producing = asyncio.create_task(steady_requests())
        for _ in range(3):
            # Kill the service in the middle of the flood, then bring it back.
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            assert any(not r.done() for r in requests), "the kill must land while requests are in flight"
            service.kill()
            await asyncio.sleep(0.3)
            service.start()
        await producing
        outcomes = await asyncio.wait_for(asyncio.gather(*requests), timeout=240)
        first_round = {o["command_id"]: o["result"]["mid_id"] for o in outcomes}
        assert len(set(first_round.values())) == 400
        # Asking again with the same ids returns the same numbers, now and after another crash.
        service.kill()
        service.start()
        await wait_for_service(nats_server.url)
        again = await asyncio.gather(
            *(client.issue_mid_id("CT", command_id=f"k{i}", timeout=5) for i in range(400))
        )
        assert {o["command_id"]: o["result"]["mid_id"] for o in again} == first_round
        following = await client.issue_mid_id("CT", command_id="after")
        assert following["result"]["mid_id"] == "MID-0000401-59"
    finally:
        await client.close()
        service.stop()
    assert sorted(issued_numbers(database_url)) == list(range(1, 402))
