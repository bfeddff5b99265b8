"""The layers' imports point inward: domain <- services <- projections <- adapters."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)

ALLOWED = {
    "domain": {"domain", "pydantic", "pydantic_core", "eventsourcing"},
    "services": {"services", "domain", "pydantic", "pydantic_core", "eventsourcing", "structlog"},
    "projections": {"projections", "domain", "eventsourcing", "structlog", "psycopg"},
}
FORBIDDEN_STDLIB = {
    "domain": {"sqlite3", "logging", "socket", "subprocess", "asyncio", "threading"},
    "services": {"sqlite3", "socket", "subprocess", "asyncio"},
    "projections": {"socket", "subprocess", "asyncio"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_itself_inner_layers_and_its_libraries(layer: str) -> None:
    offences = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for module in imported_modules(path) - {"__future__"}:
            if module in STDLIB:
                if module in FORBIDDEN_STDLIB[layer]:
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
            elif module not in ALLOWED[layer]:
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_domain_code_never_reads_the_clock_or_makes_random_ids() -> None:
    offences = []
    for path in sorted((ROOT / "domain").rglob("*.py")):
        text = path.read_text()
        for needle in ("datetime.now", "date.today", "time.time(", "uuid4(", "random."):
            if needle in text:
                offences.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offences == []


def test_every_module_says_what_it_is_for() -> None:
    missing = []
    for layer in ("domain", "services", "projections", "adapters"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            if not ast.get_docstring(ast.parse(path.read_text())):
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []
