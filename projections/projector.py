"""Keeps read models up to date: polls the notification log, applies, tracks, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol

from projections.store import ReadModelStore, Transaction

log = structlog.get_logger("kadaster.projections")

POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS rm_positions ("
    "name TEXT PRIMARY KEY, position BIGINT NOT NULL, version INTEGER NOT NULL)"
)


class Projection:
    """A read model: its tables and what each event does to them."""

    name: str = ""
    version: int = 1
    tables: Sequence[str] = ()
    ddl: Sequence[str] = ()

    def handlers(self) -> dict[str, Callable[[Transaction, Any], None]]:
        """Event class name (e.g. `MidIdRecord.Issued`) to the function applying it."""
        return {}

    def apply(self, tx: Transaction, event: DomainEventProtocol[Any]) -> None:
        handler = self._handlers.get(type(event).__qualname__)
        if handler is not None:
            handler(tx, event)

    @property
    def _handlers(self) -> dict[str, Callable[[Transaction, Any], None]]:
        cached: dict[str, Callable[[Transaction, Any], None]] | None = self.__dict__.get("_cached")
        if cached is None:
            cached = self.handlers()
            self.__dict__["_cached"] = cached
        return cached


class Projector:
    """Runs a set of projections against one event store and one read-model database."""

    def __init__(self, app: Application[Any], store: ReadModelStore, projections: Sequence[Projection]) -> None:
        self.app = app
        self.store = store
        self.projections = list(projections)
        self.create_tables()

    def create_tables(self) -> None:
        with self.store.transaction() as tx:
            tx.execute(POSITIONS_DDL)
            for projection in self.projections:
                for statement in projection.ddl:
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO rm_positions (name, position, version) VALUES (?, 0, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (projection.name, projection.version),
                )

    def position(self, name: str) -> int:
        with self.store.reading() as tx:
            found = tx.execute("SELECT position FROM rm_positions WHERE name = ?", (name,)).scalar()
        return int(found or 0)

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def catch_up(self, batch_size: int = 1000, limit: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> int:
        """Applies everything recorded so far; returns how many notifications were applied."""
        applied = 0
        head = self.head()
        start = min((self.position(p.name) for p in self.projections), default=head)
        while start < head and (limit is None or applied < limit):
            notifications = self.app.recorder.select_notifications(
                start=start, limit=batch_size, inclusive_of_start=False
            )
            if not notifications:
                break
            events = [(n.id, self.app.mapper.to_domain_event(n)) for n in notifications]
            last = notifications[-1].id
            with self.store.transaction() as tx:
                for projection in self.projections:
                    done = self._position_in(tx, projection.name)
                    for notification_id, event in events:
                        if notification_id > done:
                            projection.apply(tx, event)
                    if last > done:
                        self._track(tx, projection, last)
            applied += len(notifications)
            start = last
            if progress is not None:
                progress(start, head)
        return applied

    @staticmethod
    def _position_in(tx: Transaction, name: str) -> int:
        # Locks the row on PostgreSQL, so two projector instances never apply the same events twice.
        lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
        return int(tx.execute(f"SELECT position FROM rm_positions WHERE name = ?{lock}", (name,)).scalar() or 0)

    @staticmethod
    def _track(tx: Transaction, projection: Projection, position: int) -> None:
        tx.execute(
            "INSERT INTO rm_positions (name, position, version) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version",
            (projection.name, position, projection.version),
        )

    def wait_until(self, position: int, timeout: float = 5.0) -> bool:
        """Read-your-writes: waits until every projection has applied `position`."""
        deadline = time.monotonic() + timeout
        while min(self.position(p.name) for p in self.projections) < position:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
