"""Fault scenarios under load, and an independent checker of what was sent against what happened."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.nats_server import NatsServer, free_port
from adapters.streams import EVT_STREAM, OUTCOME_STREAM
from projections.mid_id_register import MidIdRegister
from projections.projector import Projector
from projections.store import ReadModelStore
from services.register import Register, event_store_env
from tests.integration.conftest import ServiceProcess, domain_event_bodies, domain_event_count, process_env

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/lib/postgresql/15/bin"))


@dataclass
class Report:
    """One scenario's figures, as the README table shows them."""

    scenario: str
    database: str
    faults: int = 0
    commands: int = 0
    malformed: int = 0
    lost: int = 0
    doubled: int = 0
    events_lost: int = 0
    events_doubled: int = 0
    read_model_mismatch: int = 0
    crashes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.events_lost
            or self.events_doubled
            or self.read_model_mismatch
            or self.crashes
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temp dir), so it can be restarted freely."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.data = directory / "pgdata"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.directory, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.directory / "pg.log"),
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kadaster-faults-") as directory:
        path = Path(directory)
        path.chmod(0o755)
        yield path


def envelope(i: int, malformed_every: int) -> tuple[str, bytes, str, bool]:
    institution = f"H{i % 10:03d}"
    command_id = f"f-{i}"
    bad = malformed_every > 0 and i % malformed_every == 0
    data: dict[str, Any] = {"modality": "ultrasound" if bad else "CT"}
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": command_id,
            "source": f"hospital/{institution}",
            "type": "midid.issue",
            "data": data,
        }
    ).encode()
    if bad and i % (2 * malformed_every) == 0:
        body = body[: len(body) // 2]  # truncated: not JSON at all
    return f"kadaster.cmd.hospital.{institution}.midid.issue", body, command_id, bad


async def publish(js: JetStreamContext, start: int, count: int, malformed_every: int) -> tuple[set[str], int]:
    sent, malformed = set(), 0
    for i in range(start, start + count):
        subject, body, command_id, bad = envelope(i, malformed_every)
        for attempt in range(30):
            try:
                await js.publish(subject, body, headers={"Nats-Msg-Id": command_id}, timeout=5)
                break
            except Exception:
                await asyncio.sleep(0.2 * min(attempt + 1, 10))
        else:
            raise RuntimeError(f"could not publish {command_id}")
        sent.add(command_id)
        malformed += bad
    return sent, malformed


async def stream_bodies(js: JetStreamContext, stream: str) -> list[bytes]:
    total = (await js.stream_info(stream)).state.messages
    if not total:
        return []
    sub = await js.subscribe(
        ">", stream=stream, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    bodies = [(await sub.next_msg(timeout=30)).data for _ in range(total)]
    await sub.unsubscribe()
    return bodies


async def wait_for(measure: Callable[[], Any], expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    value = 0
    while time.monotonic() < deadline:
        try:
            value = await measure()
            if value >= expected:
                return int(value)
        except Exception:
            pass
        await asyncio.sleep(0.25)
    return int(value)


async def check(
    report: Report, js: JetStreamContext, sent: set[str], database_url: str, read_model_url: str
) -> None:
    """Compares what was sent with outcomes, stored events, KADASTER_EVT and the read model."""

    async def outcomes_count() -> int:
        return int((await js.stream_info(OUTCOME_STREAM)).state.messages)

    await wait_for(outcomes_count, len(sent), timeout=240)
    outcomes = Counter(
        json.loads(b).get("command_id") or "?" for b in await stream_bodies(js, OUTCOME_STREAM)
    )
    seen = {k for k in outcomes if k in sent}
    malformed_outcomes = outcomes.get("?", 0)
    # A truncated message has no readable id: its outcome carries none, so count those separately.
    report.lost = len(sent - seen) - malformed_outcomes
    report.doubled = sum(n - 1 for k, n in outcomes.items() if k != "?" and n > 1)

    register = Register(env=event_store_env(database_url))
    try:
        notifications = register.recorder.select_notifications(start=None, limit=10**7)
        relayable = [n for n in notifications if not n.topic.startswith("domain.command_record:")]
        issued = [
            register.mapper.to_domain_event(n)
            for n in notifications
            if n.topic.endswith("MidIdRecord.Issued")
        ]
    finally:
        register.close()
    numbers = [e.sequence for e in issued]  # type: ignore[attr-defined]
    if len(set(numbers)) != len(numbers):
        report.doubled += len(numbers) - len(set(numbers))
        report.notes.append("a MID-ID number was handed out twice")

    await wait_for(lambda: domain_event_count(js), len(relayable), timeout=240)
    published = Counter(json.loads(b)["id"] for b in await domain_event_bodies(js))
    expected_ids = {f"{n.originator_id}:{n.originator_version}" for n in relayable}
    report.events_lost = len(expected_ids - set(published))
    report.events_doubled = sum(n - 1 for n in published.values() if n > 1)

    register = Register(env=event_store_env(database_url))
    store = ReadModelStore(read_model_url)
    try:
        projector = Projector(register, store, [MidIdRegister()])
        deadline = time.monotonic() + 120
        while projector.position(MidIdRegister.name) < projector.head() and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        with store.reading() as tx:
            rows = int(tx.execute("SELECT COUNT(*) FROM rm_mid_ids").scalar() or 0)
        report.read_model_mismatch = abs(rows - len(issued))
    finally:
        store.close()
        register.close()


@asynccontextmanager
async def roles(
    env: dict[str, str], directory: Path, names: list[str]
) -> AsyncIterator[dict[str, ServiceProcess]]:
    processes = {name: ServiceProcess(name.split("#")[0], env, directory / f"{name}.log") for name in names}
    for process in processes.values():
        process.start()
    try:
        yield processes
    finally:
        for process in processes.values():
            process.stop()


def crashed(processes: dict[str, ServiceProcess]) -> set[str]:
    """Roles that exited by themselves (not killed by the campaign)."""
    return {name for name, p in processes.items() if p.process is not None and p.process.poll() is not None}


async def scenario(
    name: str, kind: str, commands: int, kills: int, seed: int = 7, malformed_every: int = 50
) -> Report:
    """Runs one scenario: `kill-ingest`, `restart-nats`, `restart-postgres` or `two-ingest`."""
    report = Report(name, kind, commands=commands)
    rng = random.Random(seed)
    began = time.monotonic()
    with workspace() as directory:
        server = NatsServer(store_dir=directory / "nats", port=free_port(), sync_always=False)
        server.start()
        postgres = None
        if kind == "postgres":
            postgres = PrivatePostgres(directory / "pg")
            postgres.init()
            database_url = postgres.url
            read_model_url = database_url
        else:
            database_url = f"sqlite:///{directory / 'data' / 'kadaster.db'}"
            read_model_url = f"sqlite:///{directory / 'data' / 'kadaster.readmodels.db'}"
        env = process_env(server.url, database_url, directory / "data")
        env.update(KADASTER_INGEST_BATCH="64", KADASTER_ACK_WAIT_SECONDS="3", KADASTER_STREAM_REPLICAS="1")
        names = ["ingest", "relay", "projector"] + (["ingest#2"] if name == "two-ingest" else [])
        try:
            async with roles(env, directory, names) as processes:
                nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
                js = nc.jetstream()
                await wait_for(lambda: _streams_ready(js), 1, timeout=60)
                half = commands // 2
                sent, malformed = await publish(js, 0, half, malformed_every)
                crashes: set[str] = set()
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
                    # A role that died is counted once, and restarted so the run can finish.
                    for role in crashed(processes) - crashes:
                        crashes.add(role)
                        processes[role].start()
                    if name in ("kill-ingest", "two-ingest"):
                        victim = processes["ingest"]
                        victim.kill()
                        victim.start()
                    elif name == "restart-nats":
                        server.stop()
                        await asyncio.sleep(0.5)
                        server.start()
                    elif name == "restart-postgres" and postgres is not None:
                        postgres.stop("immediate")
                        await asyncio.sleep(0.5)
                        postgres.start()
                    report.faults += 1
                if name in ("kill-ingest", "two-ingest"):
                    # The relay and the projector die once too, mid-stream.
                    for role in ("relay", "projector"):
                        processes[role].kill()
                        processes[role].start()
                        report.faults += 1
                more, more_malformed = await publish(js, half, commands - half, malformed_every)
                sent |= more
                report.malformed = malformed + more_malformed
                await check(report, js, sent, database_url, read_model_url)
                crashes |= crashed(processes)
                report.crashes = len(crashes)
                await nc.close()
        finally:
            server.stop()
            if postgres is not None:
                postgres.stop()
    report.seconds = round(time.monotonic() - began, 1)
    return report


async def _streams_ready(js: JetStreamContext) -> int:
    await js.stream_info(EVT_STREAM)
    await js.consumer_info("KADASTER_CMD", "kadaster-ingest")
    return 1
