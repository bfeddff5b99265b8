"""The relay role: publishes every recorded domain event once on `kadaster.evt.<aggregate>.<event>`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import date, datetime
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import Notification, Tracking
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from adapters import metrics
from adapters.nats.streams import EVT_STREAM
from services.register import Register

log = structlog.get_logger("kadaster.relay")

RELAY_TRACKING = "relay"
NOT_RELAYED = ("domain.command_record:", "eventsourcing.")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def event_subject(topic: str) -> str:
    """`domain.mid_id:MidIdRecord.Issued` -> `kadaster.evt.mid_id_record.issued`."""
    _, _, qualname = topic.partition(":")
    aggregate, _, event_name = qualname.rpartition(".")
    return f"kadaster.evt.{_snake(aggregate)}.{_snake(event_name)}"


def event_message(register: Register, notification: Notification) -> tuple[str, bytes, str]:
    event: Any = register.mapper.to_domain_event(notification)
    data = {
        k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version", "timestamp")
    }
    event_id = f"{notification.originator_id}:{notification.originator_version}"
    body = {
        "id": event_id,
        "position": notification.id,
        "aggregate_id": str(notification.originator_id),
        "version": notification.originator_version,
        "type": notification.topic.partition(":")[2],
        "recorded_at": event.timestamp.isoformat(),
        "data": data,
    }
    return event_subject(notification.topic), json.dumps(body, default=_json_default).encode(), event_id


async def run_relay(js: JetStreamContext, register: Register, stop: asyncio.Event, batch: int = 500) -> None:
    loop = asyncio.get_running_loop()
    recorder = register.process_recorder
    tracked = await loop.run_in_executor(None, recorder.max_tracking_id, RELAY_TRACKING) or 0
    position = max(tracked, await last_published_position(js))
    log.info("relay_started", position=position)
    while not stop.is_set():
        try:
            position, relayed = await relay_once(js, register, position, batch)
        except Exception:
            # The event store or NATS is away for a moment: nothing was tracked, try again.
            log.exception("relay_failed", position=position)
            await asyncio.sleep(1.0)
            continue
        if not relayed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)
    log.info("relay_stopped", position=position)


async def last_published_position(js: JetStreamContext) -> int:
    """The log position of the newest event already on KADASTER_EVT (0 when none)."""
    info = await js.stream_info(EVT_STREAM)
    if not info.state.last_seq:
        return 0
    try:
        message = await js.get_msg(EVT_STREAM, seq=info.state.last_seq)
    except NotFoundError:
        return 0
    return int(json.loads(message.data or b"{}").get("position", 0))


async def relay_once(js: JetStreamContext, register: Register, position: int, batch: int) -> tuple[int, int]:
    """Publishes the next batch and tracks it; returns the new position and how many were read."""
    loop = asyncio.get_running_loop()
    recorder = register.process_recorder
    notifications = await loop.run_in_executor(
        None, lambda: recorder.select_notifications(start=position, limit=batch, inclusive_of_start=False)
    )
    if not notifications:
        return position, 0
    # Sent in log order on one connection, acknowledged together: consumers see each
    # aggregate's events in sequence without one round trip per event.
    acks = []
    for notification in notifications:
        if notification.topic.startswith(NOT_RELAYED):
            continue
        subject, body, event_id = event_message(register, notification)
        acks.append(await js.publish_async(subject, body, headers={"Nats-Msg-Id": event_id}))
    await asyncio.wait_for(asyncio.gather(*acks), timeout=30)
    position = notifications[-1].id
    # A crash before this line is covered on restart by last_published_position().
    await loop.run_in_executor(None, recorder.insert_tracking, Tracking(RELAY_TRACKING, position))
    head = await loop.run_in_executor(None, recorder.max_notification_id)
    metrics.RELAY_LAG.set(max(0, (head or 0) - position))
    return position, len(notifications)
