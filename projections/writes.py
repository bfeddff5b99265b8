"""Write-behind: a batch of events becomes, per table, one set of row changes written with executemany.

A read model that writes behind (`Projection.write_behind`) reads and changes its rows in memory
through `Batch.rows(table)`; when the batch ends, each table's changes are written at once: deleted
rows, then upserted ones, and for a versioned table the versions each store transaction made, closed
and opened with `executemany`. Which rows a batch touches are read in one query per lookup where the
read model says so beforehand (`Projection.prefetch`), so PostgreSQL waits for as few answers as
SQLite.

A version holds from the store transaction that made a row what it is (`recorded_from`) to the one
that changed or removed it (`recorded_to`); a row a store transaction leaves as it found it gets no
version. A batch always ends at the end of a store transaction (`Projector.catch_up` reads on to it),
so the versions written do not depend on where batches begin and end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.store import Row, Transaction
from projections.versions import RewritingTransaction, table_shape, versions_of

_TABLE_NAME = re.compile(r"\brm_\w+")
CHUNK = 500
"""Values per `IN (...)` lookup: well within either database's limit on parameters."""


@dataclass(frozen=True)
class TableSpec:
    """A table as its DDL declares it: columns in order, primary key, unique columns; and whether
    its row versions are kept."""

    name: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    unique: tuple[str, ...] = ()
    versioned: bool = False

    @classmethod
    def of(cls, ddl: Sequence[str], table: str, versioned: bool) -> TableSpec:
        columns, keys, unique = table_shape(ddl, table)
        return cls(table, tuple(columns), tuple(keys), tuple(unique), versioned)


@dataclass
class _Row:
    """One row's story in this batch: as it was before, and its state after each store transaction."""

    base: Row | None
    changes: list[tuple[int, Row | None]] = field(default_factory=list)
    known: bool = True
    """Whether `base` is known: read from the database, or known absent. A row put without either
    closes whatever version may be open for its key."""

    @property
    def current(self) -> Row | None:
        return self.changes[-1][1] if self.changes else self.base


class Rows:
    """One table's rows as this batch sees them: read once, changed in memory, written at the end."""

    def __init__(self, batch: Batch, spec: TableSpec) -> None:
        self.batch = batch
        self.spec = spec
        self._rows: dict[tuple[Any, ...], _Row] = {}
        self._absent: set[tuple[Any, ...]] = set()
        self._by: dict[str, dict[Any, set[tuple[Any, ...]]]] = {}
        self._loaded: dict[str, set[Any]] = {}
        self._every_column = frozenset(spec.columns)

    # reading

    def get(self, *key: Any) -> Row | None:
        """The row with this primary key, or None; a copy, changed only through `put`."""
        known = self._rows.get(key)
        if known is None and key not in self._absent:
            where = " AND ".join(f"{k} = ?" for k in self.spec.keys)
            found = self.batch.tx.execute(f"SELECT * FROM {self.spec.name} WHERE {where}", key).one()
            if found is None:
                self._absent.add(key)
                return None
            known = self._remember(found)
        current = None if known is None else known.current
        return None if current is None else dict(current)

    def find(self, column: str, value: Any) -> Row | None:
        """The one row whose `column` (declared unique) holds `value`, or None."""
        found = self.where(column, value)
        return found[0] if found else None

    def where(self, column: str, value: Any) -> list[Row]:
        """Every row whose `column` holds `value`, in primary-key order; copies."""
        if value not in self._loaded.get(column, ()):
            self.load(column, [value])
        keys = sorted(self._lookup(column).get(value, ()))
        rows = [self._rows[key].current for key in keys]
        return [dict(row) for row in rows if row is not None and row[column] == value]

    def load(self, column: str, values: Iterable[Any]) -> None:
        """Reads every row whose `column` holds one of `values`, in one query per chunk."""
        self._lookup(column)
        loaded = self._loaded.setdefault(column, set())
        wanted = sorted({v for v in values if v is not None and v not in loaded}, key=repr)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for found in self.batch.tx.execute(
                f"SELECT * FROM {self.spec.name} WHERE {column} IN ({marks})", chunk
            ).all():
                key = self._key(found)
                if key not in self._rows:
                    self._remember(found)
        loaded.update(wanted)
        if self.spec.keys == (column,):
            self._absent.update((v,) for v in wanted if (v,) not in self._rows)

    # changing

    def put(self, row: Mapping[str, Any]) -> None:
        """Makes the row with this key (every column given) what `row` says, from this store
        transaction on."""
        if not self._every_column <= row.keys():
            missing = sorted(self._every_column - row.keys())
            raise ValueError(f"{self.spec.name}: a row needs every column; missing {missing}")
        self._change(self._key(row), {column: row[column] for column in self.spec.columns})

    def update(self, key: Sequence[Any], **values: Any) -> bool:
        """Changes some columns of the row with this key; False when there is no such row."""
        row = self.get(*key)
        if row is None:
            return False
        row.update(values)
        self.put(row)
        return True

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Adds the row unless one with its key exists; whether it did."""
        if self.get(*self._key(row)) is not None:
            return False
        self.put(row)
        return True

    def delete(self, *key: Any) -> None:
        if self.get(*key) is not None:
            self._change(tuple(key), None)

    # writing

    def flush(self) -> None:
        """Writes what this batch changed: current rows, and the versions of a versioned table."""
        spec, tx = self.spec, self.batch.tx
        deleted: list[tuple[Any, ...]] = []
        upserted: list[tuple[Any, ...]] = []
        closed: list[tuple[Any, ...]] = []
        opened: list[tuple[Any, ...]] = []
        for key, story in self._rows.items():
            if not story.changes:
                continue
            final = story.current
            if final != story.base:
                if final is None:
                    deleted.append(key)
                else:
                    upserted.append(tuple(final[c] for c in spec.columns))
            if spec.versioned:
                self._versions(key, story, closed, opened)
        where = " AND ".join(f"{k} = ?" for k in spec.keys)
        if deleted:
            tx.executemany(f"DELETE FROM {spec.name} WHERE {where}", deleted)
        if upserted:
            others = [c for c in spec.columns if c not in spec.keys]
            sets = ", ".join(f"{c} = excluded.{c}" for c in others)
            action = f"DO UPDATE SET {sets}" if others else "DO NOTHING"
            tx.executemany(
                f"INSERT INTO {spec.name} ({', '.join(spec.columns)}) "
                f"VALUES ({', '.join('?' for _ in spec.columns)}) "
                f"ON CONFLICT ({', '.join(spec.keys)}) {action}",
                upserted,
            )
        versions = versions_of(spec.name)
        if closed:
            tx.executemany(
                f"UPDATE {versions} SET recorded_to = ? WHERE {where} AND recorded_to IS NULL", closed
            )
        if opened:
            tx.executemany(
                f"INSERT INTO {versions} (recorded_from, recorded_to, {', '.join(spec.columns)}) "
                f"VALUES (?, ?, {', '.join('?' for _ in spec.columns)})",
                opened,
            )
        self._rows.clear()
        self._absent.clear()
        self._by.clear()
        self._loaded.clear()

    def _versions(
        self,
        key: tuple[Any, ...],
        story: _Row,
        closed: list[tuple[Any, ...]],
        opened: list[tuple[Any, ...]],
    ) -> None:
        """The versions of one row: a new one for each store transaction that left it different."""
        previous = story.base
        written: list[list[Any]] = []
        unknown = not story.known
        for recording, state in story.changes:
            if state == previous and not unknown:
                continue
            if unknown:
                closed.append((recording, *key))  # if the database holds a version, it ends here
                unknown = False
            elif previous is not None:
                # What it was until now: written in this batch, or already in the database.
                if written:
                    written[-1][1] = recording
                else:
                    closed.append((recording, *key))
            if state is not None:
                written.append([recording, None, *(state[c] for c in self.spec.columns)])
            previous = state
        opened.extend(tuple(version) for version in written)

    def _change(self, key: tuple[Any, ...], state: Row | None) -> None:
        story = self._rows.get(key)
        if story is None:
            story = self._rows[key] = _Row(None, known=key in self._absent)
            self._absent.discard(key)
        recording = self.batch.recording
        if story.changes and story.changes[-1][0] == recording:
            story.changes[-1] = (recording, state)
        else:
            story.changes.append((recording, state))
        if state is not None:
            self._index(key, state)

    def _remember(self, found: Row) -> _Row:
        key = self._key(found)
        story = self._rows[key] = _Row(dict(found))
        self._absent.discard(key)
        self._index(key, found)
        return story

    def _index(self, key: tuple[Any, ...], row: Row) -> None:
        for column, index in self._by.items():
            index.setdefault(row[column], set()).add(key)

    def _lookup(self, column: str) -> dict[Any, set[tuple[Any, ...]]]:
        """The rows in memory by `column`, kept from the first lookup by it on."""
        index = self._by.get(column)
        if index is None:
            if column not in self.spec.columns:
                raise KeyError(f"{self.spec.name} has no column {column}")
            index = self._by[column] = {}
            for key, story in self._rows.items():
                for _, state in (("base", story.base), *story.changes):
                    if state is not None:
                        index.setdefault(state[column], set()).add(key)
        return index

    def _key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[k] for k in self.spec.keys)


class Batch(RewritingTransaction):
    """A transaction that holds back a batch's writes: rows of write-behind tables, and appended rows.

    Plain statements pass through; one that names a table with appended rows held back writes them
    first, so it sees them. A versioned table of a read model that writes behind, or one this batch
    holds rows of, is read and changed only through `rows()`: its versions are written from there.
    """

    def __init__(self, inner: Transaction, specs: Mapping[str, TableSpec]) -> None:
        super().__init__(inner)
        self.tx: Transaction = inner
        self.specs = specs
        self.recording = 0
        self._rows: dict[str, Rows] = {}
        self._appended: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
        self._names: dict[str, tuple[str, ...]] = {}

    def rows(self, table: str) -> Rows:
        held = self._rows.get(table)
        if held is None:
            spec = self.specs.get(table)
            if spec is None:
                raise KeyError(f"{table} is not a table of a read model that writes behind")
            held = self._rows[table] = Rows(self, spec)
        return held

    def append(self, table: str, row: Mapping[str, Any]) -> None:
        """Adds a row to an append-only table (kept when its key is there already)."""
        columns = tuple(row)
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            "ON CONFLICT DO NOTHING"
        )
        self._appended.setdefault(table, {}).setdefault(sql, []).append(tuple(row.values()))

    def rewrite(self, sql: str) -> str:
        names = self._names.get(sql)
        if names is None:
            names = self._names[sql] = tuple(set(_TABLE_NAME.findall(sql)))
        for name in names:
            if name in self._appended:
                self._flush_appended(name)
            spec = self.specs.get(name)
            if spec is not None and (spec.versioned or name in self._rows):
                raise RuntimeError(f"{name} writes behind: read and change it through Batch.rows()")
        return sql

    def flush(self) -> None:
        """Writes everything held back, table by table."""
        for table in list(self._appended):
            self._flush_appended(table)
        for held in self._rows.values():
            held.flush()

    def _flush_appended(self, table: str) -> None:
        for sql, rows in self._appended.pop(table, {}).items():
            self.tx.executemany(sql, rows)


def table_specs(projections: Iterable[Any]) -> dict[str, TableSpec]:
    """The tables of read models that write behind, each with its shape; not their append-only ones,
    which take rows through `Batch.append` and answer plain SQL."""
    specs: dict[str, TableSpec] = {}
    for projection in projections:
        if not projection.write_behind:
            continue
        for table in projection.tables:
            if table not in projection.appended:
                specs[table] = TableSpec.of(projection.ddl, table, table in projection.versioned)
    return specs
