"""The contract's JetStream streams and the service's durable consumers, created when missing."""

from __future__ import annotations

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


async def ensure_streams(js: JetStreamContext, replicas: int = 3, duplicate_window: float = 120.0) -> dict[str, int]:
    """Creates each missing stream with as many replicas as the cluster allows, up to `replicas`."""
    created: dict[str, int] = {}
    for name, subjects in STREAM_SUBJECTS.items():
        try:
            info = await js.stream_info(name)
            created[name] = info.config.num_replicas or 1
            continue
        except NotFoundError:
            pass
        for wanted in range(min(replicas, 3), 0, -1):
            config = StreamConfig(
                name=name,
                subjects=subjects,
                storage=StorageType.FILE,
                num_replicas=wanted,
                duplicate_window=duplicate_window,
                max_msg_size=1024 * 1024,
            )
            try:
                await js.add_stream(config)
                created[name] = wanted
                log.info("stream_created", stream=name, replicas=wanted)
                break
            except APIError as error:
                if wanted == 1:
                    raise
                log.info("stream_replicas_unavailable", stream=name, replicas=wanted, error=str(error))
    return created


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
