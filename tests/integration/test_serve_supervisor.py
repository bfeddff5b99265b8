"""`kadaster serve` runs its roles as child processes: restarted when they die, stopped in order."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.cli.supervisor import LogMerger
from adapters.nats.client import KadasterClient
from adapters.nats.server import free_port, port_open
from tests.integration.conftest import wait_for_service


class Serve:
    """`kadaster serve` with its embedded nats-server, started in a directory of its own."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.nats_port = free_port()
        self.log_path = tmp_path / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
        env.update(
            KADASTER_EMBEDDED_NATS_PORT=str(self.nats_port),
            KADASTER_DATA_DIR=str(tmp_path / "data"),
            KADASTER_HTTP_PORT="0",
            KADASTER_JETSTREAM_SYNC="default",
            KADASTER_LOG_FORMAT="json",
            KADASTER_LOG_LEVEL="info",
        )
        env.update({f"KADASTER_{name.upper()}": value for name, value in settings.items()})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("wb"),
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def records(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def pids(self) -> dict[str, int]:
        """The latest process id of each child, and of the nats-server."""
        pids: dict[str, int] = {}
        for record in self.records():
            if record["event"] == "child_started":
                pids[record["role"]] = record["pid"]
            elif record["event"] == "embedded_nats_started":
                pids["nats-server"] = record["pid"]
        return pids

    async def wait_for(self, event: str, timeout: float = 90.0, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if record["event"] == event and all(record.get(k) == v for k, v in fields.items()):
                    return record
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no {event} {fields} in {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A process that has exited but is not yet reaped is not alive either.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ")[-1].startswith("Z"))


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start(**settings: str) -> Serve:
        serve = Serve(tmp_path, **settings)
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()


async def test_serve_answers_survives_a_killed_child_and_stops_everything_on_sigterm(
    serve_factory: Any,
) -> None:
    serve = serve_factory()
    await serve.wait_for("kadaster_ready", processes=4)
    await wait_for_service(serve.url)
    pids = serve.pids()
    assert set(pids) == {"nats-server", "writer", "projector", "relay", "api"}
    assert len(set(pids.values())) == 5, "every role group runs in a process of its own"
    client = await KadasterClient.connect(serve.url, "hospital/H001")
    try:
        first = await client.issue_mid_id("CT", command_id="before-the-kill")
        assert first["status"] == "accepted"
        assert first["result"]["mid_id"] == "MID-0000001-95"

        os.kill(pids["writer"], 9)
        restarted = await serve.wait_for("child_restarted", role="writer")
        assert restarted["restarts"] == 1
        new_pid = serve.pids()["writer"]
        await serve.wait_for("child_ready", role="writer", pid=new_pid)
        assert (await serve.wait_for("child_died", role="writer"))["exit_code"] == -9
        second = await client.issue_mid_id("CT", command_id="after-the-kill", timeout=5, attempts=20)
        assert second["status"] == "accepted"
        assert second["result"]["mid_id"] != first["result"]["mid_id"]
        assert serve.pids()["writer"] != pids["writer"]
        # The children's own lines reach the one stream, tagged by the process they come from.
        assert {r.get("role") for r in serve.records() if r["event"] == "kadaster_ready"} >= {
            "writer",
            "projector",
            "relay",
            "api",
        }
    finally:
        await client.close()

    serve.process.terminate()
    assert serve.process.wait(60) == 0
    for name, pid in serve.pids().items():
        assert not alive(pid), f"{name} (pid {pid}) outlived serve"
    assert not port_open(serve.nats_port)
    stopped = [r.get("role") for r in serve.records() if r["event"] == "kadaster_stopped"]
    assert stopped == ["api", "writer", "projector", "relay", None], "children first, in order, then serve"


async def test_a_child_that_keeps_dying_stops_serve_with_a_non_zero_exit_and_says_which(
    serve_factory: Any,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        serve = serve_factory(http_port=str(busy_port), restart_limit="1", restart_window_seconds="120")
        code = await asyncio.get_running_loop().run_in_executor(None, serve.process.wait, 120)
    assert code == 1
    text = serve.log_path.read_text()
    assert "kadaster: the api process (api) died 2 times within 120 s" in text
    assert [r["role"] for r in serve.records() if r["event"] == "child_died"] == ["api"]
    for name, pid in serve.pids().items():
        assert not alive(pid), f"{name} (pid {pid}) outlived serve"
    assert not port_open(serve.nats_port)


def test_a_childs_lines_are_tagged_with_its_role_as_json_or_for_a_terminal() -> None:
    as_json, on_terminal = io.StringIO(), io.StringIO()
    line = json.dumps({"event": "ingest_started", "level": "info", "batch": 256}) + "\n"
    LogMerger(console=False, stream=as_json).line("writer", line)
    LogMerger(console=False, stream=as_json).line("api", "Traceback (most recent call last):\n")
    LogMerger(console=True, stream=on_terminal).line("writer", line)
    LogMerger(console=True, stream=on_terminal).line("api", "Traceback (most recent call last):\n")
    first, second = (json.loads(text) for text in as_json.getvalue().splitlines())
    assert first == {"event": "ingest_started", "level": "info", "batch": 256, "role": "writer"}
    assert second == {"event": "child_output", "role": "api", "line": "Traceback (most recent call last):"}
    rendered, raw = re.sub(r"\x1b\[[0-9;]*m", "", on_terminal.getvalue()).splitlines()
    assert "ingest_started" in rendered and "role=writer" in rendered and "batch=256" in rendered
    assert raw == "[api] Traceback (most recent call last):"
