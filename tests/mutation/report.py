"""Prints mutmut's results per module: killed, survived and equivalent mutants, and the score.

Reads the `.meta` files `mutmut run` leaves under `mutants/`, and `equivalent.txt` beside this
module: the mutants reviewed as equivalent (they change no behaviour), one per line with the reason.
The score is killed / (all mutants - equivalent ones). Exits 1 when a domain module scores below
the threshold, or when `equivalent.txt` names a mutant that no longer survives (the list is stale).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("equivalent.txt")
THRESHOLD = 90.0

# mutmut's exit codes (mutmut/stats.py): the tests failed, timed out or the type checker refused it.
KILLED_CODES = {1, 3, 24, -24, 152, 255, 36, 37, -11, -9}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}


@dataclass
class ModuleFigures:
    module: str
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: int = 0
    no_tests: list[str] = field(default_factory=list)
    not_checked: int = 0

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + self.equivalent + len(self.no_tests) + self.not_checked

    @property
    def counted(self) -> int:
        """Mutants that a test should kill: all of them but the equivalent ones."""
        return self.total - self.equivalent

    @property
    def score(self) -> float:
        """Rounded down to a tenth, so that one survivor among thousands never reads as 100%."""
        return 100.0 if self.counted == 0 else math.floor(1000 * self.killed / self.counted) / 10


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """`mutant name | reason` per line; blank lines and `#` comments are skipped. A reason is required."""
    equivalents: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, separator, reason = (part.strip() for part in text.partition("|"))
        if not separator or not reason:
            raise ValueError(f"{path}:{number}: an equivalent mutant needs `name | reason`")
        equivalents[name] = reason
    return equivalents


def read_results(mutants_dir: Path) -> Iterator[tuple[str, str, int | None]]:
    """(module, mutant name, exit code) for every mutant mutmut generated."""
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        module = meta.relative_to(mutants_dir).as_posix().removesuffix(".meta")
        data = json.loads(meta.read_text(encoding="utf-8"))
        for name, exit_code in data.get("exit_code_by_key", {}).items():
            yield module, name, exit_code


def tally(
    results: Iterator[tuple[str, str, int | None]], equivalents: Mapping[str, str]
) -> tuple[dict[str, ModuleFigures], list[str]]:
    """Figures per module, and the equivalents listed that did not survive (stale entries)."""
    figures: dict[str, ModuleFigures] = {}
    stale: list[str] = []
    for module, name, exit_code in results:
        counts = figures.setdefault(module, ModuleFigures(module))
        if exit_code is None:
            counts.not_checked += 1
        elif exit_code in SURVIVED_CODES:
            if name in equivalents:
                counts.equivalent += 1
            else:
                counts.survived.append(name)
            continue
        elif exit_code in NO_TESTS_CODES:
            counts.no_tests.append(name)
        elif exit_code in KILLED_CODES:
            counts.killed += 1
        else:
            counts.survived.append(name)
        if name in equivalents:
            stale.append(name)
    return figures, stale


def table(figures: Mapping[str, ModuleFigures]) -> str:
    """A Markdown table, one row per module with mutants, then the total."""
    rows = [
        "| module | mutants | killed | survived | no test | equivalent | killed of non-equivalent |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total = ModuleFigures("total")
    for module in sorted(figures):
        f = figures[module]
        if f.total == 0:
            continue
        rows.append(
            f"| `{module}` | {f.total} | {f.killed} | {len(f.survived)} | {len(f.no_tests)} "
            f"| {f.equivalent} | {f.score:.1f}% |"
        )
        total.killed += f.killed
        total.survived += f.survived
        total.equivalent += f.equivalent
        total.no_tests += f.no_tests
        total.not_checked += f.not_checked
    rows.append(
        f"| **total** | {total.total} | {total.killed} | {len(total.survived)} | {len(total.no_tests)} "
        f"| {total.equivalent} | {total.score:.1f}% |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's working directory")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant's name")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="minimum score of domain modules")
    args = parser.parse_args(argv)

    if not args.mutants.is_dir():
        print(f"no {args.mutants}/: run `make mutation` first", file=sys.stderr)
        return 2
    figures, stale = tally(read_results(args.mutants), read_equivalents())
    print(table(figures))
    if args.survivors:
        for module in sorted(figures):
            for name in figures[module].survived + figures[module].no_tests:
                print(f"survived: {name}")
    failing = [
        f.module
        for f in figures.values()
        if f.module.startswith("domain/") and f.total and f.score < args.threshold
    ]
    for name in stale:
        print(f"listed as equivalent but no longer survives: {name}", file=sys.stderr)
    for module in failing:
        print(
            f"{module} kills fewer than {args.threshold:.0f}% of its non-equivalent mutants", file=sys.stderr
        )
    return 1 if failing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
