"""Write-behind rows: what a batch writes, and the versions each store transaction leaves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from projections.projector import Projection
from projections.store import ReadModelStore
from projections.writes import Batch, table_specs


class Shelf(Projection):
    """A small read model: versioned items by (shelf, slot), an append-only log and a plain table."""

    name = "shelf"
    write_behind = True
    tables = ("rm_items", "rm_item_log", "rm_item_names")
    versioned: ClassVar[dict[str, tuple[str, ...]]] = {"rm_items": ("shelf", "slot")}
    appended: ClassVar[dict[str, str]] = {"rm_item_log": "position"}
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_items (shelf TEXT NOT NULL, slot TEXT NOT NULL, "
        "item TEXT NOT NULL, count BIGINT NOT NULL, note TEXT, PRIMARY KEY (shelf, slot))",
        "CREATE INDEX IF NOT EXISTS rm_items_item ON rm_items (item)",
        "CREATE TABLE IF NOT EXISTS rm_item_log (position BIGINT PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rm_item_names (item TEXT PRIMARY KEY, name TEXT NOT NULL)",
    )


def item(shelf: str, slot: str, name: str, count: int, note: str | None = None) -> dict[str, Any]:
    return {"shelf": shelf, "slot": slot, "item": name, "count": count, "note": note}


@pytest.fixture
def store(read_models: Callable[[], ReadModelStore]) -> ReadModelStore:
    made = read_models()
    with made.transaction() as tx:
        for statement in Shelf().statements(tx.dialect):
            tx.execute(statement)
    return made


@contextmanager
def batch(store: ReadModelStore) -> Iterator[Batch]:
    """One batch in one transaction, written at its end as the projector writes it."""
    with store.transaction() as tx:
        held = Batch(tx, table_specs([Shelf()]))
        yield held
        held.flush()


def stock(store: ReadModelStore, *rows: dict[str, Any]) -> None:
    """A first batch, store transaction 10, that puts these rows."""
    with batch(store) as b:
        b.recording = 10
        for row in rows:
            b.rows("rm_items").put(row)


def versions(store: ReadModelStore) -> list[tuple[Any, ...]]:
    with store.reading() as tx:
        rows = tx.execute(
            "SELECT shelf, slot, recorded_from, recorded_to, item, count FROM rm_items_versions "
            "ORDER BY shelf, slot, recorded_from"
        ).all()
    return [tuple(row.values()) for row in rows]


def current(store: ReadModelStore) -> list[tuple[Any, ...]]:
    with store.reading() as tx:
        rows = tx.execute("SELECT shelf, slot, item, count FROM rm_items ORDER BY shelf, slot").all()
    return [tuple(row.values()) for row in rows]


def test_each_store_transaction_that_changes_a_row_leaves_one_version(store: ReadModelStore) -> None:
    with batch(store) as b:
        b.recording = 10
        b.rows("rm_items").put(item("A", "1", "bolt", 1))
        b.rows("rm_items").update(("A", "1"), count=2)  # the same store transaction: one version
        b.recording = 20
        b.rows("rm_items").update(("A", "1"), count=3)
    assert versions(store) == [("A", "1", 10, 20, "bolt", 2), ("A", "1", 20, None, "bolt", 3)]
    assert current(store) == [("A", "1", "bolt", 3)]


def test_a_row_left_as_it_was_gets_no_version_and_no_write(store: ReadModelStore) -> None:
    stock(store, item("A", "1", "bolt", 1))
    with batch(store) as b:
        b.recording = 20
        b.rows("rm_items").update(("A", "1"), count=1)
        b.rows("rm_items").update(("A", "1"), count=5)
        b.rows("rm_items").update(("A", "1"), count=1)  # back to what it was within one transaction
    assert versions(store) == [("A", "1", 10, None, "bolt", 1)]


def test_a_row_changed_and_changed_back_across_transactions_keeps_every_version(
    store: ReadModelStore,
) -> None:
    stock(store, item("A", "1", "bolt", 1))
    with batch(store) as b:
        b.recording = 20
        b.rows("rm_items").update(("A", "1"), count=2)
        b.recording = 30
        b.rows("rm_items").update(("A", "1"), count=1)
    assert versions(store) == [
        ("A", "1", 10, 20, "bolt", 1),
        ("A", "1", 20, 30, "bolt", 2),
        ("A", "1", 30, None, "bolt", 1),
    ]


def test_a_deleted_row_closes_its_version(store: ReadModelStore) -> None:
    stock(store, item("A", "1", "bolt", 1), item("A", "2", "nut", 1))
    with batch(store) as b:
        b.recording = 20
        b.rows("rm_items").delete("A", "1")
        assert b.rows("rm_items").get("A", "1") is None
    assert versions(store) == [("A", "1", 10, 20, "bolt", 1), ("A", "2", 10, None, "nut", 1)]
    assert current(store) == [("A", "2", "nut", 1)]


def test_where_batches_end_does_not_change_what_is_written(
    read_models: Callable[[], ReadModelStore],
) -> None:
    steps: list[tuple[int, Callable[[Batch], Any]]] = [
        (10, lambda b: b.rows("rm_items").put(item("A", "1", "bolt", 1))),
        (10, lambda b: b.rows("rm_items").put(item("A", "2", "nut", 4))),
        (20, lambda b: b.rows("rm_items").update(("A", "1"), count=2)),
        (20, lambda b: b.rows("rm_items").delete("A", "2")),
        (30, lambda b: b.rows("rm_items").put(item("A", "2", "washer", 7))),
        (40, lambda b: b.rows("rm_items").update(("A", "1"), item="screw")),
    ]
    outcomes = []
    for cuts in ([], [20], [20, 30, 40]):
        store = read_models()
        with store.transaction() as tx:
            for statement in Shelf().statements(tx.dialect):
                tx.execute(statement)
        pending = list(steps)
        while pending:
            with batch(store) as b:
                while pending:
                    recording, step = pending[0]
                    if recording in cuts and b.recording and b.recording != recording:
                        break
                    b.recording = recording
                    step(b)
                    pending.pop(0)
                cuts = [cut for cut in cuts if cut != b.recording]
        outcomes.append((versions(store), current(store)))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][1] == [("A", "1", "screw", 2), ("A", "2", "washer", 7)]


def test_lookups_see_the_rows_this_batch_changed(store: ReadModelStore) -> None:
    stock(store, item("A", "1", "bolt", 1), item("B", "1", "bolt", 2))
    with batch(store) as b:
        b.recording = 20
        rows = b.rows("rm_items")
        rows.update(("B", "1"), item="nut")
        rows.put(item("C", "1", "bolt", 3))
        assert [(r["shelf"], r["count"]) for r in rows.where("item", "bolt")] == [("A", 1), ("C", 3)]
        assert [r["shelf"] for r in rows.where("item", "nut")] == ["B"]
        assert rows.insert(item("A", "1", "other", 9)) is False
        assert rows.get("A", "1") == item("A", "1", "bolt", 1)


def test_appended_rows_are_seen_by_plain_sql_in_the_same_batch(store: ReadModelStore) -> None:
    with batch(store) as b:
        b.append("rm_item_log", {"position": 1, "text": "first"})
        b.append("rm_item_log", {"position": 1, "text": "again"})  # its key is there: kept as it was
        b.append("rm_item_log", {"position": 2, "text": "second"})
        found = b.execute("SELECT position, text FROM rm_item_log ORDER BY position").all()
    assert found == [{"position": 1, "text": "first"}, {"position": 2, "text": "second"}]


def test_plain_sql_on_a_versioned_write_behind_table_is_refused(store: ReadModelStore) -> None:
    with pytest.raises(RuntimeError, match="rm_items writes behind"), batch(store) as b:
        b.execute("UPDATE rm_items SET count = 0")


def test_a_row_without_every_column_is_refused(store: ReadModelStore) -> None:
    with pytest.raises(ValueError, match="missing \\['note'\\]"), batch(store) as b:
        b.rows("rm_items").put({"shelf": "A", "slot": "1", "item": "bolt", "count": 1})


def test_a_query_after_a_large_executemany_reads_its_own_rows(
    read_models: Callable[[], ReadModelStore],
) -> None:
    # In a PostgreSQL pipeline the last answers to a batch of statements arrive while the next
    # query is being sent; on one shared cursor they now and then took that query's place (in
    # between a third and a twentieth of the tries here, depending on the machine's load).
    store = read_models()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE rm_pairs (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        tx.execute("INSERT INTO rm_pairs (k, v) VALUES ('asked', 'answer')")
    for attempt in range(20):
        with store.transaction() as tx:
            rows = [(f"{attempt}-{i}", "filler") for i in range(20_000)]
            tx.executemany("INSERT INTO rm_pairs (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING", rows)
            assert tx.execute("SELECT v FROM rm_pairs WHERE k = ?", ("asked",)).one() == {"v": "answer"}


def test_a_row_put_without_reading_it_first_ends_the_version_the_database_holds(
    store: ReadModelStore,
) -> None:
    stock(store, item("A", "1", "bolt", 1))
    with batch(store) as b:
        b.recording = 20
        b.rows("rm_items").put(item("A", "1", "bolt", 2))  # never read in this batch
    assert versions(store) == [("A", "1", 10, 20, "bolt", 1), ("A", "1", 20, None, "bolt", 2)]
    assert current(store) == [("A", "1", "bolt", 2)]
