"""The register's own queries on a PostgreSQL event store (see services.recorders)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder


class PostgresRegisterRecorder(PostgresProcessRecorder):
    """The PostgreSQL recorder, with the creation events of many aggregates in one query."""

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
