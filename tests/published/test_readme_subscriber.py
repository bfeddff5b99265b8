"""The README's example subscriber runs as it is written and prints the events the register publishes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from adapters.bootstrap import Running
from adapters.nats.client import KadasterClient

README = Path(__file__).resolve().parents[2] / "README.md"


def example_subscriber() -> str:
    text = README.read_text(encoding="utf-8")
    after = text.split("An example subscriber", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_example_subscriber_is_about_ten_lines_of_python_with_the_cloudevents_sdk() -> None:
    code = example_subscriber()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 12
    assert "from cloudevents" in code and "kadaster.evt.>" in code
    compile(code, "example.py", "exec")


async def test_the_example_subscriber_prints_each_event_the_register_publishes(
    register_service: Running, tmp_path: Path
) -> None:
    client = await KadasterClient.connect(register_service.nats_url, "hospital/H001")
    async with client:
        issued = await client.issue_mid_id("CT")
        cancelled = await client.send(
            "midid.cancel", {"mid_id": issued["result"]["mid_id"], "reason": "no tender"}
        )
    assert (issued["status"], cancelled["status"]) == ("accepted", "accepted")
    mid_id = issued["result"]["mid_id"]
    script = tmp_path / "subscriber.py"
    script.write_text(example_subscriber(), encoding="utf-8")
    env = {**os.environ, "KADASTER_NATS_URL": register_service.nats_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        str(script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    printed: list[str] = []
    try:
        assert process.stdout is not None
        while not any("midid.cancelled" in line for line in printed):
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert line, (await process.stderr.read()).decode() if process.stderr else "no output"
            printed.append(line.decode())
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    issued_line = next(line for line in printed if "midid.issued" in line)
    assert issued_line.startswith("1 midid.issued " + mid_id)
    assert "'institution': 'H001'" in issued_line
    assert printed[-1].startswith("2 midid.cancelled " + mid_id)
