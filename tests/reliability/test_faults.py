"""Process faults under load (bounded for CI; `make reliability` runs the full campaign)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from adapters.bootstrap import started
from adapters.nats.server import NatsServer, free_port
from projections.store import ReadModelStore
from tests.integration.conftest import service_settings
from tests.reliability.faults import Report, Sent, check, publish, scenario, stream_bodies


@pytest.mark.parametrize("name", ["kill-ingest", "two-ingest", "restart-nats"])
async def test_faults_on_sqlite_lose_and_double_nothing(name: str) -> None:
    report = await scenario(name, "sqlite", commands=800, kills=3)
    assert report.clean, report.as_dict()
    assert report.faults >= 3


async def test_killing_the_relay_and_the_projector_again_and_again_loses_and_doubles_nothing() -> None:
    report = await scenario("kill-relay-projector", "sqlite", commands=800, kills=4)
    assert report.clean, report.as_dict()
    # Each of the two was killed twice, while commands streamed in.
    assert report.faults == 4


@pytest.mark.postgres
async def test_restarting_postgresql_under_load_loses_and_doubles_nothing() -> None:
    # Also the regression test for roles racing to create the same tables on a fresh PostgreSQL,
    # which made the projector exit at start-up.
    report = await scenario("restart-postgres", "postgres", commands=800, kills=2)
    assert report.clean, report.as_dict()


async def test_the_checker_notices_lost_and_doubled_commands_repeated_mid_ids_and_stale_read_models(
    tmp_path: Path,
) -> None:
    nats_server = NatsServer(store_dir=tmp_path / "nats", port=free_port(), sync_always=False)
    nats_server.start()
    database_url = f"sqlite:///{tmp_path / 'kadaster.db'}"
    settings = service_settings(nats_server.url, database_url, tmp_path / "data")
    async with started(settings, ("ingest", "relay", "projector"), asyncio.Event()) as running:
        js = running.js
        sent = Sent()
        await publish(js, sent, 0, 40, malformed_every=10)
        honest = Report("checker", "sqlite")
        await check(honest, js, sent, database_url, settings.read_model_url)
        assert honest.clean, honest.as_dict()
        assert len(sent.good) == 36 and len(sent.refused) == 2 and len(sent.unreadable) == 2

        # A command the service never heard of, an outcome given twice, an event published twice
        # (so its MID-ID shows up twice on KADASTER_EVT), and a row missing from the MID-ID register.
        sent.good.add("never-delivered")
        outcome = next(b for b in await stream_bodies(js, "KADASTER_OUTCOME") if b'"accepted"' in b)
        await js.publish("kadaster.outcome.hospital.H001", outcome, headers={"Nats-Msg-Id": "again"})
        issued = next(b for b in await stream_bodies(js, "KADASTER_EVT") if b'"midid.issued"' in b)
        await js.publish("kadaster.evt.midid.issued", issued, headers={"Nats-Msg-Id": "again"})
        store = ReadModelStore(settings.read_model_url)
        try:
            with store.transaction() as tx:
                tx.execute("DELETE FROM rm_mid_ids WHERE mid_id = ?", (json.loads(issued)["data"]["mid_id"],))
        finally:
            store.close()
        tampered = Report("checker", "sqlite")
        await check(tampered, js, sent, database_url, settings.read_model_url)
    nats_server.stop()
    assert (tampered.lost, tampered.doubled, tampered.wrong_outcomes) == (1, 1, 0)
    assert (tampered.events_lost, tampered.events_doubled, tampered.mid_id_duplicates) == (0, 1, 1)
    assert tampered.read_model_mismatch == 1
    assert not tampered.clean
