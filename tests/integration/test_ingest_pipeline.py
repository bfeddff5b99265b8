"""Ingest records the next batch while the previous one's outcomes are published: order and acks hold."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.bootstrap import started
from adapters.nats.server import NatsServer
from adapters.nats.streams import CMD_STREAM, INGEST_CONSUMER, OUTCOME_STREAM
from bench.common import issue_envelope
from tests.integration.conftest import service_settings


async def test_outcomes_of_small_batches_leave_in_stream_order_and_every_command_is_acked(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    settings = service_settings(
        nats_server.url, f"sqlite:///{tmp_path / 'kadaster.db'}", tmp_path / "data", ingest_batch=3
    )
    count = 60
    async with started(settings, ["ingest"], asyncio.Event()) as running:
        js = running.js
        for i in range(count):
            subject, body, command_id = issue_envelope(i)
            await js.publish(subject, body, headers={"Nats-Msg-Id": command_id})
        deadline = time.monotonic() + 60
        while (await js.stream_info(OUTCOME_STREAM)).state.messages < count:
            assert time.monotonic() < deadline, "not every command got its outcome"
            await asyncio.sleep(0.1)
        while (info := await js.consumer_info(CMD_STREAM, INGEST_CONSUMER)).num_ack_pending:
            assert time.monotonic() < deadline, f"{info.num_ack_pending} commands left unacked"
            await asyncio.sleep(0.1)
        assert info.num_pending == 0 and info.num_redelivered == 0

    nc = await nats.connect(nats_server.url)
    sub = await nc.jetstream().subscribe(
        ">",
        stream=OUTCOME_STREAM,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    # Each stored outcome is a CloudEvent whose data is the outcome.
    stored = [json.loads((await sub.next_msg(timeout=10)).data)["data"] for _ in range(count)]
    await nc.close()
    assert [o["command_id"] for o in stored] == [f"bench-{i}" for i in range(count)]
    assert [o["result"]["mid_id"][4:11] for o in stored] == [f"{i + 1:07d}" for i in range(count)]
