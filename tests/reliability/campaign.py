"""The full reliability campaign (`make reliability`): faults under load and fuzzing, as one table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.logging import configure_logging
from tests.reliability.faults import Report, scenario
from tests.reliability.fuzzing import TALLY_FILE
from tests.reliability.hostile import hostile_party

ROOT = Path(__file__).resolve().parents[2]
PLAN = [
    ("kill-ingest", "sqlite", 5000, 20),
    ("kill-ingest", "postgres", 5000, 20),
    ("two-ingest", "sqlite", 3000, 5),
    ("kill-relay-projector", "sqlite", 3000, 10),
    ("kill-relay-projector", "postgres", 3000, 10),
    ("restart-nats", "sqlite", 3000, 3),
    ("restart-postgres", "postgres", 3000, 3),
]
# Each fuzzing group runs as its own pytest session with the full hypothesis profile.
FUZZING = {
    "envelopes": ["tests/reliability/test_fuzz.py"],
    "sequences": ["tests/reliability/test_invariants.py"],
    "http": ["tests/reliability/test_http_fuzz.py"],
}


def fuzz_group(paths: list[str]) -> dict[str, int]:
    """Runs one group of property and fuzz tests at full size; counts the inputs they really tried."""
    with tempfile.TemporaryDirectory() as directory:
        tally_file = Path(directory) / "tally.json"
        env = {**os.environ, "KADASTER_RELIABILITY": "full", TALLY_FILE: str(tally_file)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        counted = json.loads(tally_file.read_text()) if tally_file.exists() else {}
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error)", summary)}
    if result.returncode != 0:
        print(result.stdout[-5000:], file=sys.stderr)
    return {
        **counted,
        "tests passed": counts.get("passed", 0),
        "tests failed": counts.get("failed", 0) + counts.get("error", 0),
        "exit": result.returncode,
    }


def fuzz_campaign() -> dict[str, dict[str, int]]:
    return {name: fuzz_group(paths) for name, paths in FUZZING.items()}


def markdown(reports: list[Report], fuzz: dict[str, dict[str, int]]) -> str:
    lines = [
        "| scenario | store | faults injected | commands sent | malformed among them | lost | doubled "
        "| duplicate MID-IDs | events lost | events doubled | read-model mismatch | crashes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.scenario} | {r.database} | {r.faults} | {r.commands} | {r.malformed} "
            # A good command that was not accepted counts as lost, as much as one never answered.
            f"| {r.lost + r.wrong_outcomes} | {r.doubled} | {r.mid_id_duplicates} | {r.events_lost} "
            f"| {r.events_doubled} "
            f"| {r.read_model_mismatch} | {r.crashes} |"
        )
    envelopes, sequences, http = fuzz["envelopes"], fuzz["sequences"], fuzz["http"]
    rejected = envelopes.get("fuzzed inputs rejected", 0)
    lines.append(
        f"| fuzzing envelopes and every command's data (hypothesis) | sqlite | - "
        f"| {envelopes.get('fuzzed inputs', 0)} inputs | {rejected} rejected with a contract code "
        f"| - | - | - | - | - | - | {envelopes['tests failed']} |"
    )
    lines.append(
        f"| random command sequences in random batches (hypothesis) | sqlite | - "
        f"| {sequences.get('commands in sequences', 0)} commands in {sequences.get('command sequences', 0)} "
        f"sequences, {sequences.get('round decisions', 0)} round decisions | - | - | - | - | - | - | - "
        f"| {sequences['tests failed']} |"
    )
    lines.append(
        f"| schemathesis over the OpenAPI document | sqlite, postgres | - "
        f"| {http.get('http requests', 0)} HTTP requests | - | - | - | - | - | - | - "
        f"| {http.get('http 5xx', 0) + http['tests failed']} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reliability.json"))
    parser.add_argument(
        "--only", default="", help="comma-separated scenario names to run (the fuzzing always runs)"
    )
    args = parser.parse_args()
    chosen = {name for name in args.only.split(",") if name}
    configure_logging("json", "error")
    began = time.monotonic()
    reports = []
    for name, kind, commands, kills in PLAN:
        if chosen and name not in chosen:
            continue
        print(f"{name} on {kind}: {commands} commands, {kills} faults ...", file=sys.stderr)
        reports.append(asyncio.run(scenario(name, kind, commands, kills)))
        print(f"  {reports[-1].as_dict()}", file=sys.stderr)
    hostile: dict[str, object] = {}
    if not chosen or "hostile-party" in chosen:
        print("one hostile party: 1000 honest commands at 50/s, a flood at 50/s ...", file=sys.stderr)
        report, hostile = asyncio.run(hostile_party(1000, 50.0, hostile_rate=50.0))
        report.faults = int(report.malformed)
        reports.append(report)
        print(f"  {hostile}", file=sys.stderr)
    print("fuzzing and property tests with the full hypothesis profile ...", file=sys.stderr)
    fuzz = fuzz_campaign()
    table = markdown(reports, fuzz)
    if hostile:
        table += (
            f"\n\nOne hostile party: the other hospital's outcomes came after {hostile['p50 s']} s "
            f"(median), {hostile['p99 s']} s (p99), {hostile['worst s']} s at worst."
        )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - began, 1),
                "scenarios": [r.as_dict() for r in reports],
                "fuzz": fuzz,
                "hostile_party": hostile,
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    clean = all(r.clean for r in reports) and all(g["exit"] == 0 for g in fuzz.values())
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
