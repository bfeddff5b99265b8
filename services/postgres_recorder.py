"""The register's own queries on a PostgreSQL event store, and each transaction's moment.

See `services.recorders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder

from services.recorders import RECORDINGS, moment_text


class PostgresRegisterRecorder(PostgresProcessRecorder):
    """The PostgreSQL recorder, with the creation events of many aggregates in one query and the
    moment of each transaction.

    A transaction's row is written after its events, under the lock the library takes on the
    events table, so two writers' moments are taken in the order of their positions.
    """

    @property
    def _recordings(self) -> str:
        return f'"{self.datastore.schema}".{RECORDINGS}'

    def _create_table(self, curs: Any) -> None:
        super()._create_table(curs)
        for statement in (
            f"CREATE TABLE IF NOT EXISTS {self._recordings} (first_position BIGINT PRIMARY KEY, "
            "last_position BIGINT NOT NULL, recorded_at TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {RECORDINGS}_recorded_at ON {self._recordings} "
            "(recorded_at, last_position)",
            f"CREATE INDEX IF NOT EXISTS {RECORDINGS}_last_position ON {self._recordings} (last_position)",
        ):
            curs.execute(statement)

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if positions:
            curs.execute(
                f"INSERT INTO {self._recordings} (first_position, last_position, recorded_at) SELECT %s, %s, "
                f"GREATEST(%s, COALESCE((SELECT MAX(recorded_at) FROM {self._recordings}), ''))",
                (min(positions), max(positions), moment_text(datetime.now(UTC))),
            )
        return positions

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql, tuple(params))
            return [tuple(row.values()) for row in cursor.fetchall()]

    def select_recordings(self, after: int, through: int) -> list[tuple[int, int, str]]:
        rows = self._select(
            f"SELECT first_position, last_position, recorded_at FROM {self._recordings} "
            "WHERE last_position > %s AND first_position <= %s ORDER BY first_position",
            (after, through),
        )
        return [(int(f), int(last), str(m)) for f, last, m in rows]

    def select_cut(self, moment: str) -> int:
        rows = self._select(
            f"SELECT MAX(last_position) FROM {self._recordings} WHERE recorded_at <= %s", (moment,)
        )
        return int(rows[0][0] or 0)

    def select_first_recorded(self) -> int | None:
        (first,) = self._select(f"SELECT MIN(first_position) FROM {self._recordings}")[0]
        return None if first is None else int(first)

    def insert_recordings(self, rows: Sequence[tuple[int, int, str]]) -> None:
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self._recordings} (first_position, last_position, recorded_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (first_position) DO NOTHING",
                list(rows),
            )

    def select_versions_at(self, originator_ids: Sequence[UUID], position: int) -> dict[UUID, int]:
        if not originator_ids:
            return {}
        rows = self._select(
            f'SELECT originator_id, MAX(originator_version) FROM "{self.datastore.schema}".'
            f'"{self.events_table_name}" WHERE originator_id = ANY(%s) AND notification_id <= %s '
            "GROUP BY originator_id",
            (list(originator_ids), position),
        )
        return {UUID(str(key)): int(version) for key, version in rows}

    def select_created(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        if not originator_ids:
            return []
        statement = (
            f'SELECT * FROM "{self.datastore.schema}"."{self.events_table_name}" '
            "WHERE originator_id = ANY(%s) AND originator_version = 1"
        )
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, [list(originator_ids)])
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in cursor.fetchall()
            ]
