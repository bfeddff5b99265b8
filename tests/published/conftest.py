"""A real nats-server on a free port, for the tests of what goes out over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from adapters.nats_server import NatsServer, free_port


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path / "nats", port=free_port(), sync_always=False)
    server.start()
    yield server
    server.stop()
