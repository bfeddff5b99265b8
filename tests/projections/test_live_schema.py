"""A process that opens the read models beside a live projector must not lock its tables."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from adapters.bootstrap import all_projections
from projections.projector import Projector
from projections.store import ReadModelStore
from services.register import Register, event_store_env


@pytest.mark.postgres
def test_opening_read_models_that_are_in_place_waits_for_no_table_lock(
    postgres_url: str, tmp_path: Path
) -> None:
    register = Register(env=event_store_env(f"sqlite:///{tmp_path / 'kadaster.db'}"))
    Projector(register, ReadModelStore(postgres_url), all_projections())

    opened = threading.Event()

    def open_again() -> None:
        Projector(register, ReadModelStore(postgres_url), all_projections())
        opened.set()

    # A live projector is writing: it holds its tables in ROW EXCLUSIVE mode until it commits,
    # which any CREATE INDEX, even IF NOT EXISTS, would wait for (and deadlock with).
    live = ReadModelStore(postgres_url)
    with live.transaction() as tx:
        tx.execute("LOCK TABLE rm_mid_ids IN ROW EXCLUSIVE MODE")
        tx.execute("LOCK TABLE rm_devices IN ROW EXCLUSIVE MODE")
        threading.Thread(target=open_again, daemon=True).start()
        assert opened.wait(timeout=10), "opening the read models waited for the live projector's locks"
    live.close()
    register.close()


def test_read_models_of_an_older_version_are_still_reset(tmp_path: Path) -> None:
    register = Register(env=event_store_env(f"sqlite:///{tmp_path / 'kadaster.db'}"))
    url = f"sqlite:///{tmp_path / 'readmodels.db'}"
    Projector(register, ReadModelStore(url), all_projections())
    store = ReadModelStore(url)
    with store.transaction() as tx:
        tx.execute(
            "UPDATE rm_positions SET version = version - 1, position = 7 WHERE name = 'mid_id_register'"
        )
    Projector(register, store, all_projections())
    with store.reading() as tx:
        row = tx.execute("SELECT position FROM rm_positions WHERE name = 'mid_id_register'").one()
    assert row is not None and row["position"] == 0
    register.close()
