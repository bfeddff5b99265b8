"""The table of a benchmark run as Markdown, for the README: `python -m bench.report [RESULTS.json]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    digits = 0 if abs(value) >= 1000 else 2
    return f"{value:,.{digits}f} {unit}"


def markdown(document: dict[str, Any]) -> str:
    lines = [
        f"Run of {document['when'][:10]} on {document['machine']}, {document['seconds']:.0f} s"
        + (" (quick sizes)" if document.get("quick") else "")
        + ":",
        "",
        "| figure | kadaster | baseline | ratio | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for figure in document["figures"]:
        ratio = figure.get("ratio")
        lines.append(
            "| "
            + " | ".join(
                (
                    figure["name"],
                    _number(figure["value"], figure["unit"]),
                    _number(figure.get("baseline"), figure["unit"]),
                    "" if ratio is None else f"{ratio:.2f} x",
                    figure.get("target", ""),
                    figure.get("verdict", ""),
                )
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument(
        "results", nargs="?", type=Path, default=RESULTS / "latest.json", help="default: the latest full run"
    )
    args = parser.parse_args()
    print(markdown(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
