"""The SQL database that holds read models: SQLite files or PostgreSQL, one small interface."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

Row = dict[str, Any]


class Transaction:
    """Runs statements written with `?` placeholders on either database."""

    def __init__(self, cursor: Any, dialect: str, bulk: Any = None) -> None:
        """`bulk`: a second cursor for `executemany` (PostgreSQL): in a pipeline, the answers to a
        batch of statements arrive after later ones were sent, and must not land on the cursor a
        later query reads its rows from."""
        self._cursor = cursor
        self._bulk = bulk if bulk is not None else cursor
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Transaction:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self._bulk.executemany(sql, [tuple(r) for r in rows])

    def all(self) -> list[Row]:
        # Rows first: in a PostgreSQL pipeline the description arrives with them.
        rows = self._cursor.fetchall()
        columns = [d[0] for d in self._cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def one(self) -> Row | None:
        row = self._cursor.fetchone()
        if row is None:
            return None
        columns = [d[0] for d in self._cursor.description or ()]
        return dict(zip(columns, row, strict=True))

    def scalar(self) -> Any:
        row = self._cursor.fetchone()
        return None if row is None else row[0]


class ReadModelStore:
    """A connection per thread; every write happens inside `transaction()`."""

    def __init__(self, url: str, scratch: bool = False) -> None:
        """`scratch`: a temporary SQLite file, rebuilt rather than recovered after a crash, written
        without syncing to disk; for read models replayed as of a past moment."""
        self.url = url
        self.scratch = scratch
        self.dialect = "sqlite" if url.startswith("sqlite:///") else "postgres"
        self._local = threading.local()
        self._opened: list[Any] = []
        self._opened_lock = threading.Lock()
        self._schema: str | None = None
        if self.dialect == "sqlite":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        else:
            query = parse_qs(urlparse(url).query)
            schema = next(iter(query.get("schema", [])), None)
            if schema and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
                raise ValueError(f"invalid schema name {schema!r}")
            self._schema = schema

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            conn: Any = sqlite3.connect(
                self.url.removeprefix("sqlite:///"), timeout=30, isolation_level=None, check_same_thread=False
            )
            if self.scratch:
                conn.execute("PRAGMA journal_mode=MEMORY")
                conn.execute("PRAGMA synchronous=OFF")
            else:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                # Checkpoints (each one syncs the file) every 80 MB of log rather than every 4 MB:
                # a read model's pages change again and again, and are then copied back once.
                conn.execute("PRAGMA wal_autocheckpoint=20000")
            # The version triggers' statement journals stay in memory rather than in temporary files.
            conn.execute("PRAGMA temp_store=MEMORY")
            return conn
        import psycopg

        parsed = urlparse(self.url)
        dsn = parsed._replace(query="").geturl()
        conn = psycopg.connect(dsn, autocommit=True)
        if self._schema:
            conn.execute(f"SET search_path TO {self._schema}")
        return conn

    @property
    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.dialect == "postgres" and (conn.closed or conn.broken):
            # The server restarted: a fresh connection, the next transaction simply retries.
            with self._opened_lock:
                if conn in self._opened:
                    self._opened.remove(conn)
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        conn = self.connection
        if self.dialect == "sqlite":
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(cursor, self.dialect)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        else:
            # Pipelined: a write does not wait for its answer, only a read does, so a batch of
            # projected events costs as many round trips as it has reads, not as it has statements.
            with conn.transaction(), conn.pipeline(), conn.cursor() as cursor, conn.cursor() as bulk:
                yield Transaction(cursor, self.dialect, bulk)

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        conn = self.connection
        if self.dialect == "sqlite":
            cursor = conn.cursor()
            cursor.execute("BEGIN")
            try:
                yield Transaction(cursor, self.dialect)
            finally:
                cursor.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as cursor:
                yield Transaction(cursor, self.dialect)

    def tables(self) -> set[str]:
        """The names of the tables in this read-model database (its schema, on PostgreSQL)."""
        if self.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
        with self.reading() as tx:
            return {str(row["name"]) for row in tx.execute(sql).all()}

    def close(self) -> None:
        """Closes the connections of every thread that used this store."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
