"""The register as it stood at a past moment: read models replayed from the events recorded by then.

A moment T selects every event whose recording time (its timestamp) is at or before T. Each
aggregate's events are recorded in order, so this is each aggregate exactly as it stood at T, and
the read models built from those events, in log order, answer every query as they would have at T.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from itertools import takewhile
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, project_aggregate

from projections.projector import Projection, Projector
from projections.store import ReadModelStore

log = structlog.get_logger("kadaster.projections")

SKEW = timedelta(minutes=1)
"""How much earlier than its neighbours in the log an event may be stamped: writers stamp events
while deciding a batch and commit it within seconds, so the log is read up to one minute past T."""

Progress = Callable[[int, int], None]


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 moment; without a zone it is UTC, and a bare date means the end of that day (UTC)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), day_time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or date-time, e.g. 2024-04-23T10:00:00Z"
        ) from None
    return utc(moment)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Replayed:
    """What a replay did: events applied, the last log position read, and how long it took."""

    until: datetime | None
    events: int
    position: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "until": None if self.until is None else self.until.isoformat(),
            "events": self.events,
            "position": self.position,
            "seconds": round(self.seconds, 3),
        }


def replay(
    register: Any,
    store: ReadModelStore,
    projections: Sequence[Projection],
    until: datetime | None = None,
    progress: Progress | None = None,
    batch_size: int = 500,
) -> Replayed:
    """Builds `projections` in an empty `store` from the events recorded up to `until` (all: None)."""
    began = time.monotonic()
    projector = Projector(register, store, projections)
    moment = None if until is None else utc(until)
    head = projector.head()
    position, applied = 0, 0
    while position < head:
        notifications = register.recorder.select_notifications(
            start=position, limit=batch_size, inclusive_of_start=False
        )
        if not notifications:
            break
        events = []
        finished = False
        for notification in notifications:
            event = register.mapper.to_domain_event(notification)
            if moment is not None and utc(event.timestamp) > moment:
                finished = utc(event.timestamp) > moment + SKEW
                if finished:
                    break
                continue
            events.append((notification.id, event))
        last = notifications[-1].id if not finished else (events[-1][0] if events else position)
        with store.transaction() as tx:
            for projection in projector.projections:
                for notification_id, event in events:
                    projection.apply(tx, event, notification_id)
                projector.track(tx, projection, last)
        applied += len(events)
        position = last
        if progress is not None:
            progress(position, head)
        if finished:
            break
    projector.refresh_statistics(fresh=True)
    return Replayed(moment, applied, position, time.monotonic() - began)


class AsOfRegister:
    """The register's aggregates as they stood at a moment, for answers read from aggregates."""

    def __init__(self, register: Any, moment: datetime) -> None:
        self.register = register
        self.moment = utc(moment)
        self.repository = self
        self.recorder = register.recorder

    def _events(self, aggregate_id: UUID) -> Iterator[Any]:
        return takewhile(lambda e: utc(e.timestamp) <= self.moment, self.register.events.get(aggregate_id))

    def get(self, aggregate_id: UUID, version: int | None = None) -> Any:
        events = self._events(aggregate_id)
        if version is not None:
            events = takewhile(lambda e: e.originator_version <= version, events)
        aggregate = project_aggregate(None, events)
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        return aggregate

    def created(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any]:
        """The creation events of those aggregates that existed at the moment."""
        found = self.register.created(aggregate_ids)
        return {key: event for key, event in found.items() if utc(event.timestamp) <= self.moment}

    def position(self) -> int:
        return int(self.register.position())


class AsOfReadModels:
    """Read models replayed as of past moments, kept in SQLite files of their own.

    The most recent few moments asked for are kept, so an auditor's questions about one moment are
    replayed once. A moment less than `SKEW` ago may still gain events and is replayed every time.
    """

    def __init__(
        self,
        register: Any,
        projections: Callable[[], Sequence[Projection]],
        keep: int = 4,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.register = register
        self.projections = projections
        self.keep = keep
        self.now = now
        self._directory: Path | None = None
        self._kept: OrderedDict[datetime, ReadModelStore] = OrderedDict()
        self._lock = threading.Lock()
        self._built = 0

    def is_now(self, moment: datetime) -> bool:
        """Whether `moment` is now or later: the live read models already answer for it."""
        return utc(moment) >= self.now()

    def store(self, moment: datetime) -> ReadModelStore:
        moment = utc(moment)
        with self._lock:
            kept = self._kept.get(moment)
            if kept is not None:
                self._kept.move_to_end(moment)
                return kept
            self._built += 1
            if self._directory is None:
                self._directory = Path(tempfile.mkdtemp(prefix="kadaster-as-of-"))
            store = ReadModelStore(f"sqlite:///{self._directory / f'as-of-{self._built}.db'}", scratch=True)
            done = replay(self.register, store, self.projections(), moment)
            log.info("as_of_replayed", **done.as_dict())
            if moment + SKEW < self.now():
                self._kept[moment] = store
                while len(self._kept) > self.keep:
                    _, evicted = self._kept.popitem(last=False)
                    self._discard(evicted)
            return store

    def release(self, store: ReadModelStore) -> None:
        """Called when a query is done with a store: one that is not kept is removed."""
        with self._lock:
            if store not in self._kept.values():
                self._discard(store)

    @staticmethod
    def _discard(store: ReadModelStore) -> None:
        store.close()
        path = store.url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            for store in self._kept.values():
                store.close()
            self._kept.clear()
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None
