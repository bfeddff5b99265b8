"""Exactly once over JetStream: duplicates inside and outside the window, and SIGKILL under load."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.bootstrap import ROLES, started
from adapters.nats.client import KadasterClient, outcome_of
from adapters.nats.server import NatsServer
from adapters.nats.streams import EVT_STREAM, OUTCOME_STREAM, ensure_streams
from services.published_events import public_event
from services.register import Register, event_store_env
from tests.integration.conftest import (
    ServiceProcess,
    domain_event_bodies,
    domain_event_count,
    process_env,
    service_settings,
)


async def test_the_same_command_three_times_has_one_effect_and_the_same_outcome(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(
        nats_server.url, database_url, tmp_path / "data", duplicate_window_seconds=1.0
    )
    async with started(settings, ROLES, asyncio.Event()) as running:
        client = await KadasterClient.connect(running.nats_url, "hospital/H001")
        first = await client.send("midid.issue", {"modality": "CT"}, command_id="once")
        # Inside JetStream's duplicate window: the stream itself drops the copy.
        inside = await client.send("midid.issue", {"modality": "CT"}, command_id="once")
        await asyncio.sleep(1.5)
        # Outside the window: the copy reaches the register, which knows the command already.
        outside = await client.send("midid.issue", {"modality": "CT"}, command_id="once")
        assert first == inside == outside
        listed = await client.query("midids")
        assert [m["mid_id"] for m in listed["items"]] == [first["result"]["mid_id"]]
        await client.close()


async def stream_messages(js: nats.js.JetStreamContext, stream: str) -> list[bytes]:
    info = await js.stream_info(stream)
    total = info.state.messages
    if total == 0:
        return []
    sub = await js.subscribe(
        ">",
        stream=stream,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    bodies = []
    for _ in range(total):
        bodies.append((await sub.next_msg(timeout=10)).data)
    await sub.unsubscribe()
    return bodies


async def count_messages(js: nats.js.JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def test_killing_the_ingest_role_repeatedly_loses_and_doubles_nothing(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    total = 5000
    env = process_env(nats_server.url, database_url, tmp_path / "data")
    env["KADASTER_INGEST_BATCH"] = "64"
    env["KADASTER_ACK_WAIT_SECONDS"] = "3"
    ingest = ServiceProcess("ingest", env, tmp_path / "ingest.log")
    relay = ServiceProcess("relay", env, tmp_path / "relay.log")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    rng = random.Random(2024)
    try:
        # The backlog is on the stream before the ingest starts, so the kills land while work remains.
        await ensure_streams(js, replicas=1)
        # Ten hospitals publish 5,000 MID-ID requests on the stream.
        for i in range(total):
            source = f"hospital/H{i % 10:03d}"
            envelope = {
                "specversion": "1.0",
                "id": f"load-{i}",
                "source": source,
                "type": "midid.issue",
                "data": {"modality": "CT"},
            }
            await js.publish(
                f"kadaster.cmd.hospital.H{i % 10:03d}.midid.issue",
                json.dumps(envelope).encode(),
                headers={"Nats-Msg-Id": f"{source}:load-{i}"},
            )
        ingest.start()
        relay.start()
        await wait_for_streams(js)
        kills = 0
        while kills < 5:
            # SIGKILL at a random moment while work remains, then restart.
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            if await count_messages(js, OUTCOME_STREAM) >= total:
                break
            ingest.kill()
            kills += 1
            ingest.start()
        relay.kill()
        relay.start()
        await wait_until(lambda: count_messages(js, OUTCOME_STREAM), total, timeout=180)
        register = Register(env=event_store_env(database_url))
        relayed = [
            n
            for n in register.recorder.select_notifications(start=None, limit=10**6)
            if public_event(n.topic) is not None
        ]
        register.close()
        await wait_until(lambda: domain_event_count(js), len(relayed), timeout=120)
        await asyncio.sleep(1.0)

        # Exactly one outcome per command, each accepted, each with its own MID-ID.
        outcomes = [outcome_of(json.loads(b)) for b in await stream_messages(js, OUTCOME_STREAM)]
        assert len(outcomes) == total
        assert len({o["command_id"] for o in outcomes}) == total
        assert all(o["status"] == "accepted" for o in outcomes)
        assert len({o["result"]["mid_id"] for o in outcomes}) == total
        # Every effect once in the store: numbers 1..5000, one Issued event each.
        issued = [n for n in relayed if n.topic.endswith("MidIdRecord.Issued")]
        assert len(issued) == total
        # Every domain event once on KADASTER_EVT, in log order.
        events = [json.loads(b) for b in await domain_event_bodies(js)]
        assert [int(e["id"]) for e in events] == [n.id for n in relayed]
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        assert len({e["id"] for e in events}) == len(events)
        assert kills >= 5
    finally:
        await nc.close()
        ingest.stop()
        relay.stop()


async def wait_for_streams(js: nats.js.JetStreamContext, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await js.stream_info(EVT_STREAM)
            await js.consumer_info("KADASTER_CMD", "kadaster-ingest")
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def wait_until(measure: object, expected: int, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await measure()  # type: ignore[operator]
        if value >= expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"reached {value} of {expected}")
        await asyncio.sleep(0.2)
