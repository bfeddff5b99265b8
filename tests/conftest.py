"""Shared fixtures: a real event store (SQLite file, or PostgreSQL when marked) and a sender."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.processor import CommandProcessor, Inbound
from services.register import Register, event_store_env

# The published figures live in ../shared/data beside the repository (KADASTER_SHARED_DIR overrides).
SHARED_DATA = (
    Path(os.environ.get("KADASTER_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "data"
)
POSTGRES_DSN = os.environ.get("KADASTER_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL server, dropped afterwards."""
    import psycopg

    if not postgres_reachable():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_DSN} (set KADASTER_TEST_POSTGRES_DSN)")
    schema = f"kadaster_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_DSN else "?"
    yield f"{POSTGRES_DSN}{separator}schema={schema}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Every scenario runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kadaster.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def register(database_url: str) -> Iterator[Register]:
    app = Register(env=event_store_env(database_url))
    yield app
    app.close()


class Sender:
    """Sends commands through the real pipeline, as the ingesting role would."""

    def __init__(self, register: Register) -> None:
        self.processor = CommandProcessor(register)
        self.sequence = 0

    def envelope(self, source: str, type_: str, data: Any, command_id: str | None = None) -> bytes:
        return json.dumps(
            {
                "specversion": "1.0",
                "id": command_id or uuid.uuid4().hex,
                "source": source,
                "type": type_,
                "time": "2024-04-23T10:00:00Z",
                "datacontenttype": "application/json",
                "data": data,
            }
        ).encode()

    def subject(self, source: str, type_: str) -> str:
        return f"kadaster.cmd.{source.replace('/', '.')}.{type_}"

    def raw(self, body: bytes, subject: str, received_at: datetime | None = None) -> dict[str, Any]:
        """`received_at` stands for the stream's timestamp; the clock now when not given."""
        self.sequence += 1
        inbound = Inbound(body, subject, stream_sequence=self.sequence)
        if received_at is not None:
            inbound = dataclasses.replace(inbound, received_at=received_at)
        (handled,) = self.processor.process([inbound])
        return handled.outcome

    def send(self, source: str, type_: str, data: Any, command_id: str | None = None) -> dict[str, Any]:
        return self.raw(self.envelope(source, type_, data, command_id), self.subject(source, type_))

    def accepted(self, source: str, type_: str, data: Any, command_id: str | None = None) -> dict[str, Any]:
        outcome = self.send(source, type_, data, command_id)
        assert outcome["status"] == "accepted", outcome
        result: dict[str, Any] = outcome["result"]
        return result

    def rejected(self, source: str, type_: str, data: Any, *codes: str) -> dict[str, Any]:
        outcome = self.send(source, type_, data)
        assert outcome["status"] == "rejected", outcome
        assert [e["code"] for e in outcome["errors"]] == list(codes), outcome["errors"]
        return outcome


@pytest.fixture
def sender(register: Register) -> Sender:
    return Sender(register)
