"""The ingesting role: pulls KADASTER_CMD in batches, records, publishes outcomes, then acks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import weakref

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header

from adapters import metrics
from adapters.nats.gateway import CommandGateway
from adapters.nats.streams import CMD_STREAM, INGEST_CONSUMER, MAX_DELIVER
from services.processor import STREAM, Handled, Inbound

log = structlog.get_logger("kadaster.ingest")

BATCH_ID, BATCH_SEQUENCE, BATCH_COMMIT = (
    Header.BATCH_ID.value,
    Header.BATCH_SEQUENCE.value,
    Header.BATCH_COMMIT.value,
)


def to_inbound(msg: Msg) -> Inbound:
    headers = msg.headers or {}
    return Inbound(
        body=msg.data,
        subject=msg.subject,
        channel=STREAM,
        stream_sequence=msg.metadata.sequence.stream,
        msg_id=headers.get("Nats-Msg-Id"),
    )


ATOMIC_BATCH_LIMIT = 1000
"""The most messages nats-server takes in one atomic batch."""
ATOMIC_DISABLED = 10174
"""JetStream's error code for a stream that does not allow atomic batches."""

Outcome = tuple[str, bytes, str]
"""Subject, body and message id of one outcome."""

_atomic_refused: weakref.WeakSet[JetStreamContext] = weakref.WeakSet()


async def settle(js: JetStreamContext, msgs: list[Msg], handled: list[Handled]) -> None:
    """Outcomes first (deduplicated per stream message), acks only after they are stored."""
    outcomes = [
        (
            result.outcome_subject,
            json.dumps(result.outcome).encode(),
            f"outcome:{CMD_STREAM}:{msg.metadata.sequence.stream}",
        )
        for msg, result in zip(msgs, handled, strict=True)
    ]
    if not await publish_atomically(js, outcomes):
        acks = [
            await js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id})
            for subject, body, msg_id in outcomes
        ]
        await asyncio.wait_for(asyncio.gather(*acks), timeout=30)
    for msg in msgs:
        await msg.ack()


async def publish_atomically(js: JetStreamContext, outcomes: list[Outcome]) -> bool:
    """Stores a batch's outcomes in one atomic write; False if not stored that way.

    A stream that syncs every write to disk then syncs once per batch instead of once per outcome.
    A batch is refused whole when one of its outcomes is already stored (a redelivery): the caller
    then publishes them one by one, and the stored ones are dropped as duplicates.
    """
    if len(outcomes) < 2 or len(outcomes) > ATOMIC_BATCH_LIMIT or js in _atomic_refused:
        return False
    # nats-py has no public call for atomic batches: its client, if this version still keeps it here.
    nc = getattr(js, "_nc", None)
    if nc is None:
        return False
    batch = uuid.uuid4().hex
    *first, (subject, body, msg_id) = outcomes
    for number, (each_subject, each_body, each_id) in enumerate(first, start=1):
        await nc.publish(
            each_subject,
            each_body,
            headers={BATCH_ID: batch, BATCH_SEQUENCE: str(number), "Nats-Msg-Id": each_id},
        )
    commit = {BATCH_ID: batch, BATCH_SEQUENCE: str(len(outcomes)), BATCH_COMMIT: "1", "Nats-Msg-Id": msg_id}
    try:
        reply = await nc.request(subject, body, headers=commit, timeout=30)
        answer = json.loads(reply.data)
    except (TimeoutError, nats.errors.Error, ValueError) as error:
        log.warning("outcome_batch_unconfirmed", size=len(outcomes), error=type(error).__name__)
        return False
    refused = answer.get("error") if isinstance(answer, dict) else {"description": "not a publish ack"}
    if refused:
        if refused.get("err_code") == ATOMIC_DISABLED:
            _atomic_refused.add(js)
        log.debug("outcome_batch_refused", size=len(outcomes), error=refused.get("description"))
        return False
    return True


async def run_ingest(
    js: JetStreamContext, gateway: CommandGateway, stop: asyncio.Event, batch_size: int = 256
) -> None:
    subscription = await js.pull_subscribe_bind(durable=INGEST_CONSUMER, stream=CMD_STREAM)
    log.info("ingest_started", stream=CMD_STREAM, consumer=INGEST_CONSUMER, batch=batch_size)
    while not stop.is_set():
        try:
            msgs = await subscription.fetch(batch_size, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except nats.errors.ConnectionClosedError:
            break
        except Exception:
            # NATS is reconnecting or JetStream has no leader for a moment.
            log.warning("ingest_fetch_failed", exc_info=True)
            await asyncio.sleep(0.5)
            continue
        try:
            await handle_batch(js, gateway, msgs)
        except Exception:
            log.exception("ingest_batch_failed", size=len(msgs))
            await asyncio.sleep(1.0)  # not acked: JetStream redelivers after ack_wait
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()
    log.info("ingest_stopped")


async def handle_batch(js: JetStreamContext, gateway: CommandGateway, msgs: list[Msg]) -> None:
    began = time.perf_counter()
    inbounds = [to_inbound(m) for m in msgs]
    try:
        handled = await gateway.process(inbounds)
    except Exception:
        if len(msgs) == 1:
            await give_up_if_exhausted(msgs[0])
            raise
        # Find the message that breaks the batch: process one at a time.
        log.exception("ingest_batch_split", size=len(msgs))
        for msg in msgs:
            try:
                await handle_batch(js, gateway, [msg])
            except Exception:
                log.exception("ingest_message_failed", stream_sequence=msg.metadata.sequence.stream)
        return
    await settle(js, msgs, handled)
    metrics.count(handled)
    metrics.INGEST_BATCH.observe(len(msgs))
    metrics.INGEST_SECONDS.observe(time.perf_counter() - began)
    log.debug("ingest_batch", size=len(msgs), duplicates=sum(h.duplicate for h in handled))


async def give_up_if_exhausted(msg: Msg) -> None:
    if msg.metadata.num_delivered >= MAX_DELIVER - 1:
        log.error(
            "ingest_message_terminated",
            stream_sequence=msg.metadata.sequence.stream,
            delivered=msg.metadata.num_delivered,
        )
        await msg.term()
