"""The wiring: the one place that knows every layer and starts the roles a process runs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import nats
import structlog
from eventsourcing.persistence import PersistenceError
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from adapters import metrics
from adapters.config import Settings
from adapters.credentials import Credentials
from adapters.fair_share import FairShare
from adapters.files.safe_files import private_sqlite_file
from adapters.http.api import CommandSender, create_app, run_http
from adapters.http.auth import Guard, Sessions, session_secret
from adapters.http.web import add_web_routes
from adapters.ledger.runner import SEAL_WAIT_SECONDS, run_ledger
from adapters.nats.gateway import CommandGateway
from adapters.nats.ingest import run_ingest
from adapters.nats.outcomes import OutcomePublisher
from adapters.nats.relay import run_relay
from adapters.nats.server import NatsServer
from adapters.nats.service import KadasterService
from adapters.nats.streams import ensure_ingest_consumer, ensure_streams
from adapters.round_queries import ROUND_QUERIES
from projections.access import AccessGrants
from projections.audit_history import AuditHistory
from projections.capacity import Capacity
from projections.command_log import CommandLog
from projections.discrepancies import Discrepancies
from projections.kadaster_view import KadasterView
from projections.mid_id_register import MidIdRegister
from projections.projector import Projection, Projector
from projections.queries import Queries
from projections.store import ReadModelStore
from services.processor import CommandProcessor
from services.register import Register, event_store_env

log = structlog.get_logger("kadaster.runtime")
T = TypeVar("T")

ROLES = ("ingest", "rpc", "projector", "relay", "api")
GC_THRESHOLDS = (20_000, 50, 1000)


def all_projections() -> list[Projection]:
    return [
        MidIdRegister(),
        CommandLog(),
        KadasterView(),
        AuditHistory(),
        Discrepancies(),
        Capacity(),
        AccessGrants(),
    ]


def private_sqlite(url: str) -> None:
    """An SQLite database is created readable by its owner only: it holds rejected messages' bytes."""
    if url.startswith("sqlite:///"):
        private_sqlite_file(Path(url.removeprefix("sqlite:///")))


class NoEventStore(Exception):
    """The configured SQLite event store is not there, and the caller must not create an empty one."""


def open_register(settings: Settings, create: bool = True) -> Register:
    """The register on the configured event store; `create=False` refuses a SQLite file that is not there."""
    url = settings.event_store_url
    if url.startswith("sqlite:///"):
        if create:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            private_sqlite(url)
        elif not Path(url.removeprefix("sqlite:///")).exists():
            raise NoEventStore(f"no event store at {url.removeprefix('sqlite:///')} (KADASTER_DATABASE_URL)")
    return Register(env=event_store_env(url))


def open_projector_for_maintenance(settings: Settings) -> tuple[Register, ReadModelStore, Projector]:
    """The register, the live read models and a projector over all of them that reports an outdated
    read model (status) or rebuilds it beside the live one (rebuild), never resets it."""
    register = open_register(settings)
    return (register, *open_read_models(settings, register))


def open_read_models(settings: Settings, register: Register) -> tuple[ReadModelStore, Projector]:
    """The live read models and a projector over all of them that never resets an outdated one: for
    the console's maintenance and audit commands, beside (or without) a running projector role."""
    private_sqlite(settings.read_model_url)
    store = ReadModelStore(settings.read_model_url)
    return store, Projector(register, store, all_projections(), reset_outdated=False)


def transient_errors() -> tuple[type[BaseException], ...]:
    """What a database that is still starting, or a race on creating tables, raises."""
    errors: list[type[BaseException]] = [PersistenceError, OSError, sqlite3.Error]
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.Error)
    return tuple(errors)


def with_retries(what: str, attempt: Callable[[], T], timeout: float = 60.0) -> T:
    """The database may still be starting, or another role may be creating the same tables.

    Only database and network errors are retried: a defect (an import or type error) fails at once.
    """
    deadline = time.monotonic() + timeout
    delay = 0.2
    transient = transient_errors()
    while True:
        try:
            return attempt()
        except transient as error:
            if time.monotonic() > deadline:
                raise
            log.warning("startup_retry", what=what, error=f"{type(error).__name__}: {error}"[:300])
            time.sleep(delay)
            delay = min(delay * 2, 3.0)


def open_read_side(settings: Settings, register: Register) -> tuple[ReadModelStore, Projector, Queries]:
    private_sqlite(settings.read_model_url)
    store = ReadModelStore(settings.read_model_url)
    projector = Projector(register, store, all_projections())
    return store, projector, Queries(register, store, projector, extra=ROUND_QUERIES)


def fair_share_of(settings: Settings) -> FairShare:
    return FairShare(
        settings.http_commands_per_minute,
        settings.http_queries_per_second,
        settings.expensive_queries_per_party,
        settings.expensive_queries_total,
    )


def open_guard(settings: Settings, register: Register, fair_share: FairShare) -> Guard:
    """Credentials and sessions of the HTTP API, as the settings say."""
    sessions = Sessions(
        session_secret(settings.session_secret, settings.data_dir),
        idle_seconds=settings.session_idle_minutes * 60,
        absolute_seconds=settings.session_hours * 3600,
        secure=settings.secure_cookies,
    )
    return Guard(Credentials(settings.credentials_database_url), register, sessions, fair_share)


@dataclass
class Running:
    """What a started process holds; tests and the CLI read the NATS URL from here."""

    settings: Settings
    nats_url: str
    register: Register
    nc: NATS
    js: JetStreamContext
    queries: Queries | None = None
    projector: Projector | None = None
    gateway: CommandGateway | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    failed: bool = False


def record_lag(projector: Projector) -> None:
    head = projector.head()
    metrics.EVENT_STORE_POSITION.set(head)
    for projection in projector.projections:
        metrics.PROJECTION_LAG.labels(projection.name).set(head - projector.position(projection.name))


async def projector_loop(projector: Projector, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kadaster-projector") as executor:
        while not stop.is_set():
            try:
                applied = await loop.run_in_executor(executor, projector.catch_up)
                await loop.run_in_executor(executor, record_lag, projector)
            except Exception:
                log.exception("projector_failed")
                applied = 0
                await asyncio.sleep(1.0)
            if not applied:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.05)


@contextlib.asynccontextmanager
async def started(settings: Settings, roles: Iterable[str], stop: asyncio.Event) -> AsyncIterator[Running]:
    """Starts the given roles; leaving the context drains NATS and stops everything cleanly."""
    roles = set(roles)
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        if settings.embedded:
            server = NatsServer(
                store_dir=(settings.data_dir / "nats").resolve(),
                port=settings.embedded_nats_port,
                sync_always=settings.jetstream_sync == "always",
            )
            await loop.run_in_executor(None, server.start)
            stack.callback(server.stop)
            nats_url = server.url
            log.info("embedded_nats_started", url=nats_url, store=str(server.store_dir))
        else:
            assert settings.nats_url is not None
            nats_url = settings.nats_url
        options: dict[str, object] = {
            "name": f"kadaster {'+'.join(sorted(roles))}",
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
        }
        if settings.nats_user:
            options.update(user=settings.nats_user, password=settings.nats_password)
        if settings.nats_creds:
            options["user_credentials"] = str(settings.nats_creds)
        nc = await nats.connect(nats_url.split(","), **options)
        stack.push_async_callback(drain, nc)
        js = nc.jetstream()
        await ensure_streams(js, settings.stream_replicas, settings.duplicate_window_seconds)
        await ensure_ingest_consumer(js, settings.ack_wait_seconds)

        register = await loop.run_in_executor(
            None, with_retries, "event store", lambda: open_register(settings)
        )
        stack.callback(register.close)
        running = Running(settings, nats_url, register, nc, js)

        gateway = None
        if roles & {"ingest", "rpc", "api"}:
            gateway = CommandGateway(CommandProcessor(register), max_batch=settings.ingest_batch)
            stack.push_async_callback(gateway.close)
            running.gateway = gateway
        if roles & {"projector", "api"}:
            store, projector, queries = await loop.run_in_executor(
                None, with_retries, "read models", lambda: open_read_side(settings, register)
            )
            stack.callback(store.close)
            running.projector, running.queries = projector, queries
            if "projector" in roles:
                # Caught up before answering; a database restarting meanwhile is waited for.
                await loop.run_in_executor(None, with_retries, "read models", projector.catch_up)
                running.tasks.append(asyncio.create_task(projector_loop(projector, stop)))
        writers: list[asyncio.Task[None]] = []
        if "ingest" in roles:
            assert gateway is not None
            writers.append(
                asyncio.create_task(
                    run_ingest(js, OutcomePublisher(nc, js), gateway, stop, settings.ingest_batch)
                )
            )
            running.tasks.extend(writers)

        # One fair share per process, for the queries over NATS and everything over HTTP alike.
        fair_share = fair_share_of(settings)
        service = KadasterService(
            nc,
            js,
            gateway if "rpc" in roles else None,
            running.queries if "api" in roles else None,
            fair_share,
        )

        async def writers_stopped() -> None:
            """This process records nothing more: the ledger may seal."""
            await service.stop()
            for writer in writers:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await writer
            if gateway is not None:
                await gateway.call(lambda: None)

        if "relay" in roles:
            running.tasks.append(asyncio.create_task(run_relay(js, register, stop)))
            running.tasks.append(
                asyncio.create_task(run_ledger(register, settings, stop, js, writers_stopped=writers_stopped))
            )

        if roles & {"rpc", "api"}:
            await service.start()
            stack.push_async_callback(service.stop)
        if "api" in roles and settings.http_port:
            assert running.queries is not None
            guard = await loop.run_in_executor(
                None, with_retries, "credentials", lambda: open_guard(settings, register, fair_share)
            )
            stack.callback(guard.credentials.close)
            assert gateway is not None
            commands = CommandSender(gateway)
            app = create_app(running.queries, guard, commands)
            public_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
            add_web_routes(app, guard, running.queries, commands, settings, public_url)
            http = asyncio.create_task(run_http(app, settings.http_host, settings.http_port, stop))
            # A port that cannot be bound stops the process at once instead of at shutdown.
            http.add_done_callback(lambda t: stop.set() if not t.cancelled() and t.exception() else None)
            running.tasks.append(http)
            log.info("http_api_started", url=f"http://{settings.http_host}:{settings.http_port}")

        def role_died(task: asyncio.Task[None]) -> None:
            # A role whose loop ended by an error stops the process: its supervisor restarts it.
            if not task.cancelled() and task.exception() is not None:
                log.error("role_failed", task=task.get_name(), error=repr(task.exception()))
                running.failed = True
                stop.set()

        for task in running.tasks:
            task.add_done_callback(role_died)

        async def finish_tasks() -> None:
            stop.set()
            for task in running.tasks:
                try:
                    # The ledger seals after the writers, so it is given their time as well as its own.
                    await asyncio.wait_for(task, timeout=10 + 2 * SEAL_WAIT_SECONDS)
                except asyncio.CancelledError:
                    pass
                except TimeoutError:
                    log.error("role_did_not_stop", task=task.get_name())
                except Exception:
                    pass  # already logged by role_died

        stack.push_async_callback(finish_tasks)
        if settings.metrics_port:
            metrics.serve_metrics(settings.metrics_port, settings.http_host)
            log.info("metrics_started", url=f"http://{settings.http_host}:{settings.metrics_port}/metrics")
        log.info(
            "kadaster_ready", roles=sorted(roles), nats=nats_url, database=_redacted(settings.event_store_url)
        )
        yield running


async def drain(nc: NATS) -> None:
    """Finishes in-flight work; if the server is already gone there is nothing left to drain."""
    try:
        await asyncio.wait_for(nc.drain(), timeout=10)
    except Exception as error:
        log.warning("nats_drain_incomplete", error=type(error).__name__)
        with contextlib.suppress(Exception):
            await nc.close()


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def freeze_startup_heap() -> None:
    """Keeps what start-up loaded (modules, schemas, the command catalogue) out of garbage collection.

    It lives as long as the process, yet every full collection walks it again: on a 2-core machine
    such a pass paused the service for 50 to 120 ms, and every request arriving meanwhile waited it
    out. Called once per process, before the roles start.

    The young generation is also collected less often (every 20,000 allocations instead of 700):
    a batch of commands allocates tens of thousands of short-lived objects, and the default
    collected them dozens of times per batch (12 to 15 % of the ingest path's CPU time).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(
    settings: Settings, roles: Iterable[str], on_ready: Callable[[Running], None] | None = None
) -> bool:
    """Runs until SIGINT or SIGTERM (True), or until a role fails (False)."""

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with started(settings, roles, stop) as running:
        if on_ready is not None:
            on_ready(running)
        await stop.wait()
        log.info("kadaster_stopping")
        failed = running.failed
    log.info("kadaster_stopped")
    return not failed
