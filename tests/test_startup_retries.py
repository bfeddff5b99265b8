"""Start-up retries wait for a database that is still starting, never for a defect."""

from __future__ import annotations

import sqlite3
import time

import pytest

from adapters.bootstrap import with_retries


def test_a_database_that_is_still_starting_is_waited_for() -> None:
    attempts = []

    def attempt() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "open"

    assert with_retries("event store", attempt, timeout=10) == "open"
    assert len(attempts) == 3


def test_a_defect_fails_at_once_instead_of_being_retried() -> None:
    attempts = []

    def attempt() -> None:
        attempts.append(1)
        raise ModuleNotFoundError("No module named 'projections.missing'")

    started = time.monotonic()
    with pytest.raises(ModuleNotFoundError):
        with_retries("read models", attempt, timeout=60)
    assert len(attempts) == 1
    assert time.monotonic() - started < 1
