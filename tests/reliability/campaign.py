"""The full reliability campaign (`make reliability`): faults under load and fuzzing, as one table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.logging import configure_logging
from tests.reliability.faults import Report, scenario

ROOT = Path(__file__).resolve().parents[2]
PLAN = [
    ("kill-ingest", "sqlite", 5000, 20),
    ("kill-ingest", "postgres", 5000, 20),
    ("two-ingest", "sqlite", 3000, 5),
    ("restart-nats", "sqlite", 3000, 3),
    ("restart-postgres", "postgres", 3000, 3),
]


def fuzz_campaign() -> dict[str, int]:
    """Runs the property and fuzz tests with the full hypothesis profile; counts examples tried."""
    env = {**os.environ, "KADASTER_RELIABILITY": "full"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-show-statistics",
            "tests/reliability/test_fuzz.py",
            "tests/reliability/test_invariants.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    examples = sum(int(n) for n in re.findall(r"- (\d+) passing", result.stdout))
    failing = sum(int(n) for n in re.findall(r"(\d+) failing", result.stdout))
    return {"examples": examples, "failing": failing, "exit": result.returncode}


def markdown(reports: list[Report], fuzz: dict[str, int]) -> str:
    lines = [
        "| scenario | store | faults injected | commands sent | malformed among them | lost | doubled "
        "| events lost | events doubled | read-model mismatch | crashes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.scenario} | {r.database} | {r.faults} | {r.commands} | {r.malformed} | {r.lost} "
            f"| {r.doubled} | {r.events_lost} | {r.events_doubled} | {r.read_model_mismatch} "
            f"| {r.crashes} |"
        )
    lines.append(
        f"| fuzzing (hypothesis) | sqlite | - | {fuzz['examples']} generated inputs | all | - | - | - | - "
        f"| - | {fuzz['failing']} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reliability.json"))
    args = parser.parse_args()
    configure_logging("json", "error")
    began = time.monotonic()
    reports = []
    for name, kind, commands, kills in PLAN:
        print(f"{name} on {kind}: {commands} commands, {kills} faults ...", file=sys.stderr)
        reports.append(asyncio.run(scenario(name, kind, commands, kills)))
        print(f"  {reports[-1].as_dict()}", file=sys.stderr)
    print("fuzzing with the full hypothesis profile ...", file=sys.stderr)
    fuzz = fuzz_campaign()
    table = markdown(reports, fuzz)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - began, 1),
                "scenarios": [r.as_dict() for r in reports],
                "fuzz": fuzz,
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    clean = all(r.clean for r in reports) and fuzz["failing"] == 0 and fuzz["exit"] == 0
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
