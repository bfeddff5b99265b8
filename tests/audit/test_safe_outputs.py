"""What an export writes cannot run as a formula, overwrite a file unasked, or follow a planted symlink."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import pytest
from openpyxl import load_workbook

from adapters.bootstrap import open_register
from adapters.config import load_settings
from adapters.files.exports import kadaster_rows, write_kadaster_csv, write_kadaster_xlsx
from services.register import Register
from tests.audit.test_exports import ReadModels, read_models  # noqa: F401  (fixture)
from tests.audit.test_ledger import audit, cli_env  # noqa: F401  (fixture)
from tests.conftest import Sender
from tests.services.test_device_lifecycle import HOSPITAL, issue, report

HOSTILE = '=HYPERLINK("http://evil.example/","Siemens")'


def export(*argv: str) -> int:
    from adapters.cli.main import build_parser

    args = build_parser().parse_args(["export", *argv])
    result: int = args.func(args)
    return result


def report_hostile_device(sender: Sender) -> None:
    mid_id = issue(sender)
    sender.accepted(
        HOSPITAL,
        "device.report",
        report(mid_id, manufacturer=HOSTILE, model="+SUM(A1:A9)", serial_number="@cmd", campus="-2+3"),
    )


def test_an_xlsx_export_holds_no_formula_cell_whatever_a_party_reported(
    sender: Sender,
    read_models: ReadModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    report_hostile_device(sender)
    path = tmp_path / "kadaster.xlsx"
    write_kadaster_xlsx(kadaster_rows(read_models()), path)
    workbook = load_workbook(path)
    cells = [cell for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    values = {cell.value for cell in cells}
    assert HOSTILE in values and "+SUM(A1:A9)" in values and "@cmd" in values


def test_a_csv_export_writes_formula_like_cells_with_a_leading_apostrophe(
    sender: Sender,
    read_models: ReadModels,  # noqa: F811
) -> None:
    report_hostile_device(sender)
    out = io.StringIO()
    write_kadaster_csv(kadaster_rows(read_models()), out)
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    line = dict(zip(header, row, strict=True))
    assert line["Manufacturer"] == "'" + HOSTILE
    assert line["Model"] == "'+SUM(A1:A9)"
    assert line["Serial number"] == "'@cmd"
    assert line["Campus"] == "'-2+3"
    assert line["Installed on"] == "2024-03-01"


def test_out_refuses_an_existing_file_without_force_and_a_symlink_always(
    sender: Sender,
    register: Register,
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    report_hostile_device(sender)
    target = cli_env / "kadaster.csv"
    target.write_text("keep me")
    assert export("kadaster", "--out", str(target)) == 2
    assert "already exists: add --force" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert export("kadaster", "--out", str(target), "--force") == 0
    assert "Manufacturer" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # A symlink planted where the export goes is never followed, not even with --force.
    victim = cli_env / "victim.txt"
    victim.write_text("untouched")
    link = cli_env / "planted.csv"
    link.symlink_to(victim)
    for extra in ((), ("--force",)):
        assert export("kadaster", "--out", str(link), *extra) == 2
        assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "untouched"
    # Register data is the owner's only; a public key is for handing out.
    fresh = cli_env / "events.jsonl"
    assert export("events", "--out", str(fresh)) == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert audit("advance") == 0
    public = cli_env / "ledger.pub"
    assert audit("public-key", "--out", str(public)) == 0
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert audit("public-key", "--out", str(public)) == 2


def test_the_sqlite_files_are_created_readable_by_their_owner_only(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=str(tmp_path / "data"))
    old = os.umask(0o022)
    try:
        register = open_register(settings)
        register.close()
    finally:
        os.umask(old)
    database = Path(settings.event_store_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
