"""The rounds CLI against a running service: the 2017 care-region series gives the published rankings."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from adapters.bootstrap import Running
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA


async def kadaster_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_importing_the_series_file_prints_the_published_rankings(kadaster: Running) -> None:
    url = kadaster.nats_url
    # Record the whole series through the contract's commands.
    code, out, err = await kadaster_cli(
        "rounds", "import", str(DATA / "care_regions_2017h1.json"), "--nats-url", url
    )
    assert code == 0, err
    assert "rejected" in out and ", 0 rejected" in out
    # Each trimester's ranking matches the published one exactly.
    expected = json.loads((DATA / "care_regions_2017h1_expected.json").read_text())
    for period, published in expected.items():
        code, out, err = await kadaster_cli("rounds", "ranking", period, "--json", "--nats-url", url)
        assert code == 0, err
        by_region = {row["region"]: row for row in json.loads(out)}
        assert by_region == {row["region"]: row for row in published}
    # Importing the same file again changes nothing.
    position = kadaster.register.position()
    code, out, err = await kadaster_cli(
        "rounds", "import", str(DATA / "care_regions_2017h1.json"), "--nats-url", url
    )
    assert code == 0, err
    assert out.strip() == "nothing new: all 15 commands were recorded before (0 of them rejected)"
    assert kadaster.register.position() == position


async def test_verify_recomputes_every_decided_round_from_the_store(kadaster: Running) -> None:
    code, _, err = await kadaster_cli(
        "rounds", "import", str(DATA / "care_regions_2017h1.json"), "--nats-url", kadaster.nats_url
    )
    assert code == 0, err
    env = {"KADASTER_DATABASE_URL": kadaster.settings.event_store_url}
    code, out, err = await kadaster_cli("rounds", "verify", env=env)
    assert code == 0, err + out
    assert out.count(": ok") == 2
