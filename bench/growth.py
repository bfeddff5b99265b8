"""Growth: audit replay, ledger advance and verify, and a read model's rebuild, at two sizes of log.

Each operation runs in a fresh child process (`python -m bench.growth OPERATION ...`), so its
peak memory is its own: the figure is how far the child's resident set rose above what it held
just before the operation began (its whole peak is in the note). Time per event and that peak at
the larger log, against the smaller one, say whether the work grows with the log or only with
what it reads.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Figure, at_most
from bench.fill import Shape, fill

OPERATIONS = ("replay", "advance", "verify", "rebuild")
REBUILT = "kadaster_view"
"""The read model a rebuild is timed on: the register's main view."""
TIME_GROWTH, MEMORY_GROWTH = 1.2, 1.5


@dataclass(frozen=True)
class Log:
    """A register filled to about `events` events, in SQLite files of its own directory."""

    directory: Path
    shape: Shape
    events: int

    @property
    def events_url(self) -> str:
        return f"sqlite:///{self.directory / 'kadaster.db'}"

    @property
    def read_model_url(self) -> str:
        return f"sqlite:///{self.directory / 'kadaster.readmodels.db'}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"


def make_logs(small_directory: Path, large_directory: Path, small: int, large: int) -> tuple[Log, Log]:
    """One fill to about `large` events; the smaller log is a copy of its first `small` or so."""
    from services.register import Register, event_store_env

    shape = Shape.of_events(large)
    for directory in (small_directory, large_directory):
        directory.mkdir(parents=True, exist_ok=True)
    small_log = Log(small_directory, shape, 0)
    large_log = Log(large_directory, shape, 0)
    register = Register(env=event_store_env(large_log.events_url))
    copied: list[int] = []

    def copy() -> None:
        copied.append(register.position())
        _copy_sqlite(large_log.events_url, small_log.events_url)

    try:
        recorded = fill(register, shape, copy_at=(small, copy))
    finally:
        register.close()
    return Log(small_directory, shape, copied[0]), Log(large_directory, shape, recorded)


def _copy_sqlite(source_url: str, target_url: str) -> None:
    """A consistent copy of what is committed, through SQLite's backup API."""
    with (
        closing(sqlite3.connect(source_url.removeprefix("sqlite:///"))) as source,
        closing(sqlite3.connect(target_url.removeprefix("sqlite:///"))) as target,
    ):
        source.backup(target)


def run_child(operation: str, log: Log) -> dict[str, Any]:
    """One operation in a fresh interpreter; what it measured."""
    command = [
        sys.executable,
        "-m",
        "bench.growth",
        operation,
        log.events_url,
        log.read_model_url,
        str(log.data_dir),
    ]
    done = subprocess.run(
        command, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_log(log: Log) -> dict[str, dict[str, Any]]:
    """Every operation on one log, in the order they need each other: replay builds what rebuild redoes."""
    return {operation: run_child(operation, log) for operation in OPERATIONS}


def figures(small: Log, large: Log, at_small: dict[str, Any], at_large: dict[str, Any]) -> list[Figure]:
    sizes = f"{_count(large.events)} vs {_count(small.events)} events"
    found = []
    for operation in OPERATIONS:
        a, b = at_small[operation], at_large[operation]
        per_event_small = a["seconds"] / a["events"] * 1e6
        per_event_large = b["seconds"] / b["events"] * 1e6
        what = _described(operation)
        found.append(
            Figure(
                f"growth {what}, time per event, {sizes}",
                "µs/event",
                per_event_large,
                per_event_small,
                f"the same at {_count(small.events)} events",
                (at_most(TIME_GROWTH),),
                higher_is_better=False,
                note=(
                    f"{b['seconds']:.1f} s at {_count(large.events)}, "
                    f"{a['seconds']:.1f} s at {_count(small.events)}"
                ),
                extra={"small": a, "large": b},
            )
        )
        found.append(
            Figure(
                f"growth {what}, peak memory, {sizes}",
                "MiB",
                b["peak_rise_kib"] / 1024,
                a["peak_rise_kib"] / 1024,
                f"the same at {_count(small.events)} events",
                (at_most(MEMORY_GROWTH),),
                higher_is_better=False,
                note=f"whole process peak {b['peak_kib'] / 1024:.0f} MiB vs {a['peak_kib'] / 1024:.0f} MiB",
            )
        )
    return found


def _described(operation: str) -> str:
    return {
        "replay": "audit replay (every read model)",
        "advance": "ledger advance (signed)",
        "verify": "ledger verify",
        "rebuild": f"rebuild {REBUILT}",
    }[operation]


def _count(events: int) -> str:
    if events >= 1_000_000 and events % 100_000 < 50_000:
        return f"{events / 1e6:.1f}M"
    return f"{round(events / 1000):,}k"


def measure(small_events: int, large_events: int, keep: Path) -> tuple[list[Figure], Log]:
    """Both logs, every operation on each; the larger log is left in `keep` for the queries."""
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-growth-") as scratch:
        small, large = make_logs(Path(scratch), keep, small_events, large_events)
        at_small = measure_log(small)
    at_large = measure_log(large)
    return figures(small, large, at_small, at_large), large


# the child


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Starts the resident set's high-water mark again from what is resident now (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def child(operation: str, events_url: str, read_model_url: str, data_dir: Path) -> dict[str, Any]:
    from adapters.config import load_settings
    from adapters.ledger.runner import open_ledger
    from adapters.logging import configure_logging
    from projections.projector import Projector
    from projections.rebuild import rebuild
    from projections.replay import replay
    from projections.store import ReadModelStore
    from services.register import Register, event_store_env

    if operation in ("replay", "rebuild"):
        # Only these need the read models; the wiring that lists them takes a second to import.
        from adapters.bootstrap import all_projections

    configure_logging("json", "error")
    register = Register(env=event_store_env(events_url))
    # A replay builds in a fresh file, as `audit replay` does.
    store = ReadModelStore(read_model_url, scratch=operation == "replay")
    settings = load_settings(environ={}, database_url=events_url, data_dir=data_dir, log_level="error")
    _reset_peak()
    before = _status_kib("VmRSS")
    began = time.perf_counter()
    if operation == "replay":
        events = replay(register, store, all_projections(), None).events
    elif operation == "advance":
        open_ledger(register, settings, signing=True).advance()
        events = register.position()
    elif operation == "verify":
        report = open_ledger(register, settings, signing=False).verify([], None)
        if not report.intact:
            raise RuntimeError(f"the ledger does not verify: {report.as_dict()}")
        events = report.events
    elif operation == "rebuild":
        events = rebuild(Projector(register, store, all_projections()), REBUILT).events
    else:
        raise ValueError(f"no operation {operation!r}")
    seconds = time.perf_counter() - began
    # VmHWM, not getrusage: a child's ru_maxrss starts from its parent's size across fork and exec.
    peak = _status_kib("VmHWM")
    store.close()
    register.close()
    return {
        "operation": operation,
        "events": events,
        "seconds": seconds,
        "rss_before_kib": before,
        "peak_kib": peak,
        "peak_rise_kib": max(peak - before, 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description=child.__doc__)
    parser.add_argument("operation", choices=OPERATIONS)
    parser.add_argument("events_url")
    parser.add_argument("read_model_url")
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args()
    print(json.dumps(child(args.operation, args.events_url, args.read_model_url, args.data_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
