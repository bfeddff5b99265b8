"""The ledger's recorded checkpoints: a table beside the events, used through the event store's connections.

It borrows the eventsourcing recorder's datastore (its pool, lock timeouts and, on SQLite, its
writer interlock) instead of opening connections of its own, so the table always lives in the same
database and PostgreSQL schema as the events it vouches for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, OperationalError
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Composable, Identifier

from services.ledger import Checkpoint, LedgerBlock

TABLE = "ledger_checkpoints"
COLUMNS = (
    "tree_size, kind, block_start, last_notification_id, root_hash, chain_hash, signed_at, key_id, "
    "signature, version, entries, frontier"
)
PAGE = 64


class SqlCheckpointStore:
    """`ledger_checkpoints`: one row per recorded block, keyed by tree size."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        datastore = getattr(recorder, "datastore", None)
        if isinstance(datastore, SQLiteDatastore):
            self._sqlite: SQLiteDatastore | None = datastore
            self._postgres: PostgresDatastore | None = None
            self._table: Composable | str = TABLE
            self._mark = "?"
        elif isinstance(datastore, PostgresDatastore):
            self._sqlite, self._postgres = None, datastore
            self._table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(TABLE))
            self._mark = "%s"
        else:
            raise TypeError(
                f"the ledger needs a SQLite or PostgreSQL event store, not {type(recorder).__name__}"
            )
        self.create_table()

    def _sql(self, template: str) -> Any:
        """A statement with `{table}` and `{p}` (the driver's placeholder) filled in."""
        if self._postgres is not None:
            return SQL(template.replace("{p}", "%s")).format(table=self._table)
        return template.format(table=self._table, p="?")

    def _transaction(self, commit: bool) -> Any:
        if self._postgres is not None:
            return self._postgres.transaction(commit=commit)
        assert self._sqlite is not None
        return self._sqlite.transaction(commit=commit)

    def create_table(self) -> None:
        blob = "bytea" if self._postgres is not None else "BLOB"
        statement = self._sql(
            "CREATE TABLE IF NOT EXISTS {table} ("
            "tree_size BIGINT PRIMARY KEY, "
            "kind TEXT NOT NULL, "
            "block_start BIGINT NOT NULL, "
            "last_notification_id BIGINT NOT NULL, "
            "root_hash TEXT NOT NULL, "
            "chain_hash TEXT NOT NULL, "
            "signed_at TEXT NOT NULL, "
            "key_id TEXT NOT NULL, "
            "signature TEXT NOT NULL, "
            "version INTEGER NOT NULL, "
            f"entries {blob} NOT NULL, "
            f"frontier {blob} NOT NULL)"
        )
        with self._transaction(commit=True) as cursor:
            cursor.execute(statement)

    @staticmethod
    def _checkpoint(row: Any) -> Checkpoint:
        return Checkpoint(
            version=row["version"],
            tree_size=row["tree_size"],
            root_hash=row["root_hash"],
            chain_hash=row["chain_hash"],
            timestamp=row["signed_at"],
            key_id=row["key_id"],
            signature=row["signature"],
        )

    @classmethod
    def _block(cls, row: Any) -> LedgerBlock:
        return LedgerBlock(
            checkpoint=cls._checkpoint(row),
            regular=row["kind"] == "regular",
            start=row["block_start"],
            last_notification_id=row["last_notification_id"],
            entries=bytes(row["entries"]),
            frontier=bytes(row["frontier"]),
        )

    def last_block(self) -> LedgerBlock | None:
        statement = self._sql(f"SELECT {COLUMNS} FROM {{table}} ORDER BY tree_size DESC LIMIT 1")
        with self._transaction(commit=False) as cursor:
            cursor.execute(statement)
            row = cursor.fetchone()
        return None if row is None else self._block(row)

    def blocks(self, after: int = 0) -> Iterator[LedgerBlock]:
        """In order of tree size, a page at a time: a million events' entries never sit in memory at once."""
        statement = self._sql(
            f"SELECT {COLUMNS} FROM {{table}} WHERE tree_size > {{p}} ORDER BY tree_size LIMIT {PAGE}"
        )
        while True:
            with self._transaction(commit=False) as cursor:
                cursor.execute(statement, (after,))
                rows = cursor.fetchall()
            if not rows:
                return
            for row in rows:
                yield self._block(row)
            after = rows[-1]["tree_size"]

    def checkpoints(self, after: int = 0) -> list[Checkpoint]:
        statement = self._sql(
            "SELECT tree_size, root_hash, chain_hash, signed_at, key_id, signature, version "
            "FROM {table} WHERE tree_size > {p} ORDER BY tree_size"
        )
        with self._transaction(commit=False) as cursor:
            cursor.execute(statement, (after,))
            rows = cursor.fetchall()
        return [self._checkpoint(row) for row in rows]

    def append(self, blocks: Sequence[LedgerBlock], after: int) -> bool:
        """Adds blocks after tree size `after` and drops the old head, in one transaction.

        Returns False, recording nothing, when the ledger no longer ends at `after` (another relay
        advanced it meanwhile): that writer's blocks say the same, so there is nothing to redo.
        """
        marks = ", ".join([self._mark] * 12)
        insert = self._sql(f"INSERT INTO {{table}} ({COLUMNS}) VALUES ({marks})")
        rows = [
            (
                block.tree_size,
                "regular" if block.regular else "head",
                block.start,
                block.last_notification_id,
                block.checkpoint.root_hash,
                block.checkpoint.chain_hash,
                block.checkpoint.timestamp,
                block.checkpoint.key_id,
                block.checkpoint.signature,
                block.checkpoint.version,
                block.entries,
                block.frontier,
            )
            for block in blocks
        ]
        try:
            with self._transaction(commit=True) as cursor:
                if self._postgres is not None:
                    # Readers go on; a second writer waits here and then sees the new end.
                    cursor.execute(self._sql("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
                cursor.execute(self._sql("SELECT MAX(tree_size) AS tree_size FROM {table}"))
                row = cursor.fetchone()
                if (row["tree_size"] or 0) != after:
                    return False
                cursor.execute(self._sql("DELETE FROM {table} WHERE kind = 'head'"))
                for values in rows:
                    cursor.execute(insert, values)
        except OperationalError:
            # SQLite: another process wrote since this transaction's snapshot (SQLITE_BUSY_SNAPSHOT).
            return False
        return True
