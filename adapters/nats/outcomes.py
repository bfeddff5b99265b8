"""Outcomes onto KADASTER_OUTCOME: a batch's outcomes in one atomic JetStream write, else one by one.

nats-py has no call for JetStream's atomic batch publish (ADR-50), so `AtomicBatch` speaks that
protocol itself over the public core-NATS calls of the client it is given: every message but the
last is published with the `Nats-Batch-Id` and `Nats-Batch-Sequence` headers, and the last one is a
request that also carries `Nats-Batch-Commit` and is answered by the stream's publish ack for the
whole batch. `OutcomePublisher` chooses the path, and counts which one it took and why in
`kadaster_outcome_batches_total`.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import Header

from adapters import metrics

log = structlog.get_logger("kadaster.outcomes")

BATCH_ID, BATCH_SEQUENCE, BATCH_COMMIT = (
    Header.BATCH_ID.value,
    Header.BATCH_SEQUENCE.value,
    Header.BATCH_COMMIT.value,
)
ATOMIC_BATCH_LIMIT = 1000
"""The most messages nats-server takes in one atomic batch."""
ATOMIC_DISABLED = 10174
"""JetStream's error code for a stream that does not allow atomic batches."""

Outcome = tuple[str, bytes, str]
"""Subject, body and message id of one outcome."""


class BatchRefused(Exception):
    """The stream did not store the batch; nothing of it is stored. `code` is JetStream's error code."""

    def __init__(self, description: str, code: int | None = None) -> None:
        super().__init__(description)
        self.code = code


class AtomicBatch:
    """JetStream's atomic batch publish over a core NATS connection, all or nothing."""

    def __init__(self, nc: NATS, timeout: float = 30.0) -> None:
        self.nc = nc
        self.timeout = timeout

    async def publish(self, messages: list[Outcome]) -> dict[str, object]:
        """Stores every message or none; returns the stream's publish ack of the batch.

        Raises BatchRefused when the stream answers with an error (for instance a stream that does
        not allow atomic batches, or a message id it already holds), and TimeoutError or a NATS
        error when no answer comes, in which case the batch may or may not be stored.
        """
        if not 1 <= len(messages) <= ATOMIC_BATCH_LIMIT:
            raise ValueError(f"an atomic batch holds 1 to {ATOMIC_BATCH_LIMIT} messages, not {len(messages)}")
        batch = uuid.uuid4().hex
        *first, (subject, body, msg_id) = messages
        for number, (each_subject, each_body, each_id) in enumerate(first, start=1):
            await self.nc.publish(
                each_subject,
                each_body,
                headers={BATCH_ID: batch, BATCH_SEQUENCE: str(number), "Nats-Msg-Id": each_id},
            )
        commit = {
            BATCH_ID: batch,
            BATCH_SEQUENCE: str(len(messages)),
            BATCH_COMMIT: "1",
            "Nats-Msg-Id": msg_id,
        }
        reply = await self.nc.request(subject, body, headers=commit, timeout=self.timeout)
        try:
            answer = json.loads(reply.data)
        except ValueError:
            raise BatchRefused(f"not a publish ack: {reply.data[:80]!r}") from None
        if not isinstance(answer, dict):
            raise BatchRefused(f"not a publish ack: {answer!r}")
        error = answer.get("error")
        if error:
            raise BatchRefused(str(error.get("description")), error.get("err_code"))
        return answer


class OutcomePublisher:
    """Stores a batch's outcomes: atomically when the stream allows it, else one by one (deduplicated).

    A stream that syncs every write to disk then syncs once per batch instead of once per outcome.
    A batch is refused whole when one of its outcomes is already stored (a redelivery): they then go
    one by one, and the stored ones are dropped as duplicates.
    """

    def __init__(self, nc: NATS, js: JetStreamContext) -> None:
        self.js = js
        self.batch = AtomicBatch(nc)
        self.stream_refuses_batches = False

    async def publish(self, outcomes: list[Outcome]) -> str:
        """Stores every outcome once; returns the path taken: `atomic` or `one_by_one`."""
        reason = await self._atomically(outcomes)
        metrics.OUTCOME_BATCHES.labels("atomic" if reason is None else "one_by_one", reason or "").inc()
        if reason is None:
            return "atomic"
        acks = [
            await self.js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id})
            for subject, body, msg_id in outcomes
        ]
        await asyncio.wait_for(asyncio.gather(*acks), timeout=30)
        return "one_by_one"

    async def _atomically(self, outcomes: list[Outcome]) -> str | None:
        """None when stored in one atomic write, else why not."""
        if len(outcomes) < 2:
            return "single"
        if len(outcomes) > ATOMIC_BATCH_LIMIT:
            return "too_large"
        if self.stream_refuses_batches:
            return "stream_refuses_batches"
        try:
            await self.batch.publish(outcomes)
        except BatchRefused as refused:
            if refused.code == ATOMIC_DISABLED:
                self.stream_refuses_batches = True
                log.warning(
                    "outcome_batches_not_allowed",
                    hint="the outcome stream was made without allow_atomic; each outcome is now synced alone",
                )
                return "stream_refuses_batches"
            log.debug("outcome_batch_refused", size=len(outcomes), error=str(refused))
            return "refused"
        except (TimeoutError, nats.errors.Error) as error:
            log.warning("outcome_batch_unconfirmed", size=len(outcomes), error=type(error).__name__)
            return "unconfirmed"
        return None
