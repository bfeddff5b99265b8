"""Publishes the ledger's signed checkpoints on `kadaster.evt.ledger.checkpoint`, for auditors to keep."""

from __future__ import annotations

import asyncio
import json

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from adapters.ledger.store import SqlCheckpointStore
from adapters.nats.streams import EVT_STREAM
from services.ledger import Checkpoint

log = structlog.get_logger("kadaster.ledger")

CHECKPOINT_SUBJECT = "kadaster.evt.ledger.checkpoint"


def checkpoint_message(checkpoint: Checkpoint) -> tuple[bytes, dict[str, str]]:
    """The signed checkpoint as JSON, plus an `id` as every message on KADASTER_EVT has.

    `Checkpoint` ignores the `id` when reading, and it is not signed, so an auditor can keep the
    message as it came, as a line of the file `audit verify --checkpoints` reads.
    """
    # The id names the root too, so a head re-signed at the same size is still one message.
    message_id = f"ledger-checkpoint:{checkpoint.tree_size}:{checkpoint.root_hash[:16]}"
    body = {"id": message_id, **checkpoint.model_dump()}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), {"Nats-Msg-Id": message_id}


async def publish_checkpoint(js: JetStreamContext, checkpoint: Checkpoint) -> None:
    body, headers = checkpoint_message(checkpoint)
    await js.publish(CHECKPOINT_SUBJECT, body, headers=headers)


async def last_published_tree_size(js: JetStreamContext) -> int:
    """The tree size of the newest checkpoint already on KADASTER_EVT (0 when none)."""
    try:
        message = await js.get_last_msg(EVT_STREAM, CHECKPOINT_SUBJECT)
    except NotFoundError:
        return 0
    return int(json.loads(message.data or b"{}").get("tree_size", 0))


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
