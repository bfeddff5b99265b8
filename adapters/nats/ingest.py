"""The ingesting role: pulls KADASTER_CMD in batches, records, publishes outcomes, then acks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from adapters import metrics
from adapters.nats.gateway import CommandGateway
from adapters.nats.outcomes import Outcome, OutcomePublisher
from adapters.nats.streams import CMD_STREAM, INGEST_CONSUMER, MAX_DELIVER, SETTLE_AFTER
from services.processor import STREAM, Handled, Inbound
from services.published_events import outcome_event

log = structlog.get_logger("kadaster.ingest")


def to_inbound(msg: Msg) -> Inbound:
    headers = msg.headers or {}
    return Inbound(
        body=msg.data,
        subject=msg.subject,
        channel=STREAM,
        stream_sequence=msg.metadata.sequence.stream,
        msg_id=headers.get("Nats-Msg-Id"),
        headers=dict(headers),
        # The register's moment of receipt is the stream's, whatever the envelope claims.
        received_at=msg.metadata.timestamp,
    )


def outcome_message(msg: Msg, handled: Handled) -> Outcome:
    """The outcome as a `kadaster.outcome` CloudEvent, keyed by the command's place on KADASTER_CMD."""
    sequence = msg.metadata.sequence.stream
    message_id = f"outcome:{CMD_STREAM}:{sequence}"
    event = outcome_event(handled.outcome, message_id, handled.inbound.received_at, sequence)
    return handled.outcome_subject, json.dumps(event).encode(), message_id


async def settle(outcomes: OutcomePublisher, msgs: list[Msg], handled: list[Handled]) -> None:
    """Outcomes first (deduplicated per stream message), acks only after they are stored."""
    try:
        await outcomes.publish(
            [outcome_message(msg, result) for msg, result in zip(msgs, handled, strict=True)]
        )
    except Exception as error:
        # The outcomes are recorded (the `outcome` query answers them): after a few tries a message is
        # acknowledged even if its outcome cannot be published, so it never holds up the others.
        settled = [msg for msg in msgs if msg.metadata.num_delivered >= SETTLE_AFTER]
        for msg in settled:
            log.error(
                "outcome_not_published",
                stream_sequence=msg.metadata.sequence.stream,
                delivered=msg.metadata.num_delivered,
                error=repr(error)[:300],
            )
            await msg.ack()
        if len(settled) < len(msgs):
            raise
        return
    for msg in msgs:
        await msg.ack()


async def run_ingest(
    js: JetStreamContext,
    outcomes: OutcomePublisher,
    gateway: CommandGateway,
    stop: asyncio.Event,
    batch_size: int = 256,
) -> None:
    """Batches are recorded one after the other; while one batch's outcomes are published and its
    messages acked, the next batch is already fetched and recorded (it was committed before, so a
    crash in between only means a redelivery, answered from the command records)."""
    subscription = await js.pull_subscribe_bind(durable=INGEST_CONSUMER, stream=CMD_STREAM)
    log.info("ingest_started", stream=CMD_STREAM, consumer=INGEST_CONSUMER, batch=batch_size)
    settling: asyncio.Task[None] | None = None
    while not stop.is_set():
        try:
            msgs = await subscription.fetch(batch_size, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            await settled(settling)
            settling = None
            continue
        except nats.errors.ConnectionClosedError:
            break
        except Exception:
            # NATS is reconnecting or JetStream has no leader for a moment.
            log.warning("ingest_fetch_failed", exc_info=True)
            await asyncio.sleep(0.5)
            continue
        began = time.perf_counter()
        try:
            handled = await record_batch(outcomes, gateway, msgs)
        except Exception:
            log.exception("ingest_batch_failed", size=len(msgs))
            await asyncio.sleep(1.0)  # not acked: JetStream redelivers after ack_wait
            continue
        # Outcomes leave in the order their batches were recorded.
        await settled(settling)
        settling = None
        if handled is not None:
            settling = asyncio.create_task(settle_and_count(outcomes, msgs, handled, began))
    await settled(settling)
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()
    log.info("ingest_stopped")


async def settled(settling: asyncio.Task[None] | None) -> None:
    """Waits for the previous batch's outcomes and acks; a failure leaves its messages unacked."""
    if settling is None:
        return
    try:
        await settling
    except Exception:
        log.exception("ingest_settle_failed")


async def settle_and_count(
    outcomes: OutcomePublisher, msgs: list[Msg], handled: list[Handled], began: float
) -> None:
    await settle(outcomes, msgs, handled)
    metrics.count(handled)
    metrics.INGEST_BATCH.observe(len(msgs))
    metrics.INGEST_SECONDS.observe(time.perf_counter() - began)
    log.debug("ingest_batch", size=len(msgs), duplicates=sum(h.duplicate for h in handled))


async def handle_batch(outcomes: OutcomePublisher, gateway: CommandGateway, msgs: list[Msg]) -> None:
    """Records one batch, publishes its outcomes and acks it."""
    began = time.perf_counter()
    handled = await record_batch(outcomes, gateway, msgs)
    if handled is not None:
        await settle_and_count(outcomes, msgs, handled, began)


async def record_batch(
    outcomes: OutcomePublisher, gateway: CommandGateway, msgs: list[Msg]
) -> list[Handled] | None:
    """The batch's results once recorded; None when it had to be split, its parts already settled."""
    inbounds = [to_inbound(m) for m in msgs]
    try:
        return await gateway.process(inbounds)
    except Exception:
        if len(msgs) == 1:
            if msgs[0].metadata.num_delivered >= SETTLE_AFTER and await settle_as_rejected(
                outcomes, gateway, msgs[0], inbounds[0]
            ):
                return None
            await give_up_if_exhausted(msgs[0])
            raise
        # Find the message that breaks the batch: process one at a time.
        log.exception("ingest_batch_split", size=len(msgs))
        for msg in msgs:
            try:
                await handle_batch(outcomes, gateway, [msg])
            except Exception:
                log.exception("ingest_message_failed", stream_sequence=msg.metadata.sequence.stream)
        return None


async def settle_as_rejected(
    outcomes: OutcomePublisher, gateway: CommandGateway, msg: Msg, inbound: Inbound
) -> bool:
    """Records a message that keeps failing as rejected, publishes that outcome and acks it.

    False when even that cannot be recorded (the database is away): then it is redelivered.
    """
    deliveries = msg.metadata.num_delivered
    try:
        handled = await gateway.call(gateway.processor.give_up, inbound, deliveries)
    except Exception:
        log.exception("ingest_give_up_failed", stream_sequence=msg.metadata.sequence.stream)
        return False
    log.error("ingest_message_given_up", stream_sequence=msg.metadata.sequence.stream, delivered=deliveries)
    await settle(outcomes, [msg], [handled])
    return True


async def give_up_if_exhausted(msg: Msg) -> None:
    if msg.metadata.num_delivered >= MAX_DELIVER - 1:
        log.error(
            "ingest_message_terminated",
            stream_sequence=msg.metadata.sequence.stream,
            delivered=msg.metadata.num_delivered,
        )
        await msg.term()
