"""The register's own queries on the event store: one recorder subclass per backend (SQLite here).

`event_store_env` names them in PROCESS_RECORDER_TOPIC, the library's setting for the class its
factory constructs, so the register asks its recorder and never looks at which backend it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteProcessRecorder


@runtime_checkable
class SelectsCreated(Protocol):
    def select_created(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The first event (version 1) of each of those aggregates that exists, in one query."""


class SQLiteRegisterRecorder(SQLiteProcessRecorder):
    """The SQLite recorder, with the creation events of many aggregates in one query."""

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
