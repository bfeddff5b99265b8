"""A real nats-server on a free port and a real kadaster, in-process or as separate processes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.bootstrap import ROLES, Running, started
from adapters.config import Settings, load_settings
from adapters.credentials import Credentials
from adapters.fair_share import FairShare
from adapters.http.api import CommandSender, create_app
from adapters.http.auth import Guard, Sessions
from adapters.http.web import add_web_routes
from adapters.ledger.publisher import CHECKPOINT_SUBJECT
from adapters.nats.client import KadasterClient
from adapters.nats.gateway import CommandGateway
from adapters.nats.server import NatsServer, free_port
from adapters.nats.streams import EVT_STREAM


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path / "nats", port=free_port(), sync_always=False)
    server.start()
    yield server
    server.stop()


def service_settings(nats_url: str, database_url: str, data_dir: Path, **extra: Any) -> Settings:
    return load_settings(
        environ={},
        nats_url=nats_url,
        database_url=database_url,
        data_dir=str(data_dir),
        http_port=0,
        log_format="json",
        log_level="warning",
        **extra,
    )


@pytest.fixture
async def kadaster(nats_server: NatsServer, database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    settings = service_settings(nats_server.url, database_url, tmp_path / "data")
    stop = asyncio.Event()
    async with started(settings, ROLES, stop) as running:
        yield running


@pytest.fixture
async def h001(kadaster: Running) -> AsyncIterator[KadasterClient]:
    client = await KadasterClient.connect(kadaster.nats_url, "hospital/H001")
    yield client
    await client.close()


@pytest.fixture
async def h002(kadaster: Running) -> AsyncIterator[KadasterClient]:
    client = await KadasterClient.connect(kadaster.nats_url, "hospital/H002")
    yield client
    await client.close()


class ServiceProcess:
    """`kadaster <role>` as a separate OS process, so it can be killed with SIGKILL."""

    def __init__(self, role: str, env: dict[str, str], log_path: Path) -> None:
        self.role = role
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", self.role],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def process_env(nats_url: str, database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
    env.update(
        KADASTER_NATS_URL=nats_url,
        KADASTER_DATABASE_URL=database_url,
        KADASTER_DATA_DIR=str(data_dir),
        KADASTER_LOG_FORMAT="json",
        KADASTER_LOG_LEVEL="warning",
        KADASTER_HTTP_PORT="0",
    )
    return env


async def wait_for_service(nats_url: str, timeout: float = 90.0, instances: int = 1, **options: Any) -> None:
    """Ready when `$SRV.PING.kadaster` answers (from `instances` processes); `options` for nats.connect."""
    nc = await nats.connect(nats_url, **options)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inbox = nc.new_inbox()
            seen: list[bytes] = []

            async def collect(msg: Any, seen: list[bytes] = seen) -> None:
                # The server itself answers a request nobody listens to with a 503 "no responders".
                if (msg.headers or {}).get("Status") != "503":
                    seen.append(msg.data)

            sub = await nc.subscribe(inbox, cb=collect)
            await nc.publish("$SRV.PING.kadaster", b"", reply=inbox)
            await asyncio.sleep(0.3)
            await sub.unsubscribe()
            if len(seen) >= instances:
                return
        raise TimeoutError("the kadaster service did not answer $SRV.PING.kadaster")
    finally:
        await nc.close()


async def domain_event_count(js: JetStreamContext) -> int:
    """Messages on KADASTER_EVT that are domain events (the ledger's checkpoints share the stream)."""
    info = await js.stream_info(EVT_STREAM, subjects_filter=CHECKPOINT_SUBJECT)
    return int(info.state.messages) - int((info.state.subjects or {}).get(CHECKPOINT_SUBJECT, 0))


async def domain_event_bodies(js: JetStreamContext) -> list[bytes]:
    """Every domain event on KADASTER_EVT, in stream order, without the ledger's checkpoints."""
    total = int((await js.stream_info(EVT_STREAM)).state.messages)
    if not total:
        return []
    sub = await js.subscribe(
        ">", stream=EVT_STREAM, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        messages = [await sub.next_msg(timeout=30) for _ in range(total)]
    finally:
        await sub.unsubscribe()
    return [m.data for m in messages if m.subject != CHECKPOINT_SUBJECT]


def make_guard(register: Any, directory: Path, **fair_share: Any) -> Guard:
    """The HTTP API's guard over a credentials database of its own in `directory`."""
    sessions = Sessions("test-session-secret", idle_seconds=1800, absolute_seconds=12 * 3600)
    return Guard(
        Credentials(f"sqlite:///{directory / 'credentials.db'}"), register, sessions, FairShare(**fair_share)
    )


@pytest.fixture
def guard(kadaster: Running, tmp_path: Path) -> Iterator[Guard]:
    """The running kadaster's HTTP guard, over a credentials database in the test's directory."""
    guard = make_guard(kadaster.register, tmp_path)
    yield guard
    guard.credentials.close()


def web_app(kadaster: Running, guard: Guard, settings: Settings | None = None) -> FastAPI:
    """The HTTP API with the web pages on it, as `kadaster serve` builds it."""
    assert kadaster.queries is not None
    commands = CommandSender(gateway_of(kadaster))
    app = create_app(kadaster.queries, guard, commands)
    add_web_routes(app, guard, kadaster.queries, commands, settings or kadaster.settings, "http://kadaster")
    return app


def asgi_client(app: FastAPI, **options: Any) -> httpx.AsyncClient:
    """A client calling `app` in-process, as if at http://kadaster."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kadaster", **options)


def csrf_of(html: str) -> str:
    """The CSRF token of the (first) form in a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], seconds: float, what: str, log: Path | None = None
) -> None:
    """Poll `url` until it answers 200; fail (showing `log`) if `process` stops or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text() if log else f"{what} stopped"
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.1)


def bearer(
    guard: Guard, party: str, label: str = "test", expires_days: float | None = None
) -> dict[str, str]:
    """Headers carrying a fresh API token of `party`."""
    _, token = guard.credentials.issue_token(party, label, expires_days)
    return {"Authorization": f"Bearer {token}"}


def gateway_of(running: Running) -> CommandGateway:
    assert running.gateway is not None
    return running.gateway
