"""The relay goes on where the stream stops: after a restart, behind a checkpoint, after the old shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from adapters.ledger.publisher import CHECKPOINT_SUBJECT, publish_checkpoint
from adapters.nats.relay import SCAN_BACK, run_relay
from adapters.nats.server import NatsServer
from adapters.nats.streams import ensure_streams
from services.ledger import Checkpoint
from services.published_events import public_event
from services.register import Register
from tests.conftest import Sender
from tests.published.scenario import FULL_LIFE
from tests.published.test_over_nats import stream_messages


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    context = nc.jetstream()
    await ensure_streams(context, replicas=1)
    yield context
    await nc.close()


def send(sender: Sender, steps: object) -> None:
    for step in steps:  # type: ignore[attr-defined]
        assert sender.send(step.source, step.type, step.data, step.command_id)["status"] == "accepted"


def public_positions(register: Register) -> list[int]:
    notifications = register.recorder.select_notifications(start=None, limit=10**6)
    return [n.id for n in notifications if public_event(n.topic) is not None]


async def domain_events(js: JetStreamContext) -> list[dict[str, object]]:
    return [
        json.loads(body)
        for subject, body in await stream_messages(js, "KADASTER_EVT")
        if subject != CHECKPOINT_SUBJECT
    ]


async def relay_until_done(js: JetStreamContext, register: Register) -> None:
    """Runs the relay until everything recorded is on the stream, then stops it as a shutdown would."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_relay(js, register, stop))
    expected = public_positions(register)[-1]
    try:
        for _ in range(300):
            events = await domain_events(js)
            if events and "sequence" in events[-1] and int(str(events[-1]["id"])) >= expected:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


def checkpoint(tree_size: int) -> Checkpoint:
    return Checkpoint(
        tree_size=tree_size,
        root_hash="ab" * 32,
        chain_hash="cd" * 32,
        timestamp="2026-12-01T10:00:00Z",
        key_id="test",
    )


async def test_a_restarted_relay_continues_the_sequence_behind_a_checkpoint_with_no_gap_and_no_repeat(
    js: JetStreamContext, register: Register, sender: Sender
) -> None:
    send(sender, FULL_LIFE[:20])
    await relay_until_done(js, register)
    # While only bookkeeping was recorded, the ledger went on publishing checkpoints: a long way back
    # from the end of the stream lies the newest domain event when the relay comes back.
    for tree_size in range(SCAN_BACK + 10):
        await publish_checkpoint(js, checkpoint(tree_size))
    send(sender, FULL_LIFE[20:])
    await relay_until_done(js, register)
    events = await domain_events(js)
    assert [int(str(e["id"])) for e in events] == public_positions(register)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))


async def test_after_the_old_message_shape_the_relay_goes_on_from_its_position_and_republishes_nothing(
    js: JetStreamContext, register: Register, sender: Sender
) -> None:
    send(sender, FULL_LIFE)
    positions = public_positions(register)
    already = positions[len(positions) // 2]
    # What the relay published before CloudEvents: its last message, as it lies on the stream.
    old = {"id": "a-uuid:1", "position": already, "type": "MidIdRecord.Issued", "recorded_at": "2026-12-01"}
    await js.publish(
        "kadaster.evt.mid_id_record.issued", json.dumps(old).encode(), headers={"Nats-Msg-Id": "a-uuid:1"}
    )
    await relay_until_done(js, register)
    events = await domain_events(js)
    assert events[0] == old
    new = events[1:]
    assert [int(str(e["id"])) for e in new] == [p for p in positions if p > already]
    assert [e["sequence"] for e in new] == list(range(1, len(new) + 1))
