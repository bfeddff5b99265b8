"""The console starts light: reading a command line loads no web framework, NATS client or database driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.cli.commands import commands, load

HEAVY = {"fastapi", "uvicorn", "nats", "psycopg"}

# Runs the console as `kadaster` does, then writes down every top-level package it has imported.
LOADED = """
import json, sys
from adapters.cli.main import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as out:
    json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)
"""


def loaded_by(tmp_path: Path, *argv: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
    listing = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", LOADED, str(listing), *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(listing.read_text()))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["serve", "--help"], ["devices", "list", "--help"], ["audit", "verify", "--help"], ["nope"]],
)
def test_reading_a_command_line_imports_no_web_framework_nats_client_or_database_driver(
    tmp_path: Path, argv: list[str]
) -> None:
    assert loaded_by(tmp_path, *argv) & HEAVY == set()


def test_a_command_that_runs_imports_what_it_needs(tmp_path: Path) -> None:
    # A malformed source stops the command before it connects, but after its module is imported.
    loaded = loaded_by(tmp_path, "send", "midid.issue", "--source", "hospital", "--data", "{}")

    assert "nats" in loaded


def test_every_command_of_the_table_names_a_function_of_its_module() -> None:
    table = list(commands())

    assert len(table) > 40
    for command in table:
        assert callable(load(command.runs)), command.runs
