"""Projection catch-up: building every read model from a stored log, against bare read-and-deserialise."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from adapters.bootstrap import all_projections, freeze_startup_heap
from bench.common import Figure, at_least, database, issue_envelope
from bench.fill import Shape
from bench.fill import fill as fill_register
from domain.identifiers import MidId
from projections.projector import Projector
from projections.store import ReadModelStore
from services.processor import CommandProcessor, Inbound
from services.register import Register, event_store_env


def fill(register: Register, commands: int) -> None:
    """A log of MID-ID issuance and cancellation, recorded through the real pipeline in batches."""
    processor = CommandProcessor(register)
    batch: list[Inbound] = []
    for i in range(commands):
        subject, body, _ = issue_envelope(i)
        batch.append(Inbound(body, subject, stream_sequence=i + 1))
        if len(batch) == 500:
            processor.process(batch)
            batch = []
    if batch:
        processor.process(batch)
    cancels = []
    for i in range(0, commands, 10):
        institution = f"H{i % 50:03d}"
        cancel = json.dumps(
            {
                "specversion": "1.0",
                "id": f"cancel-{i}",
                "source": f"hospital/{institution}",
                "type": "midid.cancel",
                "data": {"mid_id": str(MidId(i + 1)), "reason": "bench"},
            }
        )
        cancels.append(Inbound(cancel.encode(), f"kadaster.cmd.hospital.{institution}.midid.cancel"))
    for start in range(0, len(cancels), 500):
        processor.process(cancels[start : start + 500])


def bare_read(register: Register) -> tuple[int, float]:
    started = time.perf_counter()
    position, count = 0, 0
    while True:
        page = register.recorder.select_notifications(start=position, limit=1000, inclusive_of_start=False)
        if not page:
            break
        for notification in page:
            register.mapper.to_domain_event(notification)
        count += len(page)
        position = page[-1].id
    return count, count / (time.perf_counter() - started)


def projected(register: Register, read_model_url: str) -> tuple[int, float]:
    store = ReadModelStore(read_model_url)
    projector = Projector(register, store, all_projections())
    started = time.perf_counter()
    applied = projector.catch_up()
    rate = applied / (time.perf_counter() - started)
    store.close()
    return applied, rate


def measure(kind: str, commands: int) -> list[Figure]:
    """Two logs: MID-IDs issued and cancelled (one row per command in most read models), and the
    register's own mix of backfilled devices and free MID-IDs (a device's row changed by several
    events of one command). The process collects garbage as `kadaster serve` has it collect."""
    freeze_startup_heap()
    figures = []
    for workload in ("MID-IDs", "devices"):
        with database(kind) as url, tempfile.TemporaryDirectory() as directory:
            register = Register(env=event_store_env(url))
            if workload == "MID-IDs":
                fill(register, commands)
            else:
                fill_register(register, Shape.of_events(commands * 8))
            events, bare = bare_read(register)
            read_models = f"sqlite:///{Path(directory) / 'rm.db'}" if kind == "sqlite" else url
            applied, ours = projected(register, read_models)
            register.close()
        figures.append(
            Figure(
                f"projection catch-up {kind}, {workload} ({events} events)",
                "events/s",
                ours,
                bare,
                "bare read + deserialise",
                (at_least(0.5),),
                extra={"applied": applied},
            )
        )
    return figures
