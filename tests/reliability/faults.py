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

from adapters.bootstrap import all_projections
from adapters.nats.client import outcome_of
from adapters.nats.server import NatsServer, free_port
from adapters.nats.streams import EVT_STREAM, OUTCOME_STREAM
from projections.projector import Projector
from projections.store import ReadModelStore
from services.published_events import public_event
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
    mid_id_duplicates: int = 0
    wrong_outcomes: int = 0
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
            or self.mid_id_duplicates
            or self.wrong_outcomes
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


GOOD, REFUSED, UNREADABLE = "good", "refused", "unreadable"


def envelope(i: int, malformed_every: int) -> tuple[str, bytes, str, str]:
    """The i-th command: a good MID-ID request, or (every `malformed_every`-th) a broken one."""
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
    kind = REFUSED if bad else GOOD
    if bad and i % (2 * malformed_every) == 0:
        body, kind = body[: len(body) // 2], UNREADABLE  # truncated: not JSON at all
    return f"kadaster.cmd.hospital.{institution}.midid.issue", body, command_id, kind


@dataclass
class Sent:
    """What the campaign published, and what each message must come to."""

    good: set[str] = field(default_factory=set)
    """Command ids that must be accepted, each with a MID-ID of its own."""
    refused: set[str] = field(default_factory=set)
    """Command ids of readable but invalid commands, which must be rejected."""
    unreadable: set[str] = field(default_factory=set)
    """Ids of truncated messages: rejected as malformed, kept under the id their Nats-Msg-Id names."""

    @property
    def every(self) -> set[str]:
        return self.good | self.refused | self.unreadable

    @property
    def malformed(self) -> int:
        return len(self.refused) + len(self.unreadable)


async def publish(
    js: JetStreamContext, sent: Sent, start: int, count: int, malformed_every: int, spread: float = 0.0
) -> None:
    """Publishes `count` commands, spread over about `spread` seconds so faults land while they stream in."""
    chunk = 50
    pause = spread / max(1, count // chunk)
    for i in range(start, start + count):
        subject, body, command_id, kind = envelope(i, malformed_every)
        for attempt in range(30):
            try:
                headers = {"Nats-Msg-Id": f"hospital/H{i % 10:03d}:{command_id}"}
                await js.publish(subject, body, headers=headers, timeout=5)
                break
            except Exception:
                await asyncio.sleep(0.2 * min(attempt + 1, 10))
        else:
            raise RuntimeError(f"could not publish {command_id}")
        if kind == GOOD:
            sent.good.add(command_id)
        elif kind == REFUSED:
            sent.refused.add(command_id)
        else:
            sent.unreadable.add(command_id)
        if pause and (i - start) % chunk == chunk - 1:
            await asyncio.sleep(pause)


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


def repeated(values: list[Any]) -> int:
    """How many of `values` repeat an earlier one."""
    return len(values) - len(set(values))


async def check(
    report: Report, js: JetStreamContext, sent: Sent, database_url: str, read_model_url: str
) -> None:
    """Compares what was sent with outcomes, stored events, KADASTER_EVT and the read models.

    It reads each of them on its own (the outcome stream, the event store's notification log, the
    event stream, the read-model tables) and trusts none of the roles' own bookkeeping.
    """

    async def outcomes_count() -> int:
        return int((await js.stream_info(OUTCOME_STREAM)).state.messages)

    # Outcomes: exactly one per message, accepted for the good ones, rejected for the others.
    await wait_for(outcomes_count, len(sent.every), timeout=240)
    outcomes = [outcome_of(json.loads(b)) for b in await stream_bodies(js, OUTCOME_STREAM)]
    # Every outcome names its command: an unreadable one by the id its `<source>:<id>` header gives.
    named = Counter(o["command_id"] for o in outcomes if o.get("command_id"))
    anonymous = sum(1 for o in outcomes if not o.get("command_id"))
    lost = sent.every - set(named)
    doubled = {command_id for command_id, n in named.items() if n > 1}
    answered: dict[str, str] = {}
    for outcome in outcomes:
        command_id, accepted = outcome.get("command_id"), outcome["status"] == "accepted"
        if accepted and command_id in sent.good:
            answered.setdefault(command_id, outcome["result"]["mid_id"])
        elif accepted or command_id in sent.good:
            report.wrong_outcomes += 1
            report.notes.append(f"{command_id}: {outcome['status']} {outcome.get('errors')}")
    report.mid_id_duplicates = repeated(list(answered.values()))

    # The event store: one record per message, one MID-ID per accepted command, none given twice.
    register = Register(env=event_store_env(database_url))
    try:
        notifications = register.recorder.select_notifications(start=None, limit=10**7)
        records = [
            register.mapper.to_domain_event(n)
            for n in notifications
            if n.topic.startswith("domain.command_record:")
        ]
        relayable = [n for n in notifications if public_event(n.topic) is not None]
        issued = [
            register.mapper.to_domain_event(n)
            for n in notifications
            if n.topic.endswith("MidIdRecord.Issued")
        ]
    finally:
        register.close()
    # A message without a readable envelope is kept under the id its `<source>:<id>` Nats-Msg-Id names.
    kept = Counter(r.command_id for r in records)  # type: ignore[attr-defined]
    lost |= sent.every - set(kept)
    doubled |= {command_id for command_id, n in kept.items() if n > 1}
    stored = {e.command_id: e.mid_id for e in issued}  # type: ignore[attr-defined]
    doubled |= {c for c, n in Counter(e.command_id for e in issued).items() if n > 1}  # type: ignore[attr-defined]
    doubled |= set(stored) - set(answered)  # an effect whose command was not accepted
    lost |= {c for c in answered if stored.get(c) != answered[c]}  # accepted, but not so recorded
    report.lost = len(lost)
    report.doubled = len(doubled) + anonymous
    if lost or doubled:
        report.notes.append(f"lost: {sorted(lost)[:10]}, doubled: {sorted(doubled)[:10]}")
    store_duplicates = repeated([e.mid_id for e in issued]) + repeated([e.sequence for e in issued])  # type: ignore[attr-defined]
    if store_duplicates:
        report.notes.append("a MID-ID number was handed out twice")
    report.mid_id_duplicates += store_duplicates

    # KADASTER_EVT: every domain event once, none that the store does not hold.
    await wait_for(lambda: domain_event_count(js), len(relayable), timeout=240)
    events = [json.loads(b) for b in await domain_event_bodies(js)]
    published = Counter(e["id"] for e in events)
    expected_ids = {str(n.id) for n in relayable}
    report.events_lost = len(expected_ids - set(published))
    report.events_doubled = sum(n - 1 for n in published.values()) + len(set(published) - expected_ids)
    # What a subscriber counts on: `sequence` 1, 2, 3, ... on this fresh stream, whatever was killed.
    sequences = {int(e["sequence"]) for e in events}
    skipped = set(range(1, max(sequences, default=0) + 1)) - sequences
    if skipped:
        report.events_lost += len(skipped)
        report.notes.append(f"sequence numbers never published: {sorted(skipped)[:10]}")
    published_mid_ids = [e["data"]["mid_id"] for e in events if e["type"] == "midid.issued"]
    report.mid_id_duplicates += repeated(published_mid_ids)

    # The read models, once every projection has caught up with the store.
    register = Register(env=event_store_env(database_url))
    store = ReadModelStore(read_model_url)
    try:
        projector = Projector(register, store, all_projections(), reset_outdated=False)
        head = projector.head()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if min(p["position"] for p in projector.positions().values()) >= head:
                break
            await asyncio.sleep(0.25)
        with store.reading() as tx:
            rows = tx.execute("SELECT mid_id, command_id FROM rm_mid_ids").all()
            commands = int(tx.execute("SELECT COUNT(*) FROM rm_commands").scalar() or 0)
            history = tx.execute(
                "SELECT mid_id FROM rm_history WHERE event_type = 'MidIdRecord.Issued'"
            ).all()
        registered = {row["command_id"]: row["mid_id"] for row in rows}
        mismatch = len(set(registered.items()) ^ set(stored.items())) + abs(len(rows) - len(registered))
        mismatch += abs(commands - len(records))
        mismatch += len({row["mid_id"] for row in history} ^ set(stored.values()))
        mismatch += repeated([row["mid_id"] for row in history])
        report.read_model_mismatch = mismatch
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


SCENARIOS = ("kill-ingest", "two-ingest", "kill-relay-projector", "restart-nats", "restart-postgres")


async def scenario(
    name: str, kind: str, commands: int, kills: int, seed: int = 7, malformed_every: int = 50
) -> Report:
    """Runs one of SCENARIOS on `kind` (sqlite or postgres): `kills` faults while `commands` stream in."""
    assert name in SCENARIOS, name
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
                sent = Sent()
                # A first part goes in before any fault, the rest streams in while the faults land.
                head_start = commands // 5
                await publish(js, sent, 0, head_start, malformed_every)
                streaming = asyncio.create_task(
                    publish(js, sent, head_start, commands - head_start, malformed_every, spread=0.6 * kills)
                )
                crashes: set[str] = set()
                for fault in range(kills):
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
                    # A role that died is counted once, and restarted so the run can finish.
                    for role in crashed(processes) - crashes:
                        crashes.add(role)
                        processes[role].start()
                    if name in ("kill-ingest", "two-ingest", "kill-relay-projector"):
                        if name == "kill-relay-projector":
                            victim = processes["relay" if fault % 2 == 0 else "projector"]
                        else:
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
                await streaming
                report.malformed = sent.malformed
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
