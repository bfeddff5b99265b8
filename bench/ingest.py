"""Ingest throughput: the whole path against a bare pull-and-ack consumer and a naive pipeline."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats
from eventsourcing.domain import Aggregate, event
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from adapters.nats.gateway import CommandGateway
from adapters.nats.ingest import handle_batch
from adapters.nats.outcomes import OutcomePublisher
from adapters.nats.streams import CMD_STREAM, INGEST_CONSUMER, ensure_ingest_consumer, ensure_streams
from bench.common import Figure, at_least, database, issue_envelope, nats_server
from services.processor import CommandProcessor
from services.register import Register, event_store_env

BATCH = 256
OUTCOME_SUBJECT = "kadaster.outcome.bench"


class NaiveRecord(Aggregate):
    """What a straightforward pipeline stores: one aggregate per message."""

    @event("Received")
    def __init__(self, body: str) -> None:
        self.body = body


async def publish_all(js: JetStreamContext, count: int) -> None:
    acks = []
    for i in range(count):
        subject, body, msg_id = issue_envelope(i)
        acks.append(await js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id}))
        if len(acks) >= 2000:
            await asyncio.gather(*acks)
            acks = []
    await asyncio.gather(*acks)


async def consumer(js: JetStreamContext, name: str) -> Any:
    await js.add_consumer(
        CMD_STREAM,
        ConsumerConfig(
            durable_name=name, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000, ack_wait=120
        ),
    )
    return await js.pull_subscribe_bind(durable=name, stream=CMD_STREAM)


async def drain(subscription: Any, count: int, handle: Any) -> float:
    done = 0
    started = time.perf_counter()
    while done < count:
        try:
            msgs = await subscription.fetch(BATCH, timeout=2)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        await handle(msgs)
        done += len(msgs)
    return count / (time.perf_counter() - started)


async def bare_rate(js: JetStreamContext, count: int) -> float:
    async def ack_all(msgs: list[Any]) -> None:
        for msg in msgs:
            await msg.ack()

    return await drain(await consumer(js, "bench-bare"), count, ack_all)


async def naive_rate(js: JetStreamContext, count: int, url: str) -> float:
    """What a straightforward consumer does per message: parse, one save, publish its outcome, ack."""
    register = Register(env=event_store_env(url))
    loop = asyncio.get_running_loop()

    async def save_publish_and_ack_each(msgs: list[Any]) -> None:
        for msg in msgs:
            document = json.loads(msg.data)
            record = NaiveRecord(body=json.dumps(document))
            await loop.run_in_executor(None, register.save, record)
            await js.publish(OUTCOME_SUBJECT, outcome_of(record))
            await msg.ack()

    try:
        return await drain(await consumer(js, "bench-naive"), count, save_publish_and_ack_each)
    finally:
        register.close()


async def batched_peer_rate(js: JetStreamContext, count: int, url: str) -> float:
    """The best a Python consumer of this library does simply: fetch a batch, one save of the whole
    batch, publish every outcome (acknowledged together), ack every message."""
    register = Register(env=event_store_env(url))
    loop = asyncio.get_running_loop()

    async def one_save_per_batch(msgs: list[Any]) -> None:
        records = [NaiveRecord(body=json.dumps(json.loads(msg.data))) for msg in msgs]
        await loop.run_in_executor(None, lambda: register.save(*records))
        published = [await js.publish_async(OUTCOME_SUBJECT, outcome_of(r)) for r in records]
        await asyncio.gather(*published)
        for msg in msgs:
            await msg.ack()

    try:
        return await drain(await consumer(js, "bench-batched"), count, one_save_per_batch)
    finally:
        register.close()


def outcome_of(record: NaiveRecord) -> bytes:
    return json.dumps({"status": "accepted", "id": str(record.id)}).encode()


async def kadaster_rate(nc: NATS, js: JetStreamContext, count: int, url: str) -> float:
    outcomes = OutcomePublisher(nc, js)
    register = Register(env=event_store_env(url))
    gateway = CommandGateway(CommandProcessor(register))
    await ensure_ingest_consumer(js)
    subscription = await js.pull_subscribe_bind(durable=INGEST_CONSUMER, stream=CMD_STREAM)

    async def whole_path(msgs: list[Any]) -> None:
        await handle_batch(outcomes, gateway, msgs)

    try:
        return await drain(subscription, count, whole_path)
    finally:
        await gateway.close()
        register.close()


async def measure(kind: str, count: int, sync_always: bool = True) -> list[Figure]:
    with nats_server(sync_always) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js, replicas=1)
        await publish_all(js, count)
        bare = await bare_rate(js, count)
        # Every pipeline handles the same messages: the whole stream, as the kadaster does.
        with database(kind) as url:
            naive = await naive_rate(js, count, url)
        with database(kind) as url:
            batched = await batched_peer_rate(js, count, url)
        with database(kind) as url:
            ours = await kadaster_rate(nc, js, count, url)
        await nc.close()
    bare_target, naive_target = (0.35, 4.0) if kind == "sqlite" else (0.25, 4.0)
    return [
        Figure(
            f"ingest {kind} vs bare pull+ack",
            "cmd/s",
            ours,
            bare,
            "bare nats-py pull+ack",
            (at_least(bare_target),),
        ),
        Figure(
            f"ingest {kind} vs naive pipeline",
            "cmd/s",
            ours,
            naive,
            "per message: one save, one outcome published, one ack",
            (at_least(naive_target),),
            note=f"both handle all {count:,} messages",
        ),
        Figure(
            f"ingest {kind} vs minimal batched peer",
            "cmd/s",
            ours,
            batched,
            "per batch: one save, outcomes published together, acks",
            (at_least(1.0),),
        ),
    ]
