"""The contract's JetStream streams and the service's durable consumers, created when missing."""

from __future__ import annotations

import asyncio

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

log = structlog.get_logger("kadaster.streams")

CMD_STREAM = "KADASTER_CMD"
OUTCOME_STREAM = "KADASTER_OUTCOME"
EVT_STREAM = "KADASTER_EVT"
INGEST_CONSUMER = "kadaster-ingest"

CMD_SUBJECTS = [
    "kadaster.cmd.hospital.*.>",
    "kadaster.cmd.supplier.*.>",
    "kadaster.cmd.fod.>",
    "kadaster.cmd.fanc.>",
    "kadaster.cmd.riziv.>",
    "kadaster.cmd.vazg.>",
]
STREAM_SUBJECTS = {
    CMD_STREAM: CMD_SUBJECTS,
    OUTCOME_STREAM: ["kadaster.outcome.>"],
    EVT_STREAM: ["kadaster.evt.>"],
}
MAX_DELIVER = 20
SETTLE_AFTER = 5
"""Deliveries after which a message the ingest role cannot handle is recorded as rejected and acked."""
NOT_CLUSTERED = 10074  # JetStream: "replicas > 1 not supported in non-clustered mode"


async def ensure_streams(
    js: JetStreamContext, replicas: int = 3, duplicate_window: float = 120.0
) -> dict[str, int]:
    """Creates each missing stream with as many replicas as the cluster allows, up to `replicas`."""
    created: dict[str, int] = {}
    for name, subjects in STREAM_SUBJECTS.items():
        try:
            info = await js.stream_info(name)
            created[name] = info.config.num_replicas or 1
            continue
        except NotFoundError:
            pass
        created[name] = await _create_stream(js, name, subjects, min(replicas, 3), duplicate_window)
    return created


async def _create_stream(
    js: JetStreamContext,
    name: str,
    subjects: list[str],
    wanted: int,
    duplicate_window: float,
    patience: float = 20.0,
) -> int:
    """Fewer replicas when the server is not clustered at once; a cluster still forming is waited
    for `patience` seconds per replica count (a smaller cluster than wanted then gets what it allows)."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        config = StreamConfig(
            name=name,
            subjects=subjects,
            storage=StorageType.FILE,
            num_replicas=wanted,
            duplicate_window=duplicate_window,
            max_msg_size=1024 * 1024,
            # Outcomes of a batch are stored in one atomic write (adapters.nats.outcomes.AtomicBatch).
            allow_atomic=True if name == OUTCOME_STREAM else None,
        )
        try:
            await js.add_stream(config)
            log.info("stream_created", stream=name, replicas=wanted)
            return wanted
        except APIError as error:
            if error.err_code == NOT_CLUSTERED and wanted > 1:
                wanted = 1
                continue
            if asyncio.get_running_loop().time() > deadline:
                if wanted == 1:
                    raise
                wanted -= 1
                deadline = asyncio.get_running_loop().time() + patience
            log.info("stream_not_created_yet", stream=name, replicas=wanted, error=str(error))
        except Exception as error:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("stream_not_created_yet", stream=name, replicas=wanted, error=repr(error))
        await asyncio.sleep(0.5)


async def ensure_ingest_consumer(js: JetStreamContext, ack_wait: float = 60.0) -> None:
    try:
        await js.consumer_info(CMD_STREAM, INGEST_CONSUMER)
        return
    except NotFoundError:
        pass
    await js.add_consumer(
        CMD_STREAM,
        ConsumerConfig(
            durable_name=INGEST_CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_deliver=MAX_DELIVER,
            max_ack_pending=10_000,
        ),
    )
    log.info("consumer_created", stream=CMD_STREAM, consumer=INGEST_CONSUMER)
