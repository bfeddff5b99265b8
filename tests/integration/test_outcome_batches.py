"""A batch's outcomes are stored in one atomic write, and each outcome once, even when redelivered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from adapters.nats.ingest import Outcome, publish_atomically
from adapters.nats.server import NatsServer
from adapters.nats.streams import OUTCOME_STREAM, ensure_streams


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc: NATS = await nats.connect(nats_server.url)
    yield nc.jetstream()
    await nc.close()


def outcomes(first: int, last: int) -> list[Outcome]:
    return [
        (
            "kadaster.outcome.hospital.H001",
            json.dumps({"command_id": f"c{n}", "status": "accepted"}).encode(),
            f"outcome:KADASTER_CMD:{n}",
        )
        for n in range(first, last + 1)
    ]


async def stored(js: JetStreamContext) -> int:
    return int((await js.stream_info(OUTCOME_STREAM)).state.messages)


async def test_a_batch_of_outcomes_is_stored_in_one_atomic_write(js: JetStreamContext) -> None:
    await ensure_streams(js, replicas=1)

    assert await publish_atomically(js, outcomes(1, 5))
    assert await stored(js) == 5


async def test_a_redelivered_batch_is_refused_whole_and_its_new_outcomes_go_one_by_one(
    js: JetStreamContext,
) -> None:
    await ensure_streams(js, replicas=1)
    assert await publish_atomically(js, outcomes(1, 3))

    # Commands 2 and 3 come again with 4 and 5: the batch holds outcomes already stored.
    again = outcomes(2, 5)
    assert not await publish_atomically(js, again)
    acks = [
        await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}) for subject, body, msg_id in again
    ]

    assert [bool(ack.duplicate) for ack in acks] == [True, True, False, False]
    assert await stored(js) == 5


async def test_a_stream_without_atomic_batches_gets_its_outcomes_one_by_one(js: JetStreamContext) -> None:
    # A stream made before atomic batches were asked for.
    await js.add_stream(
        StreamConfig(name=OUTCOME_STREAM, subjects=["kadaster.outcome.>"], storage=StorageType.FILE)
    )

    assert not await publish_atomically(js, outcomes(1, 3))
    assert not await publish_atomically(js, outcomes(4, 6))
    assert await stored(js) == 0
