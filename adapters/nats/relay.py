"""The relay role: publishes every public domain event once, as a CloudEvent, on `kadaster.evt.<type>`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import typing
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import Notification, Tracking
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from adapters import metrics
from adapters.ledger.publisher import CHECKPOINT_SUBJECT
from adapters.nats.streams import EVT_STREAM
from services.published_events import (
    BORROWED,
    PUBLISHED,
    PUBLISHED_BY_TOPIC,
    PublicEvent,
    borrows,
    causation,
    cloud_event,
    public_data,
    public_event,
)
from services.register import Register

log = structlog.get_logger("kadaster.relay")

RELAY_TRACKING = "relay"
ORIGINS_KEPT = 20_000
"""Creation events remembered, so a device's or a round's later events find their MID-ID or round id."""
SCAN_BACK = 1_000
"""How far back the newest message of the earlier shape is looked for behind the ledger's checkpoints."""

Message = tuple[str, bytes, str]
"""Subject, body and `Nats-Msg-Id` of one published event."""


@dataclass(frozen=True)
class Published:
    """Where the relay stands: the log position and the `sequence` of the newest event on the stream."""

    position: int
    sequence: int


def _fields(event: Any) -> dict[str, Any]:
    return dict(vars(event))


class EventTeller:
    """Turns notifications of the event store into the CloudEvents the outside reads.

    Runs on a worker thread (it reads the event store for the creation events it needs).
    """

    def __init__(self, register: Register) -> None:
        self.register = register
        self._origins: OrderedDict[UUID, dict[str, Any]] = OrderedDict()

    def messages(self, notifications: Sequence[Notification], sequence: int) -> tuple[list[Message], int]:
        """The messages of the public events among these, numbered after `sequence`; the last number."""
        told = [
            (n, public, _fields(self.register.mapper.to_domain_event(n)))
            for n in notifications
            if (public := public_event(n.topic)) is not None
        ]
        self._remember_origins(told)
        messages = []
        for notification, public, fields in told:
            sequence += 1
            event_class = PUBLISHED_BY_TOPIC[notification.topic][0]
            origin = self._origins.get(typing.cast(UUID, notification.originator_id), {})
            data = public_data(event_class, fields, origin)
            body = cloud_event(
                public.type,
                str(notification.id),
                fields["timestamp"],
                str(data[public.about]),
                data,
                sequence=sequence,
                causation=causation(fields),
            )
            messages.append((public.subject, json.dumps(body).encode(), str(notification.id)))
        return messages, sequence

    def _remember_origins(self, told: Sequence[tuple[Notification, PublicEvent, dict[str, Any]]]) -> None:
        """The creation events of the aggregates whose events borrow from them, from memory or the store."""
        missing: list[UUID] = []
        for notification, _, fields in told:
            if not borrows(notification.topic):
                continue
            key = typing.cast(UUID, notification.originator_id)
            if key in self._origins:
                self._origins.move_to_end(key)
            elif notification.originator_version == 1:
                self._keep(key, fields)
            else:
                missing.append(key)
        if missing:
            for key, created in self.register.created(list(dict.fromkeys(missing))).items():
                self._keep(key, _fields(created))

    def _keep(self, key: UUID, fields: dict[str, Any]) -> None:
        # Only what later events borrow (names and keys), not a round's policy inputs.
        self._origins[key] = {name: fields[name] for name in BORROWED if name in fields}
        while len(self._origins) > ORIGINS_KEPT:
            self._origins.popitem(last=False)


def event_messages(
    register: Register, notifications: Sequence[Notification], sequence: int = 0
) -> list[Message]:
    """The messages the relay would publish for these notifications (for tests and tools)."""
    return EventTeller(register).messages(notifications, sequence)[0]


async def run_relay(js: JetStreamContext, register: Register, stop: asyncio.Event, batch: int = 500) -> None:
    loop = asyncio.get_running_loop()
    recorder = register.process_recorder
    tracked = await loop.run_in_executor(None, recorder.max_tracking_id, RELAY_TRACKING) or 0
    published = await last_published(js)
    # The stream says where publishing stopped, even when the tracking missed the last batch.
    at = published if published.position >= tracked else Published(tracked, published.sequence)
    teller = EventTeller(register)
    log.info("relay_started", position=at.position, sequence=at.sequence)
    while not stop.is_set():
        try:
            at, relayed = await relay_once(js, teller, at, batch)
        except Exception:
            # The event store or NATS is away for a moment: nothing was tracked, try again.
            log.exception("relay_failed", position=at.position)
            await asyncio.sleep(1.0)
            continue
        if not relayed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)
    log.info("relay_stopped", position=at.position)


def read_published(body: bytes) -> Published:
    """Position and sequence of a message on KADASTER_EVT (before version 2: position only)."""
    try:
        message = json.loads(body or b"{}")
    except ValueError:
        return Published(0, 0)
    if not isinstance(message, dict):
        return Published(0, 0)
    if "specversion" in message:
        return Published(int(message.get("id", 0)), int(message.get("sequence", 0)))
    return Published(int(message.get("position", 0)), 0)


async def last_published(js: JetStreamContext) -> Published:
    """The newest domain event already on KADASTER_EVT, wherever the ledger's checkpoints put it.

    The newest message of each public subject, rather than a walk back from the end of the stream:
    a register that records only bookkeeping for a long while still gets a checkpoint every few
    seconds. Before any CloudEvent, the newest message of the earlier shape says where to go on.
    """
    subjects = sorted({public.subject for public in PUBLISHED.values()})
    found = await asyncio.gather(*(_last_on(js, subject) for subject in subjects))
    newest = max((m for m in found if m is not None), key=lambda m: m.seq or 0, default=None)
    if newest is not None:
        return read_published(newest.data or b"")
    return await _last_of_the_earlier_shape(js)


async def _last_on(js: JetStreamContext, subject: str) -> RawStreamMsg | None:
    try:
        return await js.get_last_msg(EVT_STREAM, subject)
    except NotFoundError:
        return None


async def _last_of_the_earlier_shape(js: JetStreamContext) -> Published:
    state = (await js.stream_info(EVT_STREAM)).state
    seq = state.last_seq
    while seq and seq >= max(state.first_seq, 1) and state.last_seq - seq < SCAN_BACK:
        try:
            message = await js.get_msg(EVT_STREAM, seq=seq)
        except NotFoundError:
            message = None
        if message is not None and message.subject != CHECKPOINT_SUBJECT:
            return read_published(message.data or b"")
        seq -= 1
    return Published(0, 0)


async def relay_once(
    js: JetStreamContext, teller: EventTeller, at: Published, batch: int
) -> tuple[Published, int]:
    """Publishes the next batch and tracks it; returns where it now stands and how many were read."""
    loop = asyncio.get_running_loop()
    recorder = teller.register.process_recorder
    notifications = await loop.run_in_executor(
        None, lambda: recorder.select_notifications(start=at.position, limit=batch, inclusive_of_start=False)
    )
    if not notifications:
        return at, 0
    messages, sequence = await loop.run_in_executor(None, teller.messages, notifications, at.sequence)
    # Sent in log order on one connection, acknowledged together: consumers see each
    # aggregate's events in sequence without one round trip per event.
    acks = [
        await js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id})
        for subject, body, msg_id in messages
    ]
    await asyncio.wait_for(asyncio.gather(*acks), timeout=30)
    at = Published(notifications[-1].id, sequence)
    # A crash before this line is covered on restart by last_published().
    await loop.run_in_executor(None, recorder.insert_tracking, Tracking(RELAY_TRACKING, at.position))
    head = await loop.run_in_executor(None, recorder.max_notification_id)
    metrics.RELAY_LAG.set(max(0, (head or 0) - at.position))
    return at, len(notifications)
