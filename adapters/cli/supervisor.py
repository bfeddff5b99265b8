"""`kadaster serve`: the roles as child processes under one supervisor, with one log stream.

The embedded nats-server starts first, then the writer (ingest and rpc together: SQLite takes one
writer, and both feed the same batches), then the projector, the relay (with the ledger) and the api,
each `python -m adapters.cli run <roles> --supervised` in its own process so that every core works.
A child that dies is restarted after a growing pause; one that dies more than the restart budget
allows stops everything and `serve` exits non-zero. Ctrl-C or SIGTERM stops the children in order
(the api and the writer first, then the projector and the relay), then the nats-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog

from adapters.config import Settings
from adapters.nats.server import NatsServer, die_with_parent

log = structlog.get_logger("kadaster.supervisor")

READY_LINE = "kadaster-child-ready"
"""What a supervised child prints on its standard output once its roles answer."""

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("writer", ("ingest", "rpc")),
    ("projector", ("projector",)),
    ("relay", ("relay",)),
    ("api", ("api",)),
)
"""Which roles share a process, in the order they start; they stop api, writer, projector, relay."""

STOP_ORDER = ("api", "writer", "projector", "relay")


class SupervisorGaveUp(Exception):
    """A child died more often than the restart budget allows."""


def child_environment(settings: Settings, nats_url: str, group: str) -> dict[str, str]:
    """The supervisor's own `KADASTER_*` settings, pointed at its nats-server, JSON logs to merge."""
    env = dict(os.environ)
    env.update(
        KADASTER_NATS_URL=nats_url,
        KADASTER_DATA_DIR=str(settings.data_dir),
        KADASTER_LOG_FORMAT="json",
        KADASTER_LOG_LEVEL=settings.log_level,
        KADASTER_SERVE_MODE="single",
        PYTHONUNBUFFERED="1",
    )
    if settings.database_url:
        env["KADASTER_DATABASE_URL"] = settings.database_url
    # One process binds the metrics port: the writer's counters are the ones worth scraping apart.
    env["KADASTER_METRICS_PORT"] = str(settings.metrics_port if group == "writer" else 0)
    return env


class LogMerger:
    """Writes each child's log lines to the supervisor's stream, tagged with the child's name."""

    def __init__(self, console: bool, stream: Any = None) -> None:
        self.console = console
        self.stream = stream if stream is not None else sys.stderr
        self.renderer = structlog.dev.ConsoleRenderer() if console else None

    def line(self, child: str, raw: str) -> None:
        raw = raw.rstrip("\n")
        if not raw:
            return
        record: Any = None
        if raw.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
        if isinstance(record, dict):
            record["role"] = child
            if self.renderer is not None:
                text = str(self.renderer(None, str(record.get("level", "info")), record))
            else:
                text = json.dumps(record, default=str)
        elif self.console:
            text = f"[{child}] {raw}"
        else:
            text = json.dumps({"event": "child_output", "role": child, "line": raw})
        print(text, file=self.stream, flush=True)


@dataclass
class Child:
    """One supervised process and its restart history."""

    name: str
    roles: tuple[str, ...]
    process: asyncio.subprocess.Process | None = None
    deaths: deque[float] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    restarts: int = 0


@dataclass
class Supervisor:
    settings: Settings
    nats_url: str
    merger: LogMerger
    stop: asyncio.Event
    ready_timeout: float = 120.0
    children: dict[str, Child] = field(default_factory=dict)
    gave_up: str | None = None

    async def spawn(self, child: Child) -> None:
        child.ready = asyncio.Event()
        child.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "run",
            *child.roles,
            "--supervised",
            env=child_environment(self.settings, self.nats_url, child.name),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C reaches the supervisor only, which stops the children in order.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        assert child.process.stdout is not None and child.process.stderr is not None
        child.pumps = [
            asyncio.create_task(self.pump(child, child.process.stdout, control=True)),
            asyncio.create_task(self.pump(child, child.process.stderr, control=False)),
        ]
        log.info("child_started", role=child.name, roles=list(child.roles), pid=child.process.pid)

    async def pump(self, child: Child, stream: asyncio.StreamReader, control: bool) -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                return
            text = raw.decode("utf-8", "replace")
            if control and text.strip() == READY_LINE:
                child.ready.set()
                log.info("child_ready", role=child.name, pid=child.process.pid if child.process else None)
            else:
                self.merger.line(child.name, text)

    async def keep(self, child: Child) -> None:
        """Keeps one child running until the supervisor stops, restarting it within the budget."""
        limit, window = self.settings.restart_limit, self.settings.restart_window_seconds
        while not self.stop.is_set():
            assert child.process is not None
            code = await child.process.wait()
            for pump in child.pumps:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pump, timeout=5)
            if self.stop.is_set():
                return
            now = time.monotonic()
            child.deaths.append(now)
            while child.deaths and now - child.deaths[0] > window:
                child.deaths.popleft()
            if len(child.deaths) > limit:
                self.gave_up = (
                    f"the {child.name} process ({'+'.join(child.roles)}) died {len(child.deaths)} times "
                    f"within {window:g} s (last exit code {code}); see its log lines above"
                )
                log.error("child_gave_up", role=child.name, exit_code=code, deaths=len(child.deaths))
                self.stop.set()
                return
            pause = min(0.5 * 2 ** (len(child.deaths) - 1), 10.0)
            log.error("child_died", role=child.name, exit_code=code, restart_in_seconds=pause)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=pause)
            if self.stop.is_set():
                return
            child.restarts += 1
            await self.spawn(child)
            log.info("child_restarted", role=child.name, restarts=child.restarts)

    async def terminate(self, child: Child, timeout: float = 20.0) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=timeout)
        except TimeoutError:
            log.warning("child_killed", role=child.name, after_seconds=timeout)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        for pump in child.pumps:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, timeout=5)

    async def run(self) -> bool:
        """Starts every child, keeps them running until stopped; True when stopped cleanly."""
        keepers: list[asyncio.Task[None]] = []
        try:
            for name, roles in GROUPS:
                self.children[name] = Child(name, roles)
            writer, *others = self.children.values()
            # The writer creates the streams and the event store's tables before the others open them.
            await self.spawn(writer)
            keepers.append(asyncio.create_task(self.keep(writer)))
            await self.wait_ready(writer)
            for child in others:
                if self.stop.is_set():
                    break
                await self.spawn(child)
                keepers.append(asyncio.create_task(self.keep(child)))
            await asyncio.gather(*(self.wait_ready(c) for c in others if c.process is not None))
            if not self.stop.is_set():
                log.info("kadaster_ready", nats=self.nats_url, processes=len(self.children))
            await self.stop.wait()
            log.info("kadaster_stopping")
        finally:
            self.stop.set()
            for name in STOP_ORDER:
                if name in self.children:
                    await self.terminate(self.children[name])
            for keeper in keepers:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
        return self.gave_up is None

    async def wait_ready(self, child: Child) -> None:
        """Waits for the child (or a restart of it) to be ready, or for the supervisor to stop."""
        deadline = time.monotonic() + self.ready_timeout
        while not self.stop.is_set() and not child.ready.is_set():
            if time.monotonic() > deadline:
                self.gave_up = f"the {child.name} process was not ready within {self.ready_timeout:g} s"
                self.stop.set()
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(child.ready.wait(), timeout=0.2)


async def supervise(settings: Settings, console: bool) -> int:
    """Runs `serve` as a supervisor until SIGINT or SIGTERM; the process's exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server: NatsServer | None = None
    if settings.embedded:
        server = NatsServer(
            store_dir=(settings.data_dir / "nats").resolve(),
            port=settings.embedded_nats_port,
            sync_always=settings.jetstream_sync == "always",
            stops_with_parent=True,
        )
        # Started from this thread: the server's parent-death signal follows the thread that forked it.
        server.start()
        pid = server.process.pid if server.process else None
        log.info("embedded_nats_started", url=server.url, store=str(server.store_dir), pid=pid)
        nats_url = server.url
    else:
        assert settings.nats_url is not None
        nats_url = settings.nats_url
    supervisor = Supervisor(settings, nats_url, LogMerger(console), stop)
    try:
        clean = await supervisor.run()
    finally:
        if server is not None:
            await loop.run_in_executor(None, server.stop)
            log.info("embedded_nats_stopped")
    if not clean:
        print(f"kadaster: {supervisor.gave_up}; stopped", file=sys.stderr, flush=True)
        return 1
    log.info("kadaster_stopped")
    return 0
