"""`kadaster legacy import|letters` as an operator runs them: the installed command, in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import load_workbook

from adapters.cli.legacy import read_legacy_file
from domain.identifiers import MidId
from services.register import Register, event_store_env

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE_CSV = DATA / "legacy_register.csv"
SAMPLE_XLSX = DATA / "legacy_register.xlsx"
WITH_ERRORS = DATA / "legacy_register_with_errors.csv"
KADASTER = Path(sys.executable).with_name("kadaster")
LETTER_HEADER = ["label", "modality", "manufacturer", "model", "serial number", "campus", "MID-ID", "status"]


class Kadaster:
    """The console command against one event store, as its environment names it."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.database_url = database_url
        self.env = {
            **os.environ,
            "KADASTER_DATABASE_URL": database_url,
            "KADASTER_DATA_DIR": str(data_dir),
            "KADASTER_LOG_LEVEL": "warning",
        }

    def __call__(self, *argv: str) -> subprocess.CompletedProcess[str]:
        assert KADASTER.exists(), f"the console command is not installed at {KADASTER}"
        return subprocess.run(
            [str(KADASTER), *argv], env=self.env, capture_output=True, text=True, timeout=240, check=False
        )

    def position(self) -> int:
        register = Register(env=event_store_env(self.database_url))
        try:
            return register.position()
        finally:
            register.close()


@pytest.fixture
def kadaster(database_url: str, tmp_path: Path) -> Kadaster:
    return Kadaster(database_url, tmp_path / "data")


def totals(out: str) -> dict[str, int]:
    """The summary's counts, as the text summary prints them."""
    return {name: int(count) for name, count in re.findall(r"^  (\w+) +(\d+)", out, re.MULTILINE)}


def test_importing_the_sample_exits_0_and_summarises_what_was_recorded(kadaster: Kadaster) -> None:
    done = kadaster("legacy", "import", str(SAMPLE_CSV))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("legacy_register.csv: 223 rows\n")
    assert totals(done.stdout) == {"created": 223, "changed": 0, "unchanged": 0, "rejected": 0, "invalid": 0}
    assert "institutions that were registered: 15 (" in done.stdout
    sent = re.search(r"^commands: (\d+) sent, (\d+) accepted, 0 rejected", done.stdout, re.MULTILINE)
    assert sent is not None and sent.group(1) == sent.group(2)
    # The progress bar is drawn only on a terminal; the JSON logs stay on stderr, off the summary.
    assert "[#" not in done.stdout + done.stderr
    position = kadaster.position()
    assert position > 0
    # The same file again: every row unchanged, no command sent, nothing recorded.
    again = kadaster("legacy", "import", str(SAMPLE_CSV))
    assert again.returncode == 0, again.stderr
    assert totals(again.stdout) == {"created": 0, "changed": 0, "unchanged": 223, "rejected": 0, "invalid": 0}
    assert "commands: 0 sent, 0 accepted, 0 rejected (0 sent before)" in again.stdout
    assert kadaster.position() == position


def test_the_excel_sample_imports_through_the_console_command_too(kadaster: Kadaster) -> None:
    done = kadaster("legacy", "import", str(SAMPLE_XLSX), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["file"], summary["rows"], summary["created"], summary["recorded"]) == (
        "legacy_register.xlsx",
        223,
        223,
        True,
    )
    assert all(str(MidId.parse(device["mid_id"])) == device["mid_id"] for device in summary["devices"])


def test_a_file_with_errors_exits_1_lists_every_problem_and_records_nothing(kadaster: Kadaster) -> None:
    done = kadaster("legacy", "import", str(WITH_ERRORS))
    assert done.returncode == 1
    problems = re.findall(r"^  row (\d+), (.+?)(?: '(.*)')?: (.+)$", done.stdout, re.MULTILINE)
    expected = read_legacy_file(WITH_ERRORS).problems
    assert len(problems) == len(expected) == 12
    assert [(int(row), column) for row, column, _, _ in problems] == [(p.row, p.column) for p in expected]
    assert "problems (12):" in done.stdout
    assert "nothing was recorded: 12 row(s) have problems" in done.stdout
    assert "use --skip-invalid" in done.stdout
    assert kadaster.position() == 0


def test_an_unreadable_file_exits_2(kadaster: Kadaster, tmp_path: Path) -> None:
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0 an old Excel file")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip file")
    (tmp_path / "no_header.csv").write_text("just;some;cells\n1;2;3\n", encoding="utf-8")
    (tmp_path / "columns_missing.csv").write_text("erkenningsnummer;toestel;modaliteit\n1;CT1;CT\n")
    for name, message in (
        ("missing.csv", "cannot read"),
        ("old.xls", "old Excel file"),
        ("broken.xlsx", "not a readable .xlsx file"),
    ):
        done = kadaster("legacy", "import", str(tmp_path / name))
        assert done.returncode == 2, name
        assert message in done.stderr, name
    for name, message in (
        ("no_header.csv", "no header row naming the columns"),
        ("columns_missing.csv", "the file has no manufacturer column"),
    ):
        done = kadaster("legacy", "import", str(tmp_path / name))
        assert done.returncode == 2, name
        assert message in done.stdout, name
        assert "nothing was recorded: the file cannot be read as a legacy register" in done.stdout
    assert kadaster.position() == 0


def test_the_letters_are_written_per_institution_in_csv_and_xlsx(kadaster: Kadaster, tmp_path: Path) -> None:
    imported = kadaster("legacy", "import", str(SAMPLE_CSV), "--json")
    assert imported.returncode == 0, imported.stderr
    given = {(d["institution"], d["label"]): d["mid_id"] for d in json.loads(imported.stdout)["devices"]}
    out = tmp_path / "letters"
    done = kadaster("legacy", "letters", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"15 letter(s), 223 device(s), written to {out} (CSV and XLSX each)"
    per_institution = Counter(institution for institution, _ in given)
    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{institution}.{kind}" for institution in per_institution for kind in ("csv", "xlsx")
    )
    for institution, count in per_institution.items():
        with (out / f"{institution}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        workbook = load_workbook(out / f"{institution}.xlsx", read_only=True)
        try:
            sheet = workbook.worksheets[0]
            cells = [
                ["" if cell is None else str(cell) for cell in row]
                for row in sheet.iter_rows(values_only=True)
            ]
        finally:
            workbook.close()
        # The workbook says what the CSV says: a header, then one line per device of that hospital.
        assert cells == rows
        assert rows[0] == LETTER_HEADER
        assert len(rows) == count + 1
        for row in rows[1:]:
            line = dict(zip(LETTER_HEADER, row, strict=True))
            assert str(MidId.parse(line["MID-ID"])) == line["MID-ID"] == given[(institution, line["label"])]
    # One hospital's letter alone.
    only = tmp_path / "one"
    done = kadaster("legacy", "letters", "--out", str(only), "--institution", "71000123", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["institutions"] == {"71000123": per_institution["71000123"]}
    assert sorted(path.name for path in only.iterdir()) == ["71000123.csv", "71000123.xlsx"]


def test_the_import_help_names_every_column_in_dutch_and_english_and_the_date_forms() -> None:
    done = subprocess.run(
        [str(KADASTER), "legacy", "import", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    dutch = (
        "erkenningsnummer",
        "toestel",
        "modaliteit",
        "fabrikant",
        "model",
        "serienummer",
        "campus",
        "installatiedatum",
        "gebruik",
        "fanc-nummer",
        "facturatienummer",
        "status",
    )
    english = (
        "recognition number",
        "device label",
        "modality",
        "manufacturer",
        "serial number",
        "installation date",
        "use",
        "FANC number",
        "billing number",
    )
    for name in (*dutch, *english):
        assert name in text, name
    for form in ("dd/mm/yyyy", "yyyy-mm-dd", "ISO", "Excel"):
        assert form in text, form
    for command in ("institution.register", "midid.backfill", "fanc.legacy-number", "billing.assign"):
        assert command in text, command
    assert "--skip-invalid" in text and "Exit status: 0" in text
    letters = subprocess.run(
        [str(KADASTER), "legacy", "letters", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert letters.returncode == 0
    assert "MID-ID" in letters.stdout and "--out" in letters.stdout and ".xlsx" in letters.stdout


def test_letters_never_overwrite_unasked_and_are_readable_by_their_owner_only(
    kadaster: Kadaster, tmp_path: Path
) -> None:
    import stat

    assert kadaster("legacy", "import", str(SAMPLE_CSV)).returncode == 0
    out = tmp_path / "letters"
    assert kadaster("legacy", "letters", "--out", str(out), "--institution", "71000123").returncode == 0
    letter = out / "71000123.csv"
    assert stat.S_IMODE(letter.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    again = kadaster("legacy", "letters", "--out", str(out), "--institution", "71000123")
    assert again.returncode == 2
    assert again.stderr.strip() == f"kadaster: {letter} already exists: add --force to overwrite it"
    assert (
        kadaster("legacy", "letters", "--out", str(out), "--institution", "71000123", "--force").returncode
        == 0
    )
    letter.unlink()
    letter.symlink_to(tmp_path / "elsewhere.csv")
    planted = kadaster("legacy", "letters", "--out", str(out), "--institution", "71000123", "--force")
    assert planted.returncode == 2 and "symbolic link" in planted.stderr
    assert not (tmp_path / "elsewhere.csv").exists()


def test_an_xlsx_with_a_stray_cell_far_away_exits_2_before_it_is_loaded(
    kadaster: Kadaster, tmp_path: Path
) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "erkenningsnummer"
    sheet["XFD1048576"] = "x"
    path = tmp_path / "huge.xlsx"
    workbook.save(path)
    done = kadaster("legacy", "import", str(path))
    assert done.returncode == 2, done.stderr
    assert "huge.xlsx: its first sheet spans 1,048,576 rows and 16,384 columns" in done.stderr
    assert "Traceback" not in done.stderr
