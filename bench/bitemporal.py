"""Questions as of a past moment: answered from row versions, against the replay they replace.

On a generated register: each as-of question names a moment never asked before, over NATS; the
baseline is the replay a fresh moment used to cost (every read model rebuilt from the log up to it).
Then eight parties ask fresh moments at once while another puts its ordinary question; the live
read models' catch-up with row versions against the same projections keeping none; and what the
versions cost in storage, per device, over a decade of statements about each.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.bootstrap import all_projections, started
from adapters.nats.client import KadasterClient
from bench.common import Figure, api_settings, at_least, nats_server, summary, value_at_most
from bench.fill import Shape, fill, institution
from domain.identifiers import MidId
from projections.projector import Projection, Projector
from projections.replay import replay
from projections.store import ReadModelStore
from services.processor import CommandProcessor, Inbound
from services.register import Register, event_store_env

CONCURRENT = 8
"""Parties asking fresh moments at once."""


def build(directory: Path, shape: Shape, batch: int = 200) -> tuple[str, str, list[datetime]]:
    """A register of `shape` recorded in batches of `batch` commands, its read models caught up;
    the URLs and the moments of its store transactions."""
    events_url = f"sqlite:///{directory / 'kadaster.db'}"
    read_model_url = f"sqlite:///{directory / 'kadaster.readmodels.db'}"
    register = Register(env=event_store_env(events_url))
    store = ReadModelStore(read_model_url)
    try:
        fill(register, shape, batch=batch)
        projector = Projector(register, store, all_projections())
        projector.catch_up(batch_size=2000)
        projector.refresh_statistics(fresh=True)
        moments = [
            datetime.fromisoformat(t.moment) for t in register.recordings.between(0, register.position())
        ]
    finally:
        store.close()
        register.close()
    return events_url, read_model_url, moments


def fresh_moments(moments: list[datetime], count: int, seed: int) -> list[str]:
    """Moments between the first and last transaction, to the microsecond: none asked twice."""
    first, last = moments[0], moments[-1]
    span = (last - first).total_seconds()
    chosen = random.Random(seed).sample(range(int(span * 1_000_000) or 1), count)
    return [(first + timedelta(microseconds=offset)).isoformat() for offset in chosen]


def replay_seconds(events_url: str, moment: str, directory: Path) -> float:
    """What one fresh moment cost before: every read model replayed from the log up to it."""
    register = Register(env=event_store_env(events_url))
    store = ReadModelStore(f"sqlite:///{directory / f'replay-{time.monotonic_ns()}.db'}", scratch=True)
    try:
        began = time.perf_counter()
        replay(register, store, all_projections(), datetime.fromisoformat(moment))
        return time.perf_counter() - began
    finally:
        store.close()
        register.close()


async def measure(shape: Shape, samples: int, replays: int = 1) -> list[Figure]:
    """As-of p99 over NATS against the replay, and another party's p99 while eight ask as of."""
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-bitemporal-") as scratch:
        directory = Path(scratch)
        loop = asyncio.get_running_loop()
        events_url, read_model_url, moments = await loop.run_in_executor(None, build, directory, shape)
        asked = fresh_moments(moments, samples + CONCURRENT * samples + replays, seed=18)
        replayed = [
            await loop.run_in_executor(None, replay_seconds, events_url, moment, directory)
            for moment in asked[-replays:]
        ]
        with nats_server() as server:
            settings = api_settings(server.url, events_url, read_model_url, directory)
            async with started(settings, ["api"], asyncio.Event()):
                alone, ordinary, crowded = await ask(server.url, shape, asked, samples)
    replay_ms = 1000 * sum(replayed) / len(replayed)
    as_of = summary(alone)
    other = summary(ordinary)
    return [
        Figure(
            "as-of query, a fresh moment, over NATS p99",
            "ms",
            as_of["p99"],
            replay_ms,
            "replaying the read models up to that moment",
            (value_at_most(20.0),),
            higher_is_better=False,
            note=f"p50 {as_of['p50']:.2f} ms; replay {replay_ms / 1000:.1f} s, "
            f"{replay_ms / as_of['p99']:,.0f} x the p99; {shape.devices:,} devices",
            extra={"p50": round(as_of["p50"], 3), "replay_ms": round(replay_ms, 1)},
        ),
        Figure(
            f"ordinary query p99 while {CONCURRENT} parties ask fresh moments",
            "ms",
            other["p99"],
            summary(crowded)["p99"],
            "the fresh-moment questions themselves",
            (value_at_most(50.0),),
            higher_is_better=False,
            note=f"p50 {other['p50']:.2f} ms",
            extra={"p50": round(other["p50"], 3)},
        ),
    ]


async def ask(
    nats_url: str, shape: Shape, moments: list[str], samples: int
) -> tuple[list[float], list[float], list[float]]:
    """One party's as-of questions alone; then another's ordinary ones while eight ask as of.

    Each asker is a hospital of its own, asking about its own devices: the register bounds how many
    expensive questions one party runs at once, so eight from one party would mostly be refused."""
    askers = [institution(i) for i in range(CONCURRENT + 1)]
    clients = [await KadasterClient.connect(nats_url, f"hospital/{h}") for h in askers]
    clients.append(await KadasterClient.connect(nats_url, "fod"))
    try:

        def question(i: int, moment: str | None, asker: int | None = None) -> dict[str, Any]:
            held = askers[asker] if asker is not None else institution(i % shape.institutions)
            filters: dict[str, Any] = {"institution": held, "limit": 50}
            if moment is not None:
                filters["as_of"] = moment
            return filters

        async def timed(client: KadasterClient, filters: dict[str, Any]) -> float:
            began = time.perf_counter()
            await client.query("devices", filters)
            return (time.perf_counter() - began) * 1000

        for i in range(5):  # warm-up, not measured
            await timed(clients[0], question(i, moments[-1], asker=0))
        alone = [await timed(clients[0], question(i, moments[i], asker=0)) for i in range(samples)]
        crowded: list[float] = []
        stop = asyncio.Event()

        async def asking(party: int) -> None:
            i = 0
            while not stop.is_set() and i < samples:
                moment = moments[samples + party * samples + i]
                crowded.append(await timed(clients[1 + party], question(i, moment, asker=1 + party)))
                i += 1

        crowd = [asyncio.create_task(asking(p)) for p in range(CONCURRENT)]
        ordinary = []
        for i in range(samples):
            ordinary.append(await timed(clients[-1], question(i * 7, None)))
        stop.set()
        await asyncio.gather(*crowd)
        return alone, ordinary, crowded
    finally:
        for client in clients:
            await client.close()


# catch-up with and without row versions


class Unversioned(Projection):
    """A projection's handlers without its row versions: the catch-up before them."""

    def __init__(self, inner: Projection) -> None:
        self.inner = inner
        self.name, self.version, self.tables, self.ddl = inner.name, inner.version, inner.tables, inner.ddl

    @staticmethod
    def of(inner: Projection) -> Unversioned:
        """`inner` without its row versions: a read model that writes behind still does, unversioned."""
        name = f"Unversioned{type(inner).__name__}"
        kind = type(name, (Unversioned,), {"write_behind": inner.write_behind})
        made: Unversioned = kind(inner)
        return made

    def all_tables(self) -> list[str]:
        return list(self.tables)

    def statements(self, dialect: str) -> list[str]:
        return list(self.ddl)

    def apply(self, tx: Any, event: Any, position: int) -> None:
        self.inner.apply(tx, event, position)

    def wants(self, event_type: str) -> bool:
        return self.inner.wants(event_type)


def catch_up_rate(events_url: str, directory: Path, versions: bool, run: str) -> tuple[int, float]:
    """Every read model built from the first event into a fresh file; events and events per second."""
    register = Register(env=event_store_env(events_url))
    store = ReadModelStore(f"sqlite:///{directory / f'catchup-{run}.db'}")
    try:
        projections = all_projections() if versions else [Unversioned.of(p) for p in all_projections()]
        projector = Projector(register, store, projections)
        began = time.perf_counter()
        applied = projector.catch_up()
        return applied, applied / (time.perf_counter() - began)
    finally:
        store.close()
        register.close()


def measure_catch_up(events: int) -> list[Figure]:
    """Events per second building every read model, with row versions and without."""
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-versions-") as scratch:
        directory = Path(scratch)
        shape = Shape.of_events(events)
        events_url = f"sqlite:///{directory / 'kadaster.db'}"
        register = Register(env=event_store_env(events_url))
        fill(register, shape, batch=200)
        register.close()
        catch_up_rate(events_url, directory, versions=False, run="warm-up")  # the log in the page cache
        applied, without = catch_up_rate(events_url, directory, versions=False, run="without")
        _, with_versions = catch_up_rate(events_url, directory, versions=True, run="with")
    return [
        Figure(
            f"catch-up with row versions ({applied:,} events, SQLite)",
            "events/s",
            with_versions,
            without,
            "the same read models without row versions",
            (at_least(0.9),),
        )
    ]


# storage per device over a decade


@contextmanager
def decade_register(devices: int) -> Iterator[tuple[Register, Path]]:
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-decade-") as scratch:
        directory = Path(scratch)
        register = Register(env=event_store_env(f"sqlite:///{directory / 'kadaster.db'}"))
        try:
            yield register, directory
        finally:
            register.close()


def _command(source: str, type_: str, data: dict[str, Any], command_id: str) -> Inbound:
    kind, _, party = source.partition("/")
    prefix = f"kadaster.cmd.{kind}.{party}" if party else f"kadaster.cmd.{kind}"
    body = {"specversion": "1.0", "id": command_id, "source": source, "type": type_, "data": data}
    return Inbound(json.dumps(body).encode(), f"{prefix}.{type_}")


def decade(n: int, hospital: str) -> Iterator[Inbound]:
    """Ten years of one device: report, link, a yearly licence, moves, an upgrade, billing, the end."""
    mid_id = str(MidId(n))
    source = f"hospital/{hospital}"
    start = date(2016, 1, 1)
    report = {
        "mid_id": mid_id,
        "modality": "CT",
        "manufacturer": "Siemens",
        "model": "Somatom",
        "serial_number": f"SN-{n}",
        "campus": "Campus Noord",
        "installed_on": start.isoformat(),
        "use": "clinical",
    }
    yield _command(source, "device.report", report, f"d{n}-report")
    yield _command("fod", "midid.link", {"mid_id": mid_id}, f"d{n}-link")
    for year in range(10):
        valid_from = date(2016 + year, 1, 1).isoformat()
        licence = {"mid_id": mid_id, "licence_ref": f"L{n}-{year}", "valid_from": valid_from}
        yield _command("fanc", "fanc.licence", licence, f"d{n}-licence-{year}")
        if year == 1:
            yield _command(
                "riziv", "billing.assign", {"mid_id": mid_id, "billing_number": f"9{n:05d}"}, f"d{n}-b"
            )
        if year in (3, 7):
            campus = "Campus Zuid" if year == 3 else "Campus Noord"
            change = {"mid_id": mid_id, "changes": {"campus": campus}, "effective_on": f"{2016 + year}-06-01"}
            yield _command(source, "device.change", change, f"d{n}-move-{year}")
        if year == 5:
            upgrade = {"mid_id": mid_id, "changes": {"model": "Somatom X"}, "effective_on": "2021-03-01"}
            yield _command(source, "device.change", upgrade, f"d{n}-upgrade")
    leave = {"mid_id": mid_id, "effective_on": "2026-01-01", "reason": "replaced"}
    yield _command(source, "device.decommission", leave, f"d{n}-decommission")


def measure_storage(devices: int) -> list[Figure]:
    """Row versions and bytes of read models per device after a decade of statements about each."""
    with decade_register(devices) as (register, directory):
        processor = CommandProcessor(register)
        hospital = "H001"
        processor.process(
            [
                _command(
                    "fod",
                    "institution.register",
                    {
                        "institution": hospital,
                        "name": "AZ",
                        "province": "Antwerpen",
                        "region": "flemish",
                        "campuses": ["Campus Noord", "Campus Zuid"],
                    },
                    "institution",
                )
            ]
        )
        issue = [
            _command(f"hospital/{hospital}", "midid.issue", {"modality": "CT"}, f"i{n}")
            for n in range(devices)
        ]
        processor.process(issue)
        streams = [list(decade(n + 1, hospital)) for n in range(devices)]
        # One statement about each device at a time, as they come in over the years.
        for step in range(max(len(s) for s in streams)):
            processor.process([s[step] for s in streams if step < len(s)])
        sizes = {}
        rows: dict[str, int] = {}
        for versions in (True, False):
            name = "with" if versions else "without"
            url = f"sqlite:///{directory / f'rm-{name}.db'}"
            store = ReadModelStore(url)
            projections = all_projections() if versions else [Unversioned.of(p) for p in all_projections()]
            Projector(register, store, projections).catch_up()
            if versions:
                with store.reading() as tx:
                    for table in ("rm_devices", "rm_discrepancies", "rm_mid_ids", "rm_device_licences"):
                        rows[table] = int(tx.execute(f"SELECT COUNT(*) FROM {table}_versions").scalar() or 0)
            store.close()
            path = url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes[name] = Path(path).stat().st_size
        events = register.position()
    return [
        Figure(
            "read-model storage per device, a decade of statements each",
            "kB",
            sizes["with"] / devices / 1024,
            sizes["without"] / devices / 1024,
            "the same read models without row versions",
            note=f"{events / devices:.0f} events per device; versions per device: "
            + ", ".join(f"{table} {count / devices:.1f}" for table, count in rows.items()),
            higher_is_better=False,
            extra={"versions_per_device": {t: round(c / devices, 2) for t, c in rows.items()}},
        )
    ]
