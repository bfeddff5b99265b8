"""What every benchmark needs: a nats-server, a fresh event store, commands to send, percentiles."""

from __future__ import annotations

import json
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.config import Settings, load_settings
from adapters.nats.server import NatsServer, free_port

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Goal:
    """A target on a figure: its `ratio` to the baseline, or its `value`, `at_least` or `at_most` a bound."""

    on: str
    bound: float
    at_least: bool

    def text(self, unit: str) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{sign} {self.bound:g} x" if self.on == "ratio" else f"{sign} {self.bound:g} {unit}"

    def shortfall(self, figure: Figure) -> float | None:
        """By what factor the figure misses this goal; None when met (or not measurable)."""
        actual = figure.ratio if self.on == "ratio" else figure.value
        if actual is None or actual != actual:
            return None
        if self.at_least:
            return None if actual >= self.bound else (self.bound / actual if actual > 0 else float("inf"))
        return None if actual <= self.bound else (actual / self.bound if self.bound > 0 else float("inf"))


def at_least(ratio: float) -> Goal:
    return Goal("ratio", ratio, True)


def at_most(ratio: float) -> Goal:
    return Goal("ratio", ratio, False)


def value_at_most(bound: float) -> Goal:
    return Goal("value", bound, False)


@dataclass
class Figure:
    """One line of the table: the kadaster's figure, its baseline, and the targets it is held to."""

    name: str
    unit: str
    value: float
    baseline: float | None = None
    baseline_name: str = ""
    goals: tuple[Goal, ...] = ()
    higher_is_better: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def target(self) -> str:
        return " and ".join(goal.text(self.unit) for goal in self.goals)

    @property
    def met(self) -> bool | None:
        """None: no target; otherwise whether every goal is met."""
        if not self.goals:
            return None
        return all(goal.shortfall(self) is None for goal in self.goals)

    @property
    def verdict(self) -> str:
        if self.met is None:
            return ""
        misses = [(miss, goal) for goal in self.goals if (miss := goal.shortfall(self)) is not None]
        if not misses:
            return "met"
        worst, goal = max(misses, key=lambda pair: pair[0])
        return f"missed, {worst:.2f} x {'short' if goal.at_least else 'over'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "value": _rounded(self.value),
            "baseline": None if self.baseline is None else _rounded(self.baseline),
            "baseline_name": self.baseline_name,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target,
            "met": self.met,
            "verdict": self.verdict,
            "note": self.note,
            **self.extra,
        }


def _rounded(value: float) -> float | None:
    return round(value, 3) if value == value else None


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "p99.9": percentile(samples, 99.9),
        "mean": statistics.fmean(samples) if samples else float("nan"),
    }


@contextmanager
def nats_server(sync_always: bool = True) -> Iterator[NatsServer]:
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-nats-") as directory:
        server = NatsServer(store_dir=Path(directory), port=free_port(), sync_always=sync_always)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kadaster-bench-db-") as directory:
            yield f"sqlite:///{Path(directory) / 'kadaster.db'}"
        return
    import psycopg

    schema = f"kadaster_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_DSN}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def issue_envelope(i: int, hospitals: int = 50) -> tuple[str, bytes, str]:
    """Subject, body and `Nats-Msg-Id` (`<source>:<id>`) of the i-th MID-ID request."""
    institution = f"H{i % hospitals:03d}"
    command_id = f"bench-{i}"
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": command_id,
            "source": f"hospital/{institution}",
            "type": "midid.issue",
            "time": "2026-01-01T00:00:00Z",
            "data": {"modality": "CT"},
        }
    ).encode()
    return f"kadaster.cmd.hospital.{institution}.midid.issue", body, f"hospital/{institution}:{command_id}"


def api_settings(
    nats_url: str, events_url: str | None, read_model_url: str | None, directory: Path, **overrides: Any
) -> Settings:
    """Settings of a benchmark's own api role on a stored register, quiet and on a free HTTP port."""
    return load_settings(
        environ={},
        nats_url=nats_url,
        database_url=events_url,
        readmodel_url=read_model_url,
        data_dir=directory / "data",
        http_port=free_port(),
        log_level="error",
        log_format="json",
        stream_replicas=1,
        **overrides,
    )
