"""`python -m bench [--quick] [--only NAME]`: runs the benchmarks, prints one table, writes JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.logging import configure_logging
from bench import catchup, ingest, rpc
from bench.common import Figure

RESULTS = Path(__file__).resolve().parent / "results"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "kadaster", "baseline", "ratio", "target")]
    for f in figures:
        rows.append(
            (
                f.name,
                f"{f.value:,.2f} {f.unit}",
                "" if f.baseline is None else f"{f.baseline:,.2f} {f.unit}",
                "" if f.ratio is None else f"{f.ratio:.2f} x",
                f.target,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a one-minute version with smaller sizes")
    parser.add_argument(
        "--only", action="append", choices=["ingest", "rpc", "catchup"], help="run only these"
    )
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    args = parser.parse_args()
    configure_logging("json", "error")
    quick = args.quick
    kinds = [k for k in args.databases.split(",") if k]
    selected = set(args.only or ["ingest", "rpc", "catchup"])
    figures: list[Figure] = []
    began = time.monotonic()
    for kind in kinds:
        if "ingest" in selected:
            print(f"ingest on {kind} ...", file=sys.stderr)
            figures += asyncio.run(ingest.measure(kind, 3000 if quick else 20000))
        if "rpc" in selected:
            print(f"MID-ID RPC on {kind} ...", file=sys.stderr)
            figures += asyncio.run(rpc.measure(kind, 300 if quick else 2000, 500, 5 if quick else 60))
        if "catchup" in selected:
            print(f"projection catch-up on {kind} ...", file=sys.stderr)
            figures += catchup.measure(kind, 3000 if quick else 30000)
    text = table(figures)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}"
        ),
        "quick": quick,
        "seconds": round(time.monotonic() - began, 1),
        "figures": [f.as_dict() for f in figures],
    }
    out = RESULTS / ("latest-quick.json" if quick else "latest.json")
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
