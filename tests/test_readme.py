"""The README keeps its promises: the two set-up commands first, every setting documented."""

from __future__ import annotations

from pathlib import Path

from adapters.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_opens_with_the_command_that_runs_the_service_and_the_one_that_runs_the_tests() -> None:
    first_block = README.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_setting_has_a_row_in_the_readmes_configuration_table() -> None:
    rows = {line.split("|")[1].strip() for line in README.splitlines() if line.startswith("| `KADASTER_")}
    documented = {name.strip(" `") for row in rows for name in row.replace(" / ", ",").split(",")}
    missing = [f"KADASTER_{name.upper()}" for name in Settings.model_fields]
    assert [name for name in missing if name not in documented] == []
