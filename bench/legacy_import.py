"""`python -m bench.legacy_import [--rows N]`: wall time of `kadaster legacy import` on a generated register.

Writes a made-up legacy register of N devices (20,000 by default) with the samples' generator,
then, on a fresh SQLite file and a fresh PostgreSQL schema, times the real console command
importing it, importing it again (which must record nothing) and writing the hospitals' letters.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "tests" / "data" / "make_legacy_samples.py"
POSTGRES_DSN = os.environ.get("KADASTER_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_SECONDS = 120.0


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_legacy_samples", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up by name while the class is being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_register(path: Path, devices: int) -> Path:
    samples = _generator()
    generator = samples.Generator()
    samples.write_csv(path, samples.dutch_rows(generator, generator.large_register(devices)))
    return path


def kadaster_command() -> list[str]:
    script = Path(sys.executable).with_name("kadaster")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from adapters.cli.main import main; sys.exit(main())"]


@contextmanager
def event_store(kind: str, directory: Path) -> Iterator[str]:
    """A fresh event store: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'kadaster.db'}"
        return
    import psycopg

    schema = f"kadaster_bench_legacy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_DSN else "?"
    try:
        yield f"{POSTGRES_DSN}{separator}schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-4:])} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done


def measure_once(kind: str, register: Path, rows: int) -> dict[str, Any]:
    """One fresh event store: first import, re-import, letters."""
    kadaster = kadaster_command()
    with (
        tempfile.TemporaryDirectory(prefix="kadaster-bench-legacy-") as tmp,
        event_store(kind, Path(tmp)) as url,
    ):
        env = {
            **os.environ,
            "KADASTER_DATABASE_URL": url,
            "KADASTER_DATA_DIR": str(Path(tmp) / "data"),
            "KADASTER_LOG_LEVEL": "error",
        }
        first_seconds, first = timed([*kadaster, "legacy", "import", str(register), "--json"], env)
        imported = json.loads(first.stdout)
        if imported["created"] != rows or imported["rejected"] or imported["invalid"]:
            raise RuntimeError(f"the first import did not create {rows} devices: {_totals(imported)}")
        again_seconds, again = timed([*kadaster, "legacy", "import", str(register), "--json"], env)
        reimported = json.loads(again.stdout)
        if reimported["unchanged"] != rows or reimported["commands"]["sent"]:
            raise RuntimeError(f"the second import was not a no-op: {_totals(reimported)}")
        letters_dir = Path(tmp) / "letters"
        letters_seconds, _ = timed([*kadaster, "legacy", "letters", "--out", str(letters_dir)], env)
        shutil.rmtree(letters_dir, ignore_errors=True)
    return {
        "import_s": first_seconds,
        "reimport_s": again_seconds,
        "letters_s": letters_seconds,
        "commands": imported["commands"]["sent"],
        "institutions": len(imported["institutions_registered"]),
    }


def _totals(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows", "created", "changed", "unchanged", "rejected", "invalid", "commands")
    return {key: summary[key] for key in keys}


def measure(kind: str, rows: int = 20_000, repeats: int = 1, register: Path | None = None) -> dict[str, Any]:
    """The median of `repeats` runs, each on a fresh event store, with every run's figures."""
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-legacy-file-") as tmp:
        path = register or write_register(Path(tmp) / f"legacy_register_{rows}.csv", rows)
        runs = [measure_once(kind, path, rows) for _ in range(repeats)]
    figures = ("import_s", "reimport_s", "letters_s")
    median = {key: statistics.median(run[key] for run in runs) for key in figures}
    return {
        "database": kind,
        "devices": rows,
        "commands": runs[0]["commands"],
        "institutions": runs[0]["institutions"],
        **median,
        "devices_per_s": rows / median["import_s"],
        "target_s": TARGET_SECONDS,
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.legacy_import", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000, help="devices in the register (default 20000)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per database; the median is shown")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-legacy-file-") as tmp:
        register = write_register(Path(tmp) / f"legacy_register_{args.rows}.csv", args.rows)
        results = []
        for kind in [k for k in args.databases.split(",") if k]:
            print(f"legacy import of {args.rows:,} devices on {kind} ...", file=sys.stderr)
            results.append(measure(kind, args.rows, args.repeats, register))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'database':<10} {'devices':>8} {'commands':>9} {'import':>9} {'re-import':>10} {'letters':>8}")
    for r in results:
        verdict = "under" if r["import_s"] < TARGET_SECONDS else "OVER"
        print(
            f"{r['database']:<10} {r['devices']:>8,} {r['commands']:>9,} {r['import_s']:>8.1f}s "
            f"{r['reimport_s']:>9.1f}s {r['letters_s']:>7.1f}s  ({r['devices_per_s']:,.0f} devices/s, "
            f"{verdict} the {TARGET_SECONDS:.0f} s target)"
        )
        if len(r["runs"]) > 1:
            for key, name in (("import_s", "import"), ("reimport_s", "re-import"), ("letters_s", "letters")):
                each = ", ".join(f"{run[key]:.1f}" for run in r["runs"])
                print(f"{'':<10} {name} runs: {each} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
