"""Row versions on the recording axis: every read-model row from when to when the register held it.

A versioned table `T` keeps its current rows as before, and a table `T_versions` with every version
of every row, each carrying `recorded_from` and `recorded_to`: the first position of the store
transaction that wrote it and of the one that replaced or removed it (open: still current).
Triggers write the versions, so a projection's handlers stay plain SQL on the current rows. Writes
within one store transaction replace each other: a version is only ever seen at a cut between
transactions. "As of" a cut C is the same query with every versioned table read as its versions
where `recorded_from <= C < recorded_to`; append-only tables carry their position and are cut by it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from projections.store import Transaction

SUFFIX = "_versions"
APPLYING_DDL = (
    "CREATE TABLE IF NOT EXISTS rm_applying (id INTEGER PRIMARY KEY, recording BIGINT NOT NULL)",
    "INSERT INTO rm_applying (id, recording) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
)
"""SQLite's triggers read which store transaction is being applied from here (PostgreSQL's from a
transaction-local setting, so concurrent writers never wait on one row)."""

TRANSACTIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS rm_transactions (first_position BIGINT PRIMARY KEY, "
    "last_position BIGINT NOT NULL, recorded_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rm_transactions_recorded_at ON rm_transactions (recorded_at, last_position)",
)
"""The store's transactions the read models have applied: where a moment is cut."""

_CREATE_TABLE = re.compile(r"(?is)^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*)\)\s*$")
_CREATE_INDEX = re.compile(
    r"(?is)^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(\w+)\s*\((.*)\)\s*$"
)


def versions_of(table: str) -> str:
    return f"{table}{SUFFIX}"


def _split(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _columns(ddl: Sequence[str], table: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The table's columns with their types, and the columns it declares unique, from its DDL."""
    columns, _, unique = _shape(ddl, table)
    return columns, unique


def table_shape(ddl: Sequence[str], table: str) -> tuple[list[str], list[str], list[str]]:
    """The table's column names in order, its primary key and its unique columns, from its DDL."""
    columns, keys, unique = _shape(ddl, table)
    return [name for name, _ in columns], keys, unique


_PRIMARY_KEY = re.compile(r"(?is)^PRIMARY\s+KEY\s*\((.*)\)$")


def _shape(ddl: Sequence[str], table: str) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    for statement in ddl:
        found = _CREATE_TABLE.match(statement)
        if found and found.group(1) == table:
            columns, keys, unique = [], [], []
            for part in _split(found.group(2)):
                words = part.split()
                primary = _PRIMARY_KEY.match(part)
                if primary:
                    keys = [key.strip() for key in primary.group(1).split(",")]
                if words[0].upper() in ("PRIMARY", "UNIQUE", "CONSTRAINT", "CHECK", "FOREIGN"):
                    continue
                columns.append((words[0], words[1]))
                rest = " ".join(w.upper() for w in words[2:])
                if "PRIMARY KEY" in rest:
                    keys = [words[0]]
                elif "UNIQUE" in rest:
                    unique.append(words[0])
            return columns, keys, unique
    raise ValueError(f"no CREATE TABLE for {table} in the read model's DDL")


def versioning_ddl(
    ddl: Sequence[str], versioned: Mapping[str, Sequence[str]], dialect: str, triggers: bool = True
) -> list[str]:
    """Version tables, their indexes (the current table's, each serving the same filters as of a cut)
    and, unless the read model writes its versions itself (`triggers=False`, see
    `projections.writes`), the triggers that write them, for every table in `versioned` (table → its
    key columns)."""
    statements: list[str] = []
    for table, keys in versioned.items():
        versions = versions_of(table)
        columns, unique = _columns(ddl, table)
        names = [name for name, _ in columns]
        definitions = ", ".join(f"{name} {kind}" for name, kind in columns)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {versions} (recorded_from BIGINT NOT NULL, recorded_to BIGINT, "
            f"{definitions}, PRIMARY KEY ({', '.join(keys)}, recorded_from))"
        )
        # The versions still current, and those replaced after a cut, are found by `recorded_to`.
        statements.append(f"CREATE INDEX IF NOT EXISTS {versions}_to ON {versions} (recorded_to)")
        for column in unique:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {versions}_{column} ON {versions} ({column}, recorded_from)"
            )
        for statement in ddl:
            index = _CREATE_INDEX.match(statement)
            if index and index.group(2) == table:
                statements.append(
                    f"CREATE INDEX IF NOT EXISTS {index.group(1)}{SUFFIX} ON {versions} ({index.group(3)})"
                )
        if triggers:
            statements.extend(_triggers(table, keys, names, dialect))
    return statements


def trigger_names(table: str) -> list[str]:
    return [f"{table}__v_insert", f"{table}__v_update", f"{table}__v_delete", f"{table}__v"]


def _triggers(table: str, keys: Sequence[str], names: Sequence[str], dialect: str) -> list[str]:
    versions = versions_of(table)
    column_list = ", ".join(names)
    if dialect == "sqlite":
        now = "(SELECT recording FROM rm_applying WHERE id = 1)"

        def close(row: str) -> str:
            match = " AND ".join(f"{key} = {row}.{key}" for key in keys)
            # A version written earlier in the same store transaction was never seen: it goes.
            return (
                f"DELETE FROM {versions} WHERE {match} AND recorded_to IS NULL AND recorded_from = {now}; "
                f"UPDATE {versions} SET recorded_to = {now} WHERE {match} AND recorded_to IS NULL; "
            )

        opened = (
            f"INSERT INTO {versions} (recorded_from, recorded_to, {column_list}) "
            f"VALUES ({now}, NULL, {', '.join(f'NEW.{name}' for name in names)}); "
        )
        changed = " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in names)
        insert, update, delete, _ = trigger_names(table)
        return [
            f"CREATE TRIGGER IF NOT EXISTS {insert} AFTER INSERT ON {table} BEGIN {opened}END",
            f"CREATE TRIGGER IF NOT EXISTS {update} AFTER UPDATE ON {table} WHEN {changed} "
            f"BEGIN {close('OLD')}{opened}END",
            f"CREATE TRIGGER IF NOT EXISTS {delete} AFTER DELETE ON {table} BEGIN {close('OLD')}END",
        ]
    function = trigger_names(table)[3]
    match = " AND ".join(f"{key} = OLD.{key}" for key in keys)
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE now_applying BIGINT := "
        "COALESCE(NULLIF(current_setting('kadaster.recording', true), ''), '0')::bigint; BEGIN "
        "IF TG_OP = 'UPDATE' AND NOT (OLD IS DISTINCT FROM NEW) THEN RETURN NULL; END IF; "
        "IF TG_OP <> 'INSERT' THEN "
        f"DELETE FROM {versions} WHERE {match} AND recorded_to IS NULL AND recorded_from = now_applying; "
        f"UPDATE {versions} SET recorded_to = now_applying WHERE {match} AND recorded_to IS NULL; "
        "END IF; "
        "IF TG_OP <> 'DELETE' THEN "
        f"INSERT INTO {versions} (recorded_from, recorded_to, {column_list}) "
        f"VALUES (now_applying, NULL, {', '.join(f'NEW.{name}' for name in names)}); "
        "END IF; RETURN NULL; END $$",
        f"CREATE OR REPLACE TRIGGER {function} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def applying(tx: Transaction, recording: int) -> None:
    """Says which store transaction (by its first position) the next writes belong to."""
    if tx.dialect == "sqlite":
        tx.execute("UPDATE rm_applying SET recording = ? WHERE id = 1", (recording,))
    else:
        tx.execute("SELECT set_config('kadaster.recording', ?, true)", (str(recording),))


class RewritingTransaction(Transaction):
    """Another transaction, each statement rewritten (`rewrite`) before it runs there."""

    def __init__(self, inner: Transaction) -> None:
        self._inner = inner
        self.dialect = inner.dialect

    def rewrite(self, sql: str) -> str:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Transaction:
        self._inner.execute(self.rewrite(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._inner.executemany(self.rewrite(sql), rows)

    def all(self) -> list[dict[str, Any]]:
        return self._inner.all()

    def one(self) -> dict[str, Any] | None:
        return self._inner.one()

    def scalar(self) -> Any:
        return self._inner.scalar()


class AsOfTransaction(RewritingTransaction):
    """Reads the register as of a cut: versioned tables as their versions then, appended ones up to it."""

    def __init__(
        self,
        inner: Transaction,
        cut: int,
        versioned: Sequence[str],
        appended: Mapping[str, str],
    ) -> None:
        super().__init__(inner)
        self.cut = int(cut)
        replacements = {
            table: f"(SELECT * FROM {versions_of(table)} WHERE recorded_from <= {self.cut} "
            f"AND (recorded_to IS NULL OR recorded_to > {self.cut})) AS {table}"
            for table in versioned
        }
        replacements.update(
            {
                table: f"(SELECT * FROM {table} WHERE {column} <= {self.cut}) AS {table}"
                for table, column in appended.items()
            }
        )
        self._replacements = replacements
        self._pattern = re.compile(
            r"(?<=FROM |JOIN )(" + "|".join(re.escape(t) for t in replacements) + r")\b"
        )
        self._rewritten: dict[str, str] = {}

    def rewrite(self, sql: str) -> str:
        rewritten = self._rewritten.get(sql)
        if rewritten is None:
            rewritten = self._pattern.sub(lambda m: self._replacements[m.group(1)], sql)
            self._rewritten[sql] = rewritten
        return rewritten

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise TypeError("a read as of a past moment writes nothing")
