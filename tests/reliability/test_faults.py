"""Process faults under load (bounded for CI; `make reliability` runs the full campaign)."""

from __future__ import annotations

import pytest

from tests.reliability.faults import scenario


@pytest.mark.parametrize("name", ["kill-ingest", "two-ingest", "restart-nats"])
async def test_faults_on_sqlite_lose_and_double_nothing(name: str) -> None:
    report = await scenario(name, "sqlite", commands=800, kills=3)
    assert report.clean, report.as_dict()
    assert report.faults >= 3


@pytest.mark.postgres
async def test_restarting_postgresql_under_load_loses_and_doubles_nothing() -> None:
    # Also the regression test for roles racing to create the same tables on a fresh PostgreSQL,
    # which made the projector exit at start-up.
    report = await scenario("restart-postgres", "postgres", commands=800, kills=2)
    assert report.clean, report.as_dict()
