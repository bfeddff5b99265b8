"""Keeps read models up to date: polls the notification log, applies, tracks, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEventProtocol

from projections.store import ReadModelStore, Transaction
from projections.versions import (
    APPLYING_DDL,
    TRANSACTIONS_DDL,
    applying,
    versioning_ddl,
    versions_of,
)
from projections.writes import Batch, table_specs

log = structlog.get_logger("kadaster.projections")

STATISTICS_EVERY = 20_000
"""Notifications applied between two refreshes of the planner's statistics on the read models."""

Handler = Callable[[Batch, Any], None]
"""Applies one event to a read model's tables."""

POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS rm_positions ("
    "name TEXT PRIMARY KEY, position BIGINT NOT NULL, version INTEGER NOT NULL)"
)


@dataclass(frozen=True)
class Recorded:
    """Events read from the log as (position, store transaction's first position, event), and the
    store transactions (first, last, moment) they complete."""

    events: list[tuple[int, int, Any]]
    complete: list[tuple[int, int, str]]


class Projection:
    """A read model: its tables and what each event does to them.

    Its SQL names its tables literally (`rm_...`) and `tables` lists every one of them: a rebuild
    runs the very same statements against shadow copies by renaming those names (see
    `projections.rebuild`). Handlers read and write only these tables and never read the clock.
    Bump `version` when the tables' shape or meaning changes: a projector that finds an older
    version recorded starts that read model again from the first event.
    """

    name: str = ""
    version: int = 1
    tables: Sequence[str] = ()
    ddl: Sequence[str] = ()
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {}
    """Tables whose every row version is kept (see `projections.versions`), to their key columns."""
    appended: ClassVar[Mapping[str, str]] = {}
    """Append-only tables, to the column holding each row's position: cut by it as of a moment."""
    write_behind: ClassVar[bool] = False
    """Its handlers change rows through `Batch.rows()` and `Batch.append()`, written at the end of
    each batch with its versions (see `projections.writes`), rather than by SQL and triggers."""

    def all_tables(self) -> list[str]:
        """Every table this read model writes: its own and its version tables."""
        return [*self.tables, *(versions_of(table) for table in self.versioned)]

    def statements(self, dialect: str) -> list[str]:
        """Its DDL, then its version tables and their triggers."""
        return [*self.ddl, *self.versioning(dialect)]

    def versioning(self, dialect: str) -> list[str]:
        """Its version tables, with the triggers that write them unless it writes behind."""
        return versioning_ddl(self.ddl, self.versioned, dialect, triggers=not self.write_behind)

    def prefetch(self, tx: Batch, events: Sequence[Any]) -> None:
        """Reads beforehand, in a query or two, the rows a batch's events will touch (optional)."""

    def handlers(self) -> Mapping[type[Aggregate.Event], Handler]:
        """Event class (e.g. `event_class(MidIdRecord, "Issued")`) to the function applying it."""
        return {}

    ignored: Collection[str] = ()
    """Events of the aggregates it reads that this read model deliberately leaves aside, by class name."""

    def apply(self, tx: Batch, event: DomainEventProtocol[Any], position: int) -> None:
        """`position`: the event's notification id, for read models that keep the log's order."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(tx, event)

    def wants(self, event_type: str) -> bool:
        """Whether events of this class name (e.g. `Device.Linked`) change this read model.

        Lets a rebuild skip decoding the rest. A projection that overrides `apply` is taken to
        want every event unless it says otherwise here.
        """
        if type(self).apply is not Projection.apply:
            return True
        return event_type in self._handled_names

    @property
    def _handlers(self) -> dict[type, Handler]:
        cached: dict[type, Handler] | None = self.__dict__.get("_cached")
        if cached is None:
            cached = dict(self.handlers())
            self.__dict__["_cached"] = cached
        return cached

    @property
    def _handled_names(self) -> frozenset[str]:
        return frozenset(cls.__qualname__ for cls in self._handlers)


class Projector:
    """Runs a set of projections against one event store and one read-model database."""

    def __init__(
        self,
        app: Application[Any],
        store: ReadModelStore,
        projections: Sequence[Projection],
        reset_outdated: bool = True,
        create: bool = True,
    ) -> None:
        """`create`: make the tables (and reset outdated ones) now; a rebuild's makes its own."""
        self.app = app
        self.store = store
        self.projections = list(projections)
        self.specs = table_specs(self.projections)
        self._triggered = any(p.versioned and not p.write_behind for p in self.projections)
        self._wanting: dict[type, list[Projection]] = {}
        if create:
            self.create_tables(reset_outdated)
        self._unanalysed = 0

    def projection(self, name: str) -> Projection:
        for projection in self.projections:
            if projection.name == name:
                return projection
        known = ", ".join(p.name for p in self.projections)
        raise KeyError(f"no read model named {name!r} (known: {known})")

    def create_tables(self, reset_outdated: bool = True) -> None:
        if self.tables_in_place():
            # DDL on tables that exist still takes their locks, and on PostgreSQL a live projector
            # in another process writing the same tables then deadlocks with it.
            return
        with self.store.transaction() as tx:
            tx.execute(POSITIONS_DDL)
            recorded = {
                row["name"]: int(row["version"])
                for row in tx.execute("SELECT name, version FROM rm_positions").all()
            }
            for statement in (*APPLYING_DDL, *TRANSACTIONS_DDL):
                tx.execute(statement)
            for projection in self.projections:
                stored = recorded.get(projection.name)
                if reset_outdated and stored is not None and stored != projection.version:
                    # Rows written by another version may lack columns or mean something else.
                    log.warning(
                        "read_model_reset",
                        name=projection.name,
                        stored_version=stored,
                        version=projection.version,
                    )
                    for table in projection.all_tables():
                        tx.execute(f"DROP TABLE IF EXISTS {table}")
                    tx.execute(
                        "UPDATE rm_positions SET position = 0, version = ? WHERE name = ?",
                        (projection.version, projection.name),
                    )
                for statement in projection.statements(tx.dialect):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO rm_positions (name, position, version) VALUES (?, 0, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (projection.name, projection.version),
                )

    def tables_in_place(self) -> bool:
        """Every table of every read model exists, recorded at this code's version."""
        wanted = {"rm_positions", "rm_applying", "rm_transactions"}
        for projection in self.projections:
            wanted.update(projection.all_tables())
        if not wanted <= self.store.tables():
            return False
        with self.store.reading() as tx:
            recorded = {
                row["name"]: int(row["version"])
                for row in tx.execute("SELECT name, version FROM rm_positions").all()
            }
        return all(recorded.get(p.name) == p.version for p in self.projections)

    def position(self, name: str) -> int:
        with self.store.reading() as tx:
            found = tx.execute("SELECT position FROM rm_positions WHERE name = ?", (name,)).scalar()
        return int(found or 0)

    def positions(self) -> dict[str, dict[str, int]]:
        """Every read model's recorded position and version."""
        with self.store.reading() as tx:
            rows = tx.execute("SELECT name, position, version FROM rm_positions").all()
        return {
            row["name"]: {"position": int(row["position"]), "version": int(row["version"])} for row in rows
        }

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def catch_up(
        self,
        batch_size: int = 250,
        limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Applies everything recorded so far; returns how many notifications were applied."""
        applied = 0
        head = self.head()
        start = min((self.position(p.name) for p in self.projections), default=head)
        while start < head and (limit is None or applied < limit):
            notifications = self.read(start, batch_size)
            if not notifications:
                break
            last = notifications[-1].id
            events = self.recorded(start, [(n.id, self.app.mapper.to_domain_event(n)) for n in notifications])
            with self.store.transaction() as tx:
                done = {p.name: self.position_in(tx, p.name) for p in self.projections}
                self.apply(tx, events, done)
                for projection in self.projections:
                    if last > done[projection.name]:
                        self.track(tx, projection, last)
            applied += len(notifications)
            start = last
            if progress is not None:
                progress(start, head)
        self._unanalysed += applied
        if self._unanalysed >= STATISTICS_EVERY:
            self.refresh_statistics()
        return applied

    def read(self, start: int, limit: int, stop: int | None = None) -> list[Any]:
        """The notifications after `start` (`limit` of them, or those there are), and on to the end of
        the store transaction the last one belongs to: a batch never ends inside one."""
        select = self.app.recorder.select_notifications
        notifications = list(select(start=start, limit=limit, stop=stop, inclusive_of_start=False))
        recordings = getattr(self.app, "recordings", None)
        if not notifications or recordings is None:
            return notifications
        last = notifications[-1].id
        covering = recordings.between(last - 1, last)
        end = covering[-1].last if covering else last
        if stop is not None:
            end = min(end, stop)
        while last < end:
            more = select(start=last, limit=end - last, stop=end, inclusive_of_start=False)
            if not more:
                break
            notifications.extend(more)
            last = more[-1].id
        return notifications

    def recorded(self, after: int, events: Sequence[tuple[int, Any]]) -> Recorded:
        """Each event with the store transaction that recorded it (its first position)."""
        if not events:
            return Recorded([], [])
        transactions: list[Any] = []
        recordings = getattr(self.app, "recordings", None)
        if recordings is not None:
            transactions = recordings.between(after, events[-1][0])
        out, index = [], 0
        for position, event in events:
            while index < len(transactions) and transactions[index].last < position:
                index += 1
            found = transactions[index] if index < len(transactions) else None
            first = found.first if found is not None and found.first <= position else position
            out.append((position, first, event))
        complete = [(t.first, t.last, t.moment) for t in transactions if t.last <= events[-1][0]]
        return Recorded(out, complete)

    def apply(self, tx: Transaction, recorded: Recorded, done: dict[str, int]) -> None:
        """Applies events to every projection that has not yet, one store transaction at a time,
        and notes the store transactions now applied whole: the moments a question may be cut at."""
        batch = Batch(tx, self.specs)
        for projection in self.projections:
            if projection.write_behind:
                later = done[projection.name]
                events = [event for position, _, event in recorded.events if position > later]
                projection.prefetch(batch, events)
        current = None
        for position, recording, event in recorded.events:
            if recording != current:
                if self._triggered:
                    applying(tx, recording)
                batch.recording = recording
                current = recording
            for projection in self._interested(type(event)):
                if position > done[projection.name]:
                    projection.apply(batch, event, position)
        batch.flush()
        if recorded.complete:
            tx.executemany(
                "INSERT INTO rm_transactions (first_position, last_position, recorded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (first_position) DO NOTHING",
                recorded.complete,
            )

    def _interested(self, kind: type) -> list[Projection]:
        """The read models that events of this class change (`Projection.wants`)."""
        found = self._wanting.get(kind)
        if found is None:
            found = self._wanting[kind] = [p for p in self.projections if p.wants(kind.__qualname__)]
        return found

    def refresh_statistics(self, tables: Sequence[str] | None = None, fresh: bool = False) -> None:
        """Lets the planner see how the read models grew; `fresh`: the tables were just built.

        SQLite has no autovacuum: without statistics it may walk the `status` index to find one
        institution's linked devices. PostgreSQL's autovacuum keeps live tables analysed, but tables
        a rebuild just filled need a vacuum (for index-only counts) and statistics at once.
        """
        names = list(tables) if tables is not None else [t for p in self.projections for t in p.all_tables()]
        self._unanalysed = 0
        if self.store.dialect == "sqlite":
            with self.store.transaction() as tx:
                # A sample per index is enough for the planner and keeps this a few milliseconds.
                tx.execute("PRAGMA analysis_limit = 1000")
                for table in names:
                    tx.execute(f"ANALYZE {table}")
        elif fresh:
            for table in names:
                # VACUUM cannot run inside a transaction: the store's connection autocommits.
                self.store.connection.execute(f"VACUUM (ANALYZE) {table}")

    @staticmethod
    def position_in(tx: Transaction, name: str) -> int:
        # Locks the row on PostgreSQL, so two projector instances never apply the same events twice.
        lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
        return int(
            tx.execute(f"SELECT position FROM rm_positions WHERE name = ?{lock}", (name,)).scalar() or 0
        )

    @staticmethod
    def track(tx: Transaction, projection: Projection, position: int) -> None:
        # The version stays what the tables were built with: only a reset or a rebuild changes it.
        tx.execute(
            "INSERT INTO rm_positions (name, position, version) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (projection.name, position, projection.version),
        )

    def lowest_position(self) -> int:
        """The position every projection has applied, in one query (a read model not yet tracked: 0)."""
        names = [p.name for p in self.projections]
        if not names:
            return self.head()
        with self.store.reading() as tx:
            rows = tx.execute(
                f"SELECT position FROM rm_positions WHERE name IN ({', '.join('?' for _ in names)})", names
            ).all()
        return min(int(row["position"]) for row in rows) if len(rows) == len(names) else 0

    def wait_until(self, position: int, timeout: float = 5.0) -> bool:
        """Read-your-writes: waits until every projection has applied `position`."""
        deadline = time.monotonic() + timeout
        while self.lowest_position() < position:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
