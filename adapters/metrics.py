"""Prometheus metrics of every role: commands, batches, lags and RPC latency."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from domain.identifiers import MidId
from domain.mid_id import numbers_left_after
from services.processor import Handled

log = structlog.get_logger("kadaster.metrics")

# Well before the 7-digit format runs out: at the register's pace that leaves years to plan a new format.
MIDID_NUMBERS_LOW = 100_000
ISSUING_COMMANDS = ("midid.issue", "midid.backfill")

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "kadaster_commands_total",
    "Commands handled, by type, status and first error code",
    ["type", "status", "code", "channel"],
    registry=REGISTRY,
)
REPLIES_REFUSED = Counter(
    "kadaster_replies_refused_total",
    "Requests not answered because their reply subject was another party's inbox",
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "kadaster_commands_duplicate_total",
    "Commands received again (first outcome returned)",
    ["channel"],
    registry=REGISTRY,
)
INGEST_BATCH = Histogram(
    "kadaster_ingest_batch_size",
    "Messages per ingest batch",
    buckets=(1, 2, 5, 10, 25, 50, 100, 256, 512, 1024),
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "kadaster_ingest_batch_seconds", "Time from fetch to ack of one ingest batch", registry=REGISTRY
)
OUTCOME_BATCHES = Counter(
    "kadaster_outcome_batches_total",
    "Ingest batches whose outcomes were stored in one atomic write (path=atomic) or one by one, and why",
    ["path", "reason"],
    registry=REGISTRY,
)
RPC_SECONDS = Histogram(
    "kadaster_rpc_seconds",
    "MID-ID request latency inside the service",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
PROJECTION_LAG = Gauge(
    "kadaster_projection_lag_events",
    "Events recorded but not yet in a read model",
    ["projection"],
    registry=REGISTRY,
)
RELAY_LAG = Gauge(
    "kadaster_relay_lag_events", "Events recorded but not yet published on KADASTER_EVT", registry=REGISTRY
)
EVENT_STORE_POSITION = Gauge(
    "kadaster_event_store_position", "Newest notification id in the event store", registry=REGISTRY
)

MIDID_NUMBERS_LEFT = Gauge(
    "kadaster_midid_numbers_left",
    "MID-IDs the 7-digit format still allows after the last one this process issued",
    registry=REGISTRY,
)


def note_issued(mid_id: str) -> int:
    """Sets the gauge from an issued MID-ID; warns below MIDID_NUMBERS_LOW (every 10,000, then each)."""
    left = numbers_left_after(MidId.parse(mid_id).sequence)
    MIDID_NUMBERS_LEFT.set(left)
    if left <= MIDID_NUMBERS_LOW and (left % 10_000 == 0 or left <= 1_000):
        log.warning("midid_numbers_running_low", numbers_left=left, mid_id=mid_id)
    return left


def count(handled: Iterable[Handled]) -> None:
    for result in handled:
        if result.duplicate:
            DUPLICATES.labels(result.inbound.channel).inc()
            continue
        outcome = result.outcome
        errors = outcome.get("errors") or []
        code = errors[0]["code"] if errors else ""
        COMMANDS.labels(outcome.get("type") or "", outcome["status"], code, result.inbound.channel).inc()
        issued = (outcome.get("result") or {}).get("mid_id")
        if outcome["status"] == "accepted" and outcome.get("type") in ISSUING_COMMANDS and issued:
            note_issued(issued)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """For roles without the HTTP API: a plain Prometheus endpoint."""
    start_http_server(port, addr=host, registry=REGISTRY)
