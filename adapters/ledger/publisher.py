"""Publishes the ledger's signed checkpoints on `kadaster.evt.ledger.checkpoint`, for auditors to keep."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from adapters.ledger.store import SqlCheckpointStore
from adapters.nats.streams import EVT_STREAM
from services.ledger import Checkpoint
from services.published_events import LEDGER_CHECKPOINT, cloud_event

log = structlog.get_logger("kadaster.ledger")

CHECKPOINT_SUBJECT = "kadaster.evt.ledger.checkpoint"


def checkpoint_message(checkpoint: Checkpoint) -> tuple[bytes, dict[str, str]]:
    """The signed checkpoint as a `ledger.checkpoint` CloudEvent.

    Its `data` is the checkpoint message as it was before CloudEvents (the checkpoint's fields and
    an `id`); `Checkpoint` ignores the `id` and it is not signed, so an auditor can keep `data` as a
    line of the file `audit verify --checkpoints` reads, or the whole message (see `read_checkpoint`).
    """
    # The id names the root too, so a head re-signed at the same size is still one message.
    message_id = f"ledger-checkpoint:{checkpoint.tree_size}:{checkpoint.root_hash[:16]}"
    data = {"id": message_id, **checkpoint.model_dump()}
    body = cloud_event(
        LEDGER_CHECKPOINT,
        message_id,
        datetime.fromisoformat(checkpoint.timestamp.replace("Z", "+00:00")),
        str(checkpoint.tree_size),
        data,
    )
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), {"Nats-Msg-Id": message_id}


def checkpoint_fields(message: Any) -> Any:
    """A checkpoint's fields from a published message of either shape: the CloudEvent's `data`, or itself."""
    if isinstance(message, dict) and "specversion" in message and isinstance(message.get("data"), dict):
        return message["data"]
    return message


def read_checkpoint(text: str | bytes) -> Checkpoint:
    """A checkpoint as published (a CloudEvent, or the older bare message) or as exported."""
    return Checkpoint.model_validate(checkpoint_fields(json.loads(text)))


async def publish_checkpoint(js: JetStreamContext, checkpoint: Checkpoint) -> None:
    body, headers = checkpoint_message(checkpoint)
    await js.publish(CHECKPOINT_SUBJECT, body, headers=headers)


async def newest_published_checkpoint(js: JetStreamContext) -> Checkpoint | None:
    """The newest checkpoint on KADASTER_EVT, read the way an auditor outside the service may."""
    try:
        message = await js.get_last_msg(EVT_STREAM, CHECKPOINT_SUBJECT)
    except NotFoundError:
        return None
    return read_checkpoint(message.data or b"{}")


async def last_published_tree_size(js: JetStreamContext) -> int:
    """The tree size of the newest checkpoint already on KADASTER_EVT (0 when none)."""
    newest = await newest_published_checkpoint(js)
    return 0 if newest is None else newest.tree_size


async def publish_new_checkpoints(js: JetStreamContext, store: SqlCheckpointStore, after: int) -> int:
    """Publishes the recorded checkpoints newer than `after`, in order; returns the newest one's size.

    Reading them back from the table (rather than publishing what `advance` returned) means a
    checkpoint recorded while NATS was away is published once it is back.
    """
    loop = asyncio.get_running_loop()
    checkpoints = await loop.run_in_executor(None, store.checkpoints, after)
    for checkpoint in checkpoints:
        await publish_checkpoint(js, checkpoint)
        after = checkpoint.tree_size
        log.debug("ledger_checkpoint_published", tree_size=checkpoint.tree_size, root=checkpoint.root_hash)
    return after
