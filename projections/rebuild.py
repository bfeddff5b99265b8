"""Rebuilding a read model from the first event while the service runs, and every read model's standing.

A rebuild runs the projection's own SQL against shadow copies of its tables (`<table>__next`),
batch by batch from position 0, while the live tables keep answering and the live projector keeps
them current. Then one transaction (holding the read model's position row, which the live projector
also takes) applies what was recorded meanwhile, drops the live tables, renames the shadow ones into
their place with their indexes, and records the new position. Readers see the old tables or the new
ones, never a mix and never none.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.utils import resolve_topic

from projections.projector import Projection, Projector
from projections.store import Transaction
from projections.versions import RewritingTransaction, trigger_names

log = structlog.get_logger("kadaster.projections")

SHADOW = "__next"
_INDEX_NAME = re.compile(r"(?i)\b(CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)(\w+)")
# Triggers and their functions (see `projections.versions`) are renamed with their tables.
_TRIGGER_NAME = re.compile(
    r"(?i)\b(CREATE\s+(?:OR\s+REPLACE\s+)?(?:TRIGGER|FUNCTION)\s+(?:IF\s+NOT\s+EXISTS\s+)?|"
    r"EXECUTE\s+FUNCTION\s+)(\w+)"
)

Progress = Callable[[int, int], None]


class ShadowTransaction(RewritingTransaction):
    """The same statements, run against a projection's shadow tables instead of its live ones."""

    def __init__(self, inner: Transaction, rename: Callable[[str], str]) -> None:
        super().__init__(inner)
        self._rename = rename

    def rewrite(self, sql: str) -> str:
        return self._rename(sql)


class Shadow:
    """A projection's tables under shadow names: created empty, filled, then swapped in."""

    def __init__(self, projection: Projection) -> None:
        if not projection.tables:
            raise ValueError(f"read model {projection.name} declares no tables to rebuild")
        self.projection = projection
        self.tables = projection.all_tables()
        self._tables = re.compile(r"\b(" + "|".join(re.escape(t) for t in self.tables) + r")\b")
        self._renamed: dict[str, str] = {}

    @staticmethod
    def name(table: str) -> str:
        return f"{table}{SHADOW}"

    def rename(self, sql: str) -> str:
        renamed = self._renamed.get(sql)
        if renamed is None:
            renamed = self._tables.sub(lambda m: self.name(m.group(1)), sql)
            renamed = _INDEX_NAME.sub(lambda m: m.group(1) + self.name(m.group(2)), renamed)
            renamed = _TRIGGER_NAME.sub(lambda m: m.group(1) + self.name(m.group(2)), renamed)
            self._renamed[sql] = renamed
        return renamed

    def transaction(self, tx: Transaction) -> ShadowTransaction:
        return ShadowTransaction(tx, self.rename)

    def create(self, tx: Transaction) -> None:
        self.drop(tx)
        for statement in self.projection.statements(tx.dialect):
            tx.execute(self.rename(statement))

    def drop(self, tx: Transaction) -> None:
        for table in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {self.name(table)}")
        if tx.dialect == "postgres":
            for table in self.projection.versioned:
                tx.execute(f"DROP FUNCTION IF EXISTS {self.name(trigger_names(table)[3])}() CASCADE")

    def exists(self, tx: Transaction) -> bool:
        return _table_exists(tx, self.name(self.projection.tables[0]))

    def swap(self, tx: Transaction) -> None:
        """Puts the shadow tables in the live ones' place, indexes and constraints renamed to match;
        the version triggers are made again under their live names, writing the live tables."""
        for table in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}")
            tx.execute(f"ALTER TABLE {self.name(table)} RENAME TO {table}")
            if tx.dialect == "sqlite":
                # SQLite cannot rename an index: it is made again under the live name.
                indexes = tx.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL",
                    (table,),
                ).all()
                for index in indexes:
                    if index["name"].endswith(SHADOW):
                        live = index["name"].removesuffix(SHADOW)
                        tx.execute(f"DROP INDEX {index['name']}")
                        tx.execute(index["sql"].replace(index["name"], live, 1))
            else:
                constraints = tx.execute(
                    "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(?::text)", (table,)
                ).all()
                for constraint in constraints:
                    if SHADOW in constraint["conname"]:
                        live = constraint["conname"].replace(SHADOW, "")
                        tx.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {constraint['conname']} TO {live}")
                indexes = tx.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?",
                    (table,),
                ).all()
                for index in indexes:
                    if SHADOW in index["indexname"]:
                        live = index["indexname"].replace(SHADOW, "")
                        tx.execute(f"ALTER INDEX {index['indexname']} RENAME TO {live}")
        for table in self.projection.versioned:
            insert, update, delete, function = (self.name(n) for n in trigger_names(table))
            if tx.dialect == "sqlite":
                for trigger in (insert, update, delete):
                    tx.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            else:
                tx.execute(f"DROP FUNCTION IF EXISTS {function}() CASCADE")
        for statement in self.projection.versioning(tx.dialect):
            if _TRIGGER_NAME.search(statement):
                tx.execute(statement)


def _table_exists(tx: Transaction, table: str) -> bool:
    if tx.dialect == "sqlite":
        found = tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    else:
        found = tx.execute("SELECT to_regclass(?::text) IS NOT NULL", (table,)).scalar()
    return bool(found)


@dataclass(frozen=True)
class Rebuilt:
    name: str
    position: int
    events: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position,
            "events": self.events,
            "seconds": round(self.seconds, 3),
        }


def rebuild(
    projector: Projector, name: str, progress: Progress | None = None, batch_size: int = 500, chase: int = 20
) -> Rebuilt:
    """Rebuilds one read model from position 0 and swaps it in; the live one answers meanwhile.

    `progress(position, head)` after every batch; `chase`: how many more passes to take after the
    head seen at the start before the swap takes the rest under its lock.
    """
    projection = projector.projection(name)
    shadow = Shadow(projection)
    store, app = projector.store, projector.app
    started = time.monotonic()
    log.info("read_model_rebuild_started", name=name)
    with store.transaction() as tx:
        shadow.create(tx)

    wanted: dict[str, bool] = {}
    only = Projector(app, store, [projection], create=False)

    def wants(topic: str) -> bool:
        # By the class the topic resolves to, so renamed topics count as their class's name.
        found = wanted.get(topic)
        if found is None:
            found = wanted[topic] = projection.wants(resolve_topic(topic).__qualname__)
        return found

    def apply(tx: Transaction, start: int) -> tuple[int, int]:
        notifications = only.read(start, batch_size)
        # Events this read model ignores are not even decoded.
        events = [(n.id, app.mapper.to_domain_event(n)) for n in notifications if wants(n.topic)]
        only.apply(shadow.transaction(tx), only.recorded(start, events), {name: start})
        return (notifications[-1].id if notifications else start), len(notifications)

    position, events = 0, 0
    head = projector.head()
    while True:
        with store.transaction() as tx:
            position, applied = apply(tx, position)
        events += applied
        if progress is not None:
            progress(position, max(head, position))
        if applied < batch_size or position >= head:
            head = projector.head()
            if head - position <= batch_size or chase <= 0:
                break
            chase -= 1
    with store.transaction() as tx:
        # The live projector waits for this row, so no event is applied twice or lost across the swap.
        projector.position_in(tx, name)
        while True:
            position, applied = apply(tx, position)
            events += applied
            if applied < batch_size:
                break
        shadow.swap(tx)
        tx.execute(
            "UPDATE rm_positions SET position = ?, version = ? WHERE name = ?",
            (position, projection.version, name),
        )
    projector.refresh_statistics(projection.all_tables(), fresh=True)
    if progress is not None:
        progress(position, position)
    rebuilt = Rebuilt(name, position, events, time.monotonic() - started)
    log.info("read_model_rebuilt", **rebuilt.as_dict())
    return rebuilt


def status(projector: Projector) -> list[dict[str, Any]]:
    """Each read model's position, the version its tables were built with, and its lag behind the store."""
    head = projector.head()
    recorded = projector.positions()
    with projector.store.reading() as tx:
        shadows = {p.name: Shadow(p).exists(tx) for p in projector.projections if p.tables}
    items = []
    for projection in projector.projections:
        found = recorded.get(projection.name)
        position = found["position"] if found else 0
        version = found["version"] if found else None
        lag = max(head - position, 0)
        state = "outdated" if version != projection.version else "current" if lag == 0 else "catching up"
        items.append(
            {
                "name": projection.name,
                "position": position,
                "head": head,
                "lag": lag,
                "version": version,
                "code_version": projection.version,
                "state": state,
                "shadow_tables": shadows.get(projection.name, False),
                "tables": projection.all_tables(),
            }
        )
    return items
