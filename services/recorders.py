"""The register's own queries on the event store: one recorder subclass per backend (SQLite here).

`event_store_env` names them in PROCESS_RECORDER_TOPIC, the library's setting for the class its
factory constructs, so the register asks its recorder and never looks at which backend it has.

Each also records, in the transaction that records events, one row in `kadaster_recordings`: the
transaction's first and last position and its moment (see `services.recordings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder

RECORDINGS = "kadaster_recordings"


def moment_text(moment: datetime) -> str:
    """One fixed-width UTC spelling, so moments compare as text on every database."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@runtime_checkable
class SelectsCreated(Protocol):
    def select_created(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The first event (version 1) of each of those aggregates that exists, in one query."""


@runtime_checkable
class RecordsTransactions(Protocol):
    """A recorder that keeps each store transaction's positions and moment."""

    def select_recordings(self, after: int, through: int) -> list[tuple[int, int, str]]:
        """(first, last, moment) of the transactions that recorded any position in (after, through]."""

    def select_cut(self, moment: str) -> int:
        """The last position of the last transaction recorded at or before `moment` (0: none)."""

    def select_first_recorded(self) -> int | None:
        """The first position any row covers (None: no row yet)."""

    def insert_recordings(self, rows: Sequence[tuple[int, int, str]]) -> None:
        """Writes rows for transactions recorded before the table existed (kept: ignored)."""


@runtime_checkable
class SelectsVersionsAt(Protocol):
    def select_versions_at(self, originator_ids: Sequence[UUID], position: int) -> dict[UUID, int]:
        """Each aggregate's last version recorded at or before log `position` (absent: none yet)."""


class SQLiteRegisterRecorder(SQLiteProcessRecorder):
    """The SQLite recorder, with the creation events of many aggregates in one query and the
    moment of each transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {RECORDINGS} (first_position BIGINT PRIMARY KEY, "
            "last_position BIGINT NOT NULL, recorded_at TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {RECORDINGS}_recorded_at "
            f"ON {RECORDINGS} (recorded_at, last_position)",
            f"CREATE INDEX IF NOT EXISTS {RECORDINGS}_last_position ON {RECORDINGS} (last_position)",
        ]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        positions = super()._insert_events(c, stored_events, **kwargs)
        if positions:
            # Never before the previous transaction's moment: moments rise with positions.
            c.execute(
                f"INSERT INTO {RECORDINGS} (first_position, last_position, recorded_at) "
                f"SELECT ?, ?, MAX(?, COALESCE((SELECT MAX(recorded_at) FROM {RECORDINGS}), ''))",
                (min(positions), max(positions), moment_text(datetime.now(UTC))),
            )
        return positions

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, tuple(params))
            return [tuple(row) for row in cursor.fetchall()]

    def select_recordings(self, after: int, through: int) -> list[tuple[int, int, str]]:
        rows = self._select(
            f"SELECT first_position, last_position, recorded_at FROM {RECORDINGS} "
            "WHERE last_position > ? AND first_position <= ? ORDER BY first_position",
            (after, through),
        )
        return [(int(f), int(last), str(m)) for f, last, m in rows]

    def select_cut(self, moment: str) -> int:
        rows = self._select(f"SELECT MAX(last_position) FROM {RECORDINGS} WHERE recorded_at <= ?", (moment,))
        return int(rows[0][0] or 0)

    def select_first_recorded(self) -> int | None:
        (first,) = self._select(f"SELECT MIN(first_position) FROM {RECORDINGS}")[0]
        return None if first is None else int(first)

    def insert_recordings(self, rows: Sequence[tuple[int, int, str]]) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(
                f"INSERT INTO {RECORDINGS} (first_position, last_position, recorded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (first_position) DO NOTHING",
                list(rows),
            )

    def select_versions_at(self, originator_ids: Sequence[UUID], position: int) -> dict[UUID, int]:
        if not originator_ids:
            return {}
        marks = ",".join("?" * len(originator_ids))
        rows = self._select(
            f"SELECT originator_id, MAX(originator_version) FROM {self.events_table_name} "
            f"WHERE originator_id IN ({marks}) AND rowid <= ? GROUP BY originator_id",
            [*(i.hex for i in originator_ids), position],
        )
        return {UUID(str(key)): int(version) for key, version in rows}

    def select_created(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        if not originator_ids:
            return []
        marks = ",".join("?" * len(originator_ids))
        statement = (
            f"SELECT * FROM {self.events_table_name} "
            f"WHERE originator_id IN ({marks}) AND originator_version = 1"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [i.hex for i in originator_ids])
            return [
                StoredEvent(
                    originator_id=self.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in cursor.fetchall()
            ]


SQLITE_RECORDER_TOPIC = f"{__name__}:{SQLiteRegisterRecorder.__qualname__}"
# A name, not an import: psycopg is loaded only by a register that uses PostgreSQL.
POSTGRES_RECORDER_TOPIC = "services.postgres_recorder:PostgresRegisterRecorder"
