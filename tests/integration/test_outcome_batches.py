"""A batch's outcomes are stored in one atomic write, and each outcome once, even when redelivered.

These tests speak to a real nats-server: they fail when nats-py or the server changes the atomic
batch protocol that `AtomicBatch` speaks by hand (its headers, or the publish ack of the batch).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import Header, StorageType, StreamConfig

from adapters import metrics
from adapters.nats.outcomes import ATOMIC_DISABLED, AtomicBatch, BatchRefused, Outcome, OutcomePublisher
from adapters.nats.server import NatsServer
from adapters.nats.streams import OUTCOME_STREAM, ensure_streams


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NATS]:
    client: NATS = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
def js(nc: NATS) -> JetStreamContext:
    return nc.jetstream()


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


def taken(path: str, reason: str = "") -> float:
    value = metrics.REGISTRY.get_sample_value(
        "kadaster_outcome_batches_total", {"path": path, "reason": reason}
    )
    return value or 0.0


def test_the_batch_headers_are_the_ones_nats_py_names() -> None:
    assert (Header.BATCH_ID.value, Header.BATCH_SEQUENCE.value, Header.BATCH_COMMIT.value) == (
        "Nats-Batch-Id",
        "Nats-Batch-Sequence",
        "Nats-Batch-Commit",
    )


async def test_the_server_acks_a_whole_batch_once_with_its_size(nc: NATS, js: JetStreamContext) -> None:
    await ensure_streams(js, replicas=1)

    ack = await AtomicBatch(nc).publish(outcomes(1, 5))

    assert ack["stream"] == OUTCOME_STREAM
    assert ack["seq"] == 5
    assert ack["count"] == 5
    assert await stored(js) == 5


async def test_a_batch_with_one_message_already_stored_stores_none_of_them(
    nc: NATS, js: JetStreamContext
) -> None:
    await ensure_streams(js, replicas=1)
    await AtomicBatch(nc).publish(outcomes(1, 3))

    with pytest.raises(BatchRefused):
        await AtomicBatch(nc).publish(outcomes(3, 6))

    assert await stored(js) == 3


async def test_a_batch_of_outcomes_takes_the_atomic_path_and_says_so(nc: NATS, js: JetStreamContext) -> None:
    await ensure_streams(js, replicas=1)
    before = taken("atomic")

    assert await OutcomePublisher(nc, js).publish(outcomes(1, 5)) == "atomic"

    assert await stored(js) == 5
    assert taken("atomic") == before + 1


async def test_a_redelivered_batch_goes_one_by_one_and_stores_only_its_new_outcomes(
    nc: NATS, js: JetStreamContext
) -> None:
    await ensure_streams(js, replicas=1)
    publisher = OutcomePublisher(nc, js)
    await publisher.publish(outcomes(1, 3))
    before = taken("one_by_one", "refused")

    # Commands 2 and 3 come again with 4 and 5: the batch holds outcomes already stored.
    assert await publisher.publish(outcomes(2, 5)) == "one_by_one"

    assert await stored(js) == 5
    assert taken("one_by_one", "refused") == before + 1


async def test_a_single_outcome_is_published_alone(nc: NATS, js: JetStreamContext) -> None:
    await ensure_streams(js, replicas=1)
    before = taken("one_by_one", "single")

    assert await OutcomePublisher(nc, js).publish(outcomes(1, 1)) == "one_by_one"

    assert await stored(js) == 1
    assert taken("one_by_one", "single") == before + 1


async def test_a_stream_without_atomic_batches_gets_its_outcomes_one_by_one_and_it_shows(
    nc: NATS, js: JetStreamContext
) -> None:
    # A stream made before atomic batches were asked for.
    await js.add_stream(
        StreamConfig(name=OUTCOME_STREAM, subjects=["kadaster.outcome.>"], storage=StorageType.FILE)
    )
    with pytest.raises(BatchRefused) as refused:
        await AtomicBatch(nc).publish(outcomes(1, 3))
    assert refused.value.code == ATOMIC_DISABLED
    publisher = OutcomePublisher(nc, js)
    before = taken("one_by_one", "stream_refuses_batches")

    assert await publisher.publish(outcomes(1, 3)) == "one_by_one"
    assert await publisher.publish(outcomes(4, 6)) == "one_by_one"

    assert await stored(js) == 6
    assert publisher.stream_refuses_batches
    assert taken("one_by_one", "stream_refuses_batches") == before + 2
