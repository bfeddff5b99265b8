"""Read-model databases beside the test's event store: SQLite files, or PostgreSQL schemas."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import all_projections
from projections.projector import Projector
from projections.queries import Queries
from projections.store import ReadModelStore
from services.register import Register
from tests.conftest import POSTGRES_DSN, Sender
from tests.projections import scenario


@pytest.fixture
def read_models(database_url: str, tmp_path: Path) -> Iterator[Callable[[], ReadModelStore]]:
    """Makes fresh, empty read-model databases of the event store's kind."""
    stores: list[ReadModelStore] = []
    schemas: list[str] = []

    def make() -> ReadModelStore:
        if database_url.startswith("sqlite:///"):
            url = f"sqlite:///{tmp_path / f'readmodels-{len(stores)}.db'}"
        else:
            import psycopg

            schema = f"kadaster_rm_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            schemas.append(schema)
            url = f"{POSTGRES_DSN}{'&' if '?' in POSTGRES_DSN else '?'}schema={schema}"
        stores.append(ReadModelStore(url))
        return stores[-1]

    yield make
    for store in stores:
        store.close()
    if schemas:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def lifecycle(sender: Sender) -> Sender:
    """The scripted register, recorded through the real command pipeline."""
    scenario.run(
        lambda source, type_, data, command_id: sender.send(source, type_, data, command_id),
        scenario.LIFECYCLE,
    )
    return sender


@pytest.fixture
def projector(lifecycle: Sender, register: Register, read_models: Callable[[], ReadModelStore]) -> Projector:
    projector = Projector(register, read_models(), all_projections())
    projector.catch_up()
    return projector


@pytest.fixture
def queries(projector: Projector, register: Register) -> Queries:
    return Queries(register, projector.store, projector)


def answer(
    queries: Queries, name: str, filters: dict[str, Any] | None = None, institution: str | None = None
) -> Any:
    return queries.run(name, filters or {}, institution)
