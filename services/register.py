"""The kadaster's event-sourced application: one event store for every aggregate."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)

from domain.mid_id import MidIdSequence
from services.recorders import (
    POSTGRES_RECORDER_TOPIC,
    SQLITE_RECORDER_TOPIC,
    RecordsTransactions,
    SelectsCreated,
    SelectsVersionsAt,
)
from services.recordings import Recordings

INGEST_TRACKING = "ingest"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class Register(Application[UUID]):
    """Every aggregate of the kadaster lives in this application's event store."""

    name = "kadaster"
    snapshotting_intervals = {MidIdSequence: 100}
    # Hot aggregates (the MID-ID sequence above all) stay in memory and are fast-forwarded with
    # only the events other processes recorded since, instead of being replayed for every batch.
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }

    def __init__(self, env: Any = None) -> None:
        super().__init__(env=env)
        recorder = self.recorder
        self.recordings = Recordings(recorder) if isinstance(recorder, RecordsTransactions) else None
        if self.recordings is not None:
            # A store written before transactions had moments gets them once, from its events.
            self.recordings.migrate(
                self.position(), recorder.select_notifications, self.mapper.to_domain_event
            )

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def record(
        self,
        events: Sequence[DomainEventProtocol[UUID]],
        aggregates: Iterable[Aggregate],
        tracking: Tracking | None,
    ) -> list[Recording[UUID]]:
        """Records the events of several aggregates and a tracking position atomically."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
        # Filled directly: collect_events() checks protocols per event, which costs more than the write.
        processing_event.events = list(events)
        processing_event.aggregates = {aggregate.id: aggregate for aggregate in aggregates}
        recordings = self._record(processing_event)
        cache = self.repository.cache
        if cache is not None:
            # What was just committed is the newest state: the next batch needs no fast-forward.
            for aggregate in processing_event.aggregates.values():
                cache.put(aggregate.id, aggregate)
        self._snapshot_when_due(processing_event)
        return recordings

    def _snapshot_when_due(self, processing_event: ProcessingEvent[UUID]) -> None:
        """One snapshot per aggregate whose events crossed a multiple of its interval in this batch.

        Taken from the state just recorded, which is in memory: the library's own way replays the
        aggregate from the store once for every multiple crossed.
        """
        if self.snapshots is None or not self.snapshotting_intervals:
            return
        due: dict[UUID, Any] = {}
        for event in processing_event.events:
            aggregate: Any = processing_event.aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is not None and event.originator_version % interval == 0:
                due[aggregate.id] = aggregate
        for aggregate in due.values():
            snapshot_class: Any = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
            self.snapshots.put([snapshot_class.take(aggregate)])

    def load(self, kind: type[Aggregate], aggregate_id: UUID) -> Aggregate | None:
        """The aggregate as last recorded, or None if it does not exist; the caller copies before changing it.

        Kinds that are never snapshotted are read from their events alone: the library would first
        look for a snapshot, a second query for every aggregate a command finds missing.
        """
        repository = self.repository
        cache = repository.cache
        if cache is not None and kind not in self.snapshotting_intervals:
            try:
                cache.get(aggregate_id)
            except KeyError:
                aggregate: Any = project_aggregate(None, self.events.get(aggregate_id))
                if aggregate is None:
                    return None
                cache.put(aggregate_id, aggregate)
                # Others fast-forward what is cached in place; the caller gets a copy of its own.
                return copy.deepcopy(aggregate)
        try:
            loaded: Any = repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return loaded

    def created(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, DomainEventProtocol[UUID]]:
        """The creation events of those aggregates that exist, in one query instead of one each."""
        if not aggregate_ids:
            return {}
        recorder = self.recorder
        if isinstance(recorder, SelectsCreated):
            stored = recorder.select_created(aggregate_ids)
        else:
            stored = [e for i in aggregate_ids for e in recorder.select_events(i, lte=1, limit=1)]
        found: dict[UUID, DomainEventProtocol[UUID]] = {}
        for each in stored:
            event = self.mapper.to_domain_event(each)
            found[event.originator_id] = event
        return found

    def versions_at(self, aggregate_ids: Sequence[UUID], position: int) -> dict[UUID, int]:
        """Each aggregate's last version recorded at or before log `position` (absent: none yet)."""
        if not aggregate_ids or position <= 0:
            return {}
        recorder = self.recorder
        if isinstance(recorder, SelectsVersionsAt):
            return recorder.select_versions_at(aggregate_ids, position)
        # A store without the register's own queries: its log up to `position`, read once.
        wanted, found = set(aggregate_ids), dict[UUID, int]()
        for notification in recorder.select_notifications(start=1, limit=position, stop=position):
            key = notification.originator_id
            if isinstance(key, UUID) and key in wanted:
                found[key] = notification.originator_version
        return found

    def exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def position(self) -> int:
        return self.recorder.max_notification_id() or 0


def event_store_env(database_url: str, schema: str | None = None) -> dict[str, Any]:
    """The eventsourcing library's settings for a `sqlite:///` or `postgresql://` URL."""
    if database_url.startswith("sqlite:///"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "PROCESS_RECORDER_TOPIC": SQLITE_RECORDER_TOPIC,
            "SQLITE_DBNAME": database_url.removeprefix("sqlite:///"),
            "SQLITE_LOCK_TIMEOUT": "30",
            # Redelivered messages can arrive below the highest position already tracked.
            "SINGLE_ROW_TRACKING": "n",
        }
    url = urlparse(database_url)
    query = parse_qs(url.query)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "PROCESS_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
        "POSTGRES_DBNAME": (url.path or "/postgres").lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "SINGLE_ROW_TRACKING": "n",
    }
    chosen_schema = schema or next(iter(query.get("schema", [])), None)
    if chosen_schema:
        env["POSTGRES_SCHEMA"] = chosen_schema
    return env
