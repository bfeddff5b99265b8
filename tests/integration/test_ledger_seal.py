"""A clean stop seals the ledger, and what it published outside the database catches a cut or a rewrite."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.nats.client import KadasterClient
from adapters.nats.server import NatsServer
from services.register import Register, event_store_env
from tests.audit.test_ledger import RawEvents, notification_ids
from tests.integration.conftest import ServiceProcess, process_env, wait_for_service


def audit(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "audit", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sigterm_a_second_after_a_command_seals_it_and_the_published_checkpoint_catches_tampering(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    env = process_env(nats_server.url, database_url, tmp_path / "data")
    # No periodic pass will come in time: only the seal on stop can cover the command.
    env["KADASTER_LEDGER_INTERVAL_SECONDS"] = "60"
    env["KADASTER_LOG_LEVEL"] = "info"
    env["PYTHONUNBUFFERED"] = "1"
    service = ServiceProcess("serve", env, tmp_path / "serve.log")
    service.start()
    try:
        await wait_for_service(nats_server.url)
        async with await KadasterClient.connect(nats_server.url, "hospital/H001") as h001:
            await asyncio.sleep(1.5)  # the start-up pass has run over an empty log
            outcome = await h001.send("midid.issue", {"modality": "CT"}, command_id="last-words")
            assert outcome["status"] == "accepted", outcome
        await asyncio.sleep(1.0)
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(60) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        service.stop()
    assert "ledger_sealed" in (tmp_path / "serve.log").read_text()

    register = Register(env=event_store_env(database_url))
    try:
        raw = RawEvents(register)
        positions = notification_ids(register)
        ledger_table = (
            f'"{raw.datastore.schema}".ledger_checkpoints' if raw.postgres else "ledger_checkpoints"
        )
        # Untouched, the log extends the published checkpoint.
        assert audit(env, "verify", "--published").returncode == 0
        # One byte of the command's last event changed, the ledger's own records wiped to hide it.
        raw.flip_one_byte(positions[-1])
        raw.execute(f"DELETE FROM {ledger_table}")
        rewritten = audit(env, "verify", "--published")
        assert rewritten.returncode == 1, rewritten.stdout + rewritten.stderr
        assert "rewritten" in rewritten.stdout
        raw.flip_one_byte(positions[-1])
        assert audit(env, "verify", "--published").returncode == 0
        # The log cut at its tail: the command's events gone.
        for position in positions[-3:]:
            raw.delete(position)
        cut = audit(env, "verify", "--published")
        assert cut.returncode == 1, cut.stdout + cut.stderr
        assert "history was cut" in cut.stdout
        # Without what was published, the cut log looks whole: that is why auditors keep checkpoints.
        assert audit(env, "verify").returncode == 0
    finally:
        register.close()


@pytest.mark.parametrize("form", ["bare", "cloudevent"])
def test_a_kept_checkpoint_is_read_bare_or_as_a_cloudevent(form: str) -> None:
    import json

    from adapters.ledger.publisher import read_checkpoint

    bare = {
        "version": 1,
        "tree_size": 3,
        "root_hash": "ab" * 32,
        "chain_hash": "cd" * 32,
        "timestamp": "2026-12-06T00:00:00Z",
        "key_id": "0123456789abcdef",
        "signature": "ef",
    }
    document = (
        bare
        if form == "bare"
        else {
            "specversion": "1.0",
            "type": "ledger.checkpoint",
            "id": "x",
            "source": "kadaster",
            "data": bare,
        }
    )
    assert read_checkpoint(json.dumps(document)).tree_size == 3
