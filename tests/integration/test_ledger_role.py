"""The relay role keeps the ledger: what the register records is soon under a signed checkpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nats.js.errors import NotFoundError

from adapters.bootstrap import ROLES, started
from adapters.ledger.keys import load_public_key
from adapters.ledger.publisher import CHECKPOINT_SUBJECT, read_checkpoint
from adapters.nats.client import KadasterClient
from adapters.nats.server import NatsServer
from adapters.nats.streams import EVT_STREAM
from tests.integration.conftest import service_settings


async def test_the_running_service_publishes_a_signed_checkpoint_over_what_it_recorded(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(nats_server.url, database_url, tmp_path / "data", ledger_interval_seconds=0.1)
    stop = asyncio.Event()
    async with started(settings, ROLES, stop) as running:
        client = await KadasterClient.connect(running.nats_url, "hospital/H001")
        async with client:
            outcome = await client.issue_mid_id("CT")
        assert outcome["status"] == "accepted", outcome
        head = running.register.position()
        checkpoint = None
        for _ in range(100):
            try:
                message = await running.js.get_last_msg(EVT_STREAM, CHECKPOINT_SUBJECT)
            except NotFoundError:
                message = None
            if message is not None and message.data:
                checkpoint = read_checkpoint(message.data)
                if checkpoint.tree_size >= head:
                    break
            await asyncio.sleep(0.1)
    assert checkpoint is not None and checkpoint.tree_size >= head
    public = load_public_key(tmp_path / "data" / "ledger-ed25519.pem")
    assert public.verifies(checkpoint)
