"""A real nats-server on a free port and the register on it, for the tests of what goes out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.bootstrap import ROLES, Running, started
from adapters.nats.server import NatsServer
from tests.integration.conftest import nats_server, service_settings

__all__ = ["nats_server"]


@pytest.fixture
async def register_service(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> AsyncIterator[Running]:
    """Every role, with the ledger hashing often, so checkpoints go out during the test too."""
    settings = service_settings(nats_server.url, database_url, tmp_path / "data", ledger_interval_seconds=0.2)
    async with started(settings, ROLES, asyncio.Event()) as running:
        yield running
