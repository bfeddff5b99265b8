"""`python -m bench [--quick] [--only NAME]`: runs the benchmarks, prints one table, writes JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from adapters.logging import configure_logging
from bench import bitemporal, catchup, growth, ingest, pages, queries, rpc, serve
from bench.common import Figure
from bench.fill import Shape

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("serve", "ingest", "rpc", "catchup", "growth", "queries", "pages", "bitemporal")


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does: the full run, or the quick one."""

    ingest_commands: int
    rpc_one_at_a_time: int
    rpc_seconds: float
    rpc_peer_seconds: float
    catchup_commands: int
    growth_events: tuple[int, int]
    query_samples: int
    as_of_events: int
    versions_events: int
    as_of_samples: int
    decade_devices: int
    serve_commands: int
    serve_rate_seconds: float


# The kadaster is held at 500/s for a minute on each store; its naive peer for a quarter of that,
# so the run stays within minutes (on PostgreSQL the peer falls behind within seconds).
# The catch-up with and without row versions is a rate: 200,000 events tell it as well as a million.
FULL = Sizes(10_000, 1000, 60, 15, 6000, (100_000, 1_000_000), 200, 1_000_000, 200_000, 200, 1000, 10_000, 30)
QUICK = Sizes(2000, 300, 3, 3, 2000, (10_000, 50_000), 40, 50_000, 50_000, 40, 100, 2000, 3)
RPC_RATE = 500


def table(figures: list[Figure]) -> str:
    rows = [("figure", "kadaster", "baseline", "ratio", "target", "verdict", "note")]
    for f in figures:
        rows.append(
            (
                f.name,
                f"{f.value:,.2f} {f.unit}",
                "" if f.baseline is None else f"{f.baseline:,.2f} {f.unit}",
                "" if f.ratio is None else f"{f.ratio:.2f} x",
                f.target,
                f.verdict,
                f.note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model
            )
    except OSError:
        pass
    return f"{platform.node()}: {model}, {os.cpu_count()} cores, Python {platform.python_version()}"


@contextmanager
def section(title: str, timings: dict[str, float]) -> Iterator[None]:
    print(f"{title} ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    try:
        yield
    finally:
        timings[title] = round(time.monotonic() - began, 1)
        print(f"{title}: {timings[title]:.0f} s", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a one-minute version with smaller sizes")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--as-of-events", type=int, metavar="N", help="size of the register the as-of questions are asked of"
    )
    args = parser.parse_args()
    configure_logging("json", "error")
    quick = args.quick
    sizes = QUICK if quick else FULL
    if args.as_of_events:
        sizes = replace(sizes, as_of_events=args.as_of_events)
    kinds = [k for k in args.databases.split(",") if k]
    selected = set(args.only or BENCHMARKS)
    figures: list[Figure] = []
    timings: dict[str, float] = {}
    began = time.monotonic()
    if "serve" in selected:
        with section("kadaster serve, the embedded default, from outside", timings):
            figures += serve.measure(
                sizes.serve_commands, sizes.rpc_one_at_a_time, RPC_RATE, sizes.serve_rate_seconds
            )
    for kind in kinds:
        if "ingest" in selected:
            with section(f"ingest on {kind}", timings):
                figures += asyncio.run(ingest.measure(kind, sizes.ingest_commands))
        if "rpc" in selected:
            with section(f"MID-ID RPC on {kind}", timings):
                figures += asyncio.run(
                    rpc.measure(
                        kind, sizes.rpc_one_at_a_time, RPC_RATE, sizes.rpc_seconds, sizes.rpc_peer_seconds
                    )
                )
        if "catchup" in selected:
            with section(f"projection catch-up on {kind}", timings):
                figures += catchup.measure(kind, sizes.catchup_commands)
    # Growth and queries on SQLite: the larger log of the one is the register the other asks.
    small, large = sizes.growth_events
    kept = Path(tempfile.mkdtemp(prefix="kadaster-bench-register-"))
    try:
        large_log = None
        if "growth" in selected:
            with section(f"growth at {small:,} and {large:,} events (SQLite)", timings):
                found, large_log = growth.measure(small, large, keep=kept)
                figures += found
        if "queries" in selected:
            shape = Shape.of_events(large)
            with section(f"queries on {shape.devices:,} devices (SQLite)", timings):
                urls = (large_log.events_url, large_log.read_model_url) if large_log else (None, None)
                figures += asyncio.run(queries.measure(shape, sizes.query_samples, *urls))
        if "pages" in selected:
            shape = Shape.of_events(large)
            with section(f"web pages on {shape.devices:,} devices (SQLite)", timings):
                urls = (large_log.events_url, large_log.read_model_url) if large_log else (None, None)
                figures += asyncio.run(pages.measure(shape, sizes.query_samples, *urls))
    finally:
        shutil.rmtree(kept, ignore_errors=True)
    if "bitemporal" in selected:
        as_of_shape = Shape.of_events(sizes.as_of_events)
        with section(f"as-of questions on {as_of_shape.devices:,} devices (SQLite)", timings):
            figures += asyncio.run(bitemporal.measure(as_of_shape, sizes.as_of_samples))
        with section(f"catch-up with row versions at {sizes.versions_events:,} events (SQLite)", timings):
            figures += bitemporal.measure_catch_up(sizes.versions_events)
        with section(f"storage over a decade of {sizes.decade_devices:,} devices (SQLite)", timings):
            figures += bitemporal.measure_storage(sizes.decade_devices)
    text = table(figures)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": quick,
        "seconds": round(time.monotonic() - began, 1),
        "sections": timings,
        "sizes": sizes.__dict__,
        "figures": [f.as_dict() for f in figures],
        "missed": [f.name for f in figures if f.met is False],
    }
    out = RESULTS / ("latest-quick.json" if quick else "latest.json")
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    missed = len(document["missed"])
    met = sum(1 for f in figures if f.met)
    print(
        f"\n{met} targets met, {missed} missed; {document['seconds']:.0f} s on {document['machine']}",
        file=sys.stderr,
    )
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
