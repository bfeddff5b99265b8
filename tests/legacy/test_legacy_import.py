"""Importing the legacy kadaster register (issue 10) through the real pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from eventsourcing.utils import get_topic

from adapters.cli.legacy import import_legacy_file, read_legacy_file, read_rows
from adapters.cli.main import build_parser
from adapters.cli.progress import PhasedProgress
from adapters.files.legacy_workbook import read_legacy_register
from domain.command_record import CommandRecord
from domain.device import Device, device_id
from domain.fanc import LegacyFancNumber, legacy_number_id
from domain.identifiers import MidId
from domain.institution import Institution, institution_id
from projections.kadaster_view import KadasterView, find_device, list_devices
from projections.mid_id_register import MidIdRegister, list_mid_ids
from projections.projector import Projector
from projections.store import ReadModelStore
from services.legacy.plan import plan_backfill, state_after_backfill
from services.legacy.rows import LegacyFile
from services.legacy.run import ImportSummary, LegacyImport
from services.legacy.state import DeviceState, legacy_refs, read_devices
from services.processor import CommandProcessor
from services.register import Register

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE_CSV = DATA / "legacy_register.csv"
SAMPLE_XLSX = DATA / "legacy_register.xlsx"
WITH_ERRORS = DATA / "legacy_register_with_errors.csv"

Cli = Callable[..., tuple[int, str]]


def run_import(register: Register, legacy: LegacyFile, **options: Any) -> ImportSummary:
    importer = LegacyImport(CommandProcessor(register), sent_at=datetime(2024, 4, 23, 10, tzinfo=UTC))
    return importer.run(legacy, **options)


def topics_after(register: Register, position: int) -> list[str]:
    notifications = register.recorder.select_notifications(position, 1000, inclusive_of_start=False)
    return [n.topic.split(":")[-1] for n in notifications]


def write_csv(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))
    return path


def sample_cells() -> list[list[Any]]:
    return [list(cells) for _, cells in read_rows(SAMPLE_CSV)]


@pytest.fixture
def cli(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """`kadaster legacy ...` against the test's event store (the parser as the console builds it)."""
    monkeypatch.setenv("KADASTER_DATABASE_URL", database_url)
    monkeypatch.setenv("KADASTER_DATA_DIR", str(tmp_path / "data"))
    parser = build_parser()

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        args = parser.parse_args(["legacy", *argv])
        # The command pipeline logs every command; the CLI keeps that off stdout, so does the test.
        with structlog.testing.capture_logs():
            code: int = args.func(args)
        return code, capsys.readouterr().out

    return run


# the file, checked (no event store)


def test_headers_are_matched_in_dutch_french_or_english_whatever_the_case_accents_and_spacing() -> None:
    rows: list[tuple[int, list[Any]]] = [
        (1, ["Registre des appareils lourds"]),
        (
            2,
            [
                "NUMÉRO D'AGRÉMENT",
                "Appareil",
                "Modalité",
                "Fabricant",
                "Modèle",
                "Numéro de série",
                "Site",
                "Date d'installation",
                "Utilisation",
                "Numéro AFCN",
                "  facturatie nummer ",
                "Statut",
                "Opmerking",
            ],
        ),
        (
            3,
            [
                " 710 00123",
                "spect-ct 2",
                "SPECT/CT",
                "Siemens Healthineers",
                "Symbia Intevo",
                104233,
                "Site Sainte-Élisabeth",
                datetime(2014, 3, 7),
                "mixte",
                "f2014-00017",
                7100123.0,
                "en service",
                "vervangen in 2025",
            ],
        ),
    ]
    legacy = read_legacy_register(rows)
    assert legacy.problems == []
    assert legacy.ignored_columns == ["Opmerking"]
    (device,) = legacy.devices
    assert (device.row, device.institution, device.label, device.modality) == (
        3,
        "71000123",
        "SPECT-CT 2",
        "SPECT-CT",
    )
    assert (device.serial_number, device.installed_on, device.use) == ("104233", date(2014, 3, 7), "mixed")
    assert (device.fanc_number, device.billing_number, device.out_of_service) == (
        "F2014-00017",
        "7100123",
        False,
    )


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("07/03/2014", date(2014, 3, 7)),
        ("7/3/2014", date(2014, 3, 7)),
        ("07-03-2014", date(2014, 3, 7)),
        ("07.03.2014", date(2014, 3, 7)),
        ("2014-03-07", date(2014, 3, 7)),
        ("2014-03-07 00:00:00", date(2014, 3, 7)),
        (datetime(2014, 3, 7), date(2014, 3, 7)),
        (41705, date(2014, 3, 7)),
    ],
)
def test_installation_dates_are_read_day_first_iso_or_as_excel_dates(written: Any, meant: date) -> None:
    header = [
        "erkenningsnummer",
        "toestel",
        "modaliteit",
        "fabrikant",
        "model",
        "serienummer",
        "campus",
        "installatiedatum",
        "gebruik",
    ]
    row = [
        "71000123",
        "CT1",
        "CT",
        "GE HealthCare",
        "Revolution CT",
        "CT1001",
        "Campus A",
        written,
        "klinisch",
    ]
    legacy = read_legacy_register([(1, header), (2, row)])
    assert legacy.problems == []
    assert legacy.devices[0].installed_on == meant


def test_a_file_without_a_required_column_cannot_be_read() -> None:
    rows = [(1, ["erkenningsnummer", "toestel", "modaliteit"]), (2, ["1", "CT1", "CT"])]
    legacy = read_legacy_register(rows)
    assert not legacy.readable
    assert {p.column for p in legacy.problems} >= {"manufacturer", "installation date", "use"}


def test_every_deliberate_error_is_found_on_its_row_and_in_its_column() -> None:
    sample, broken = sample_cells(), [list(cells) for _, cells in read_rows(WITH_ERRORS)]
    header = broken[0]
    # The cells the errors file changed, by spreadsheet row number and column header.
    changed = {
        (number, header[column])
        for number, (good, bad) in enumerate(zip(sample, broken, strict=True), start=1)
        for column in range(len(header))
        if good[column] != bad[column]
    }
    legacy = read_legacy_file(WITH_ERRORS)
    assert len(changed) == 12
    assert {(p.row, p.column) for p in legacy.problems} == changed
    assert len(legacy.problems) == 12
    assert {p.code for p in legacy.problems} == {
        "modality_not_in_scope",
        "schema",
        "conflict",
        "requirements_not_met",
        "not_in_fanc_scope",
    }
    reasons = " | ".join(p.reason for p in legacy.problems)
    for reason in (
        "not a heavy imaging modality",
        "no such day",
        "already used on row",
        "serial number",
        "the manufacturer is missing",
        "research-only",
        "no FANC number",
        "status is",
        "use is",
        "recognition number",
        "not a date",
        "FANC number already given",
    ):
        assert reason in reasons
    assert len(legacy.devices) == legacy.rows - 12


# the import, through the pipeline


def test_the_sample_register_gets_a_linked_mid_id_for_every_device(register: Register) -> None:
    legacy = read_legacy_file(SAMPLE_CSV)
    summary = run_import(register, legacy)
    # Every row made one device, none was refused.
    assert summary.problems == [] and summary.refusals == []
    assert summary.totals() == {
        "rows": 223,
        "created": 223,
        "changed": 0,
        "unchanged": 0,
        "rejected": 0,
        "invalid": 0,
    }
    assert len(summary.institutions_registered) == 15
    assert summary.commands["accepted"] == summary.commands["sent"]
    # Each device carries a valid MID-ID of its own, linked, and is decommissioned when the row says so.
    mid_ids = {result.mid_id for result in summary.results.values()}
    assert len(mid_ids) == 223
    for device in legacy.devices:
        mid_id = summary.results[device.row].mid_id
        assert mid_id is not None and str(MidId.parse(mid_id)) == mid_id
        stored: Any = register.repository.get(device_id(mid_id))
        assert isinstance(stored, Device)
        assert stored.linked and stored.legacy_ref == device.label and stored.registered_before_midid
        assert stored.status == ("decommissioned" if device.out_of_service else "linked")
        assert stored.record["serial_number"] == device.serial_number
        if device.out_of_service:
            assert stored.billing_number is None and stored.licences == {}
        else:
            assert stored.billing_number == device.billing_number
            assert set(stored.licences) == ({device.fanc_number} if device.fanc_number else set())
    # The old FANC numbers map to the MID-IDs, and the hospitals are known with their campuses.
    ionising = next(d for d in legacy.devices if d.fanc_number)
    mapped: Any = register.repository.get(legacy_number_id(ionising.fanc_number or ""))
    assert isinstance(mapped, LegacyFancNumber) and mapped.mid_id == summary.results[ionising.row].mid_id
    hospital: Any = register.repository.get(institution_id("71000415"))
    assert isinstance(hospital, Institution)
    assert (hospital.name, hospital.province, hospital.region) == ("ZNA Scheldeoever", "Antwerpen", "flemish")
    assert hospital.campuses == sorted({d.campus for d in legacy.devices if d.institution == "71000415"})


def test_the_excel_sample_imports_and_says_what_the_csv_says(register: Register) -> None:
    # The workbook (English headers, Excel dates, numbers as numbers) imports on its own.
    summary = run_import(register, read_legacy_file(SAMPLE_XLSX))
    assert summary.problems == [] and summary.refusals == []
    assert summary.count("created") == 223
    # The CSV then finds nothing to add or correct.
    position = register.position()
    again = run_import(register, read_legacy_file(SAMPLE_CSV))
    assert again.count("unchanged") == 223
    assert register.position() == position


def test_a_file_with_errors_records_nothing_and_lists_every_problem(register: Register, cli: Cli) -> None:
    position = register.position()
    code, out = cli("import", str(WITH_ERRORS))
    assert code == 1
    assert register.position() == position
    assert "nothing was recorded: 12 row(s) have problems" in out
    assert "row 9, Modaliteit 'Cone-beam CT': not a heavy imaging modality" in out
    assert "row 24, Installatiedatum '31/02/2014': no such day" in out
    # The summary as JSON names each problem's row, column, value and reason.
    code, out = cli("import", str(WITH_ERRORS), "--json")
    problems = json.loads(out)["problems"]
    assert len(problems) == 12
    assert {"row", "column", "value", "reason", "code"} <= set(problems[0])
    assert register.position() == position


def test_skip_invalid_records_only_the_valid_rows(register: Register, cli: Cli) -> None:
    code, out = cli("import", str(WITH_ERRORS), "--skip-invalid", "--json")
    summary = json.loads(out)
    assert code == 0
    assert (summary["created"], summary["invalid"], summary["rejected"]) == (211, 12, 0)
    imported = legacy_refs(register)
    assert len(imported) == 211
    invalid_rows = {problem["row"] for problem in summary["problems"]}
    assert {device["row"] for device in summary["devices"]}.isdisjoint(invalid_rows)
    # The row reusing an earlier label did not take that label's MID-ID over.
    duplicate = next(p for p in summary["problems"] if "already used on row" in p["reason"])
    assert ("71000217", duplicate["value"]) in imported


def test_importing_the_same_file_again_records_nothing(register: Register, cli: Cli) -> None:
    code, _ = cli("import", str(SAMPLE_CSV))
    assert code == 0
    position = register.position()
    # No command is even sent: the register already says what every row says.
    code, out = cli("import", str(SAMPLE_CSV), "--json")
    summary = json.loads(out)
    assert code == 0
    assert summary["unchanged"] == 223
    assert summary["commands"] == {"sent": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
    assert register.position() == position


def test_a_corrected_file_records_only_the_correction(register: Register, tmp_path: Path) -> None:
    first = run_import(register, read_legacy_file(SAMPLE_CSV))
    position = register.position()
    # One device in service was upgraded: only its model differs.
    cells = sample_cells()
    header = cells[0]
    number = next(n for n, row in enumerate(cells, start=1) if row[header.index("Status")] == "in gebruik")
    cells[number - 1][header.index("Model")] = "SOMATOM Force (upgraded)"
    corrected = run_import(register, read_legacy_file(write_csv(tmp_path / "corrected.csv", cells)))
    assert corrected.totals() == {
        "rows": 223,
        "created": 0,
        "changed": 1,
        "unchanged": 222,
        "rejected": 0,
        "invalid": 0,
    }
    assert corrected.commands["sent"] == 1
    assert sorted(topics_after(register, position)) == ["CommandRecord.Handled", "Device.Corrected"]
    mid_id = first.results[number].mid_id
    assert mid_id is not None
    device: Any = register.repository.get(device_id(mid_id))
    assert isinstance(device, Device)
    assert device.record["model"] == "SOMATOM Force (upgraded)"
    assert device.provenance["model"] == "fod"
    # Sending the corrected file once more changes nothing.
    position = register.position()
    assert run_import(register, read_legacy_file(tmp_path / "corrected.csv")).commands["sent"] == 0
    assert register.position() == position


def test_a_new_row_in_a_later_file_is_backfilled_and_the_others_left_alone(
    register: Register, tmp_path: Path
) -> None:
    run_import(register, read_legacy_file(SAMPLE_CSV))
    position = register.position()
    cells = sample_cells()
    cells.append(
        [
            "71001572",
            "Clinique du Brabant wallon",
            "Waals-Brabant",
            "CT9",
            "CT",
            "Canon Medical",
            "Aquilion ONE",
            "9ZA0001234",
            "Site Ottignies",
            "15/09/2022",
            "klinisch",
            "F2022-00999",
            "7000999",
            "in gebruik",
            "",
        ]
    )
    summary = run_import(register, read_legacy_file(write_csv(tmp_path / "longer.csv", cells)))
    assert (summary.count("created"), summary.count("unchanged")) == (1, 223)
    assert [s for s in topics_after(register, position) if s == "CommandRecord.Handled"] == [
        "CommandRecord.Handled"
    ] * 3
    assert {r.step for r in summary.refusals} == set()
    assert summary.results[len(cells)].changed == ["licence", "billing"]


def test_a_billing_number_the_rules_refuse_is_reported_and_the_rest_is_recorded(
    register: Register, tmp_path: Path
) -> None:
    # A CT with a billing number but no FANC number has no licence; no province: the hospital stays unknown.
    path = write_csv(
        tmp_path / "small.csv",
        [
            [
                "erkenningsnummer",
                "toestel",
                "modaliteit",
                "fabrikant",
                "model",
                "serienummer",
                "campus",
                "installatiedatum",
                "gebruik",
                "facturatienummer",
            ],
            [
                "71009999",
                "CT1",
                "CT",
                "Philips",
                "Incisive CT",
                "70001",
                "Campus A",
                "01/02/2020",
                "klinisch",
                "7123456",
            ],
            [
                "71009999",
                "MRI1",
                "MRI",
                "Philips",
                "Ingenia 1.5T",
                "70002",
                "Campus A",
                "01/02/2020",
                "klinisch",
                "7123457",
            ],
        ],
    )
    summary = run_import(register, read_legacy_file(path))
    assert summary.institutions_unregistered == ["71009999"]
    assert not register.exists(institution_id("71009999"))
    (refusal,) = summary.refusals
    assert (refusal.row, refusal.label, refusal.step) == (2, "CT1", "billing")
    assert refusal.code == "requirements_not_met"
    assert "no FANC licence" in refusal.message
    assert (summary.count("rejected"), summary.count("created")) == (1, 1)
    assert summary.results[2].mid_id is not None
    # Importing again sends the refused command once more: a duplicate, reported, nothing recorded.
    position = register.position()
    again = run_import(register, read_legacy_file(path))
    assert again.commands == {"sent": 1, "accepted": 0, "rejected": 1, "duplicates": 1}
    assert again.refusals[0].earlier
    assert register.position() == position


def test_a_dry_run_says_what_would_happen_and_records_nothing(register: Register, cli: Cli) -> None:
    code, out = cli("import", str(SAMPLE_CSV), "--dry-run", "--json")
    summary = json.loads(out)
    assert code == 0
    assert (summary["created"], summary["recorded"], summary["dry_run"]) == (223, False, True)
    assert summary["commands"]["planned"] > 223
    assert register.position() == 0


# the letters and the read model


def test_the_letters_list_every_device_with_its_mid_id_as_the_register_says(
    register: Register, cli: Cli, tmp_path: Path
) -> None:
    legacy = read_legacy_file(SAMPLE_CSV)
    summary = run_import(register, legacy)
    out = tmp_path / "letters"
    code, _ = cli("letters", "--out", str(out))
    assert code == 0
    per_institution = Counter(device.institution for device in legacy.devices)
    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{institution}.{kind}" for institution in per_institution for kind in ("csv", "xlsx")
    )
    by_key = {(d.institution, d.label): summary.results[d.row].mid_id for d in legacy.devices}
    for institution, count in per_institution.items():
        rows = list(csv.DictReader((out / f"{institution}.csv").open(encoding="utf-8")))
        assert len(rows) == count
        for row in rows:
            # Each MID-ID passes its check digits and is the one the register gave that label.
            assert str(MidId.parse(row["MID-ID"])) == row["MID-ID"] == by_key[(institution, row["label"])]
            device: Any = register.repository.get(device_id(row["MID-ID"]))
            assert isinstance(device, Device)
            assert (row["modality"], row["serial number"], row["campus"], row["status"]) == (
                device.modality,
                device.record["serial_number"],
                device.record["campus"],
                device.status,
            )
        from openpyxl import load_workbook

        sheet = load_workbook(out / f"{institution}.xlsx", read_only=True).worksheets[0]
        cells = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert cells[0] == [
            "label",
            "modality",
            "manufacturer",
            "model",
            "serial number",
            "campus",
            "MID-ID",
            "status",
        ]
        assert [r[6] for r in cells[1:]] == [row["MID-ID"] for row in rows]


def test_the_mid_id_register_shows_the_imported_devices_as_linked(
    register: Register, database_url: str, tmp_path: Path
) -> None:
    summary = run_import(register, read_legacy_file(SAMPLE_CSV))
    url = f"sqlite:///{tmp_path / 'readmodels.db'}" if database_url.startswith("sqlite") else database_url
    store = ReadModelStore(url)
    try:
        Projector(register, store, [MidIdRegister()]).catch_up()
        with store.reading() as tx:
            listed = list_mid_ids(tx, institution="71000123", limit=10_000)
    finally:
        store.close()
    imported = {r.mid_id for r in summary.results.values() if r.institution == "71000123"}
    assert {row["mid_id"] for row in listed} == imported
    assert {row["status"] for row in listed} == {"linked"}
    assert all(row["device_id"] == str(device_id(row["mid_id"])) for row in listed)


def test_the_kadaster_view_shows_every_imported_device_as_the_file_says(
    register: Register, database_url: str, tmp_path: Path
) -> None:
    legacy = read_legacy_file(SAMPLE_CSV)
    summary = run_import(register, legacy)
    url = f"sqlite:///{tmp_path / 'readmodels.db'}" if database_url.startswith("sqlite") else database_url
    store = ReadModelStore(url)
    try:
        Projector(register, store, [KadasterView()]).catch_up()
        with store.reading() as tx:
            rows, total = list_devices(tx, {}, [], limit=10_000, offset=0, in_force_on=date.today())
            shown = find_device(tx, summary.results[legacy.devices[0].row].mid_id or "", date.today())
    finally:
        store.close()
    # One row per device, under the MID-ID it received, saying what its line of the file says.
    assert total == len(rows) == 223
    by_mid_id = {row["mid_id"]: row for row in rows}
    for device in legacy.devices:
        row = by_mid_id[summary.results[device.row].mid_id]
        assert (row["institution"], row["modality"], row["serial_number"], row["campus"]) == (
            device.institution,
            device.modality,
            device.serial_number,
            device.campus,
        )
        assert (row["manufacturer"], row["model"], row["use"], row["installed_on"]) == (
            device.manufacturer,
            device.model,
            device.use,
            device.installed_on.isoformat(),
        )
        assert row["legacy_number"] == device.fanc_number
        assert row["status"] == ("decommissioned" if device.out_of_service else "linked")
        in_service = not device.out_of_service
        assert row["billing_number"] == (device.billing_number if in_service else None)
        assert row["licence_ref"] == (device.fanc_number if in_service else None)
        assert (row["province"], row["region"]) == (device.province, device.region)
    # The detail names the hospital, and the FOD as the source of what the legacy register said.
    assert shown is not None and shown["institution_name"] == "AZ Leiedal"
    assert shown["provenance"]["serial_number"]["source"] == "fod"


def test_each_row_goes_in_through_the_live_commands_and_their_log(register: Register) -> None:
    legacy = read_legacy_file(SAMPLE_CSV)
    summary = run_import(register, legacy)
    records = [
        register.mapper.to_domain_event(n)
        for n in register.recorder.select_notifications(
            0, 10_000, topics=[f"{get_topic(CommandRecord)}.Handled"], inclusive_of_start=False
        )
    ]
    # Every command is logged as a live message would be, under the FOD that sent it, on the import channel.
    sent: Any = Counter((record.command_type, record.sender) for record in records)
    in_service = [d for d in legacy.devices if not d.out_of_service]
    assert sent == {
        ("institution.register", "fod"): 15,
        ("midid.backfill", "fod"): 223,
        ("fanc.licence", "fod"): sum(1 for d in in_service if d.fanc_number),
        ("billing.assign", "fod"): sum(1 for d in in_service if d.billing_number),
        ("device.decommission", "fod"): sum(1 for d in legacy.devices if d.out_of_service),
    }
    assert sum(sent.values()) == summary.commands["sent"] == summary.commands["accepted"]
    assert {record.channel for record in records} == {"import"}
    assert {record.outcome["status"] for record in records} == {"accepted"}
    assert all(record.command_id.startswith("legacy:") for record in records)


def test_an_old_fanc_number_a_later_file_adds_is_mapped_through_fanc_legacy_number(
    register: Register, tmp_path: Path
) -> None:
    cells = sample_cells()
    header = cells[0]
    fanc, billing, status = (header.index(name) for name in ("FANC-nummer", "Facturatienummer", "Status"))
    number = next(n for n, row in enumerate(cells, start=1) if row[fanc] and row[status] == "in gebruik")
    complete = list(cells[number - 1])
    # The first file lacks the device's FANC number, so it gets neither licence nor billing number.
    cells[number - 1][fanc] = cells[number - 1][billing] = ""
    first = run_import(register, read_legacy_file(write_csv(tmp_path / "first.csv", cells)))
    assert first.refusals == [] and first.count("created") == 223
    mid_id = first.results[number].mid_id
    assert mid_id is not None
    # The corrected file gives it both: FANC maps the number, then the licence, then RIZIV's billing number.
    cells[number - 1] = complete
    position = register.position()
    corrected = run_import(register, read_legacy_file(write_csv(tmp_path / "corrected.csv", cells)))
    assert (corrected.count("changed"), corrected.count("unchanged"), corrected.refusals) == (1, 222, [])
    assert corrected.results[number].changed == ["fanc-number", "licence", "billing"]
    assert [t for t in topics_after(register, position) if not t.startswith("CommandRecord")] == [
        "Device.LegacyNumberMapped",
        "LegacyFancNumber.Mapped",
        "Device.LicenceRecorded",
        "Device.BillingNumberAssigned",
        "BillingNumber.Assigned",
    ]
    mapped: Any = register.repository.get(legacy_number_id(complete[fanc]))
    assert isinstance(mapped, LegacyFancNumber) and mapped.mid_id == mid_id


def test_the_import_sends_the_same_commands_whatever_the_batch_size(register: Register) -> None:
    legacy = read_legacy_file(SAMPLE_CSV)
    # Small batches: devices go in a few at a time, each batch's follow-up commands after its backfills.
    importer = LegacyImport(
        CommandProcessor(register), sent_at=datetime(2024, 4, 23, 10, tzinfo=UTC), batch_size=7
    )
    summary = importer.run(legacy)
    assert summary.refusals == [] and summary.count("created") == 223
    assert summary.commands["sent"] == summary.commands["accepted"]
    # In one batch, the same file finds every row as it would have recorded it.
    position = register.position()
    again = run_import(register, legacy)
    assert again.count("unchanged") == 223 and again.commands["sent"] == 0
    assert register.position() == position


def test_the_progress_bar_counts_the_institutions_then_the_devices(register: Register) -> None:
    stream = io.StringIO()
    progress = PhasedProgress(stream=stream, enabled=True)
    summary = import_legacy_file(register, read_legacy_file(SAMPLE_CSV), batch_size=50, progress=progress)
    progress.close()
    assert summary.count("created") == 223
    drawn = [line.strip() for line in stream.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert drawn[0].startswith("institutions [")
    assert any(line.startswith("institutions [") and " 15/15 " in line for line in drawn)
    assert drawn[-1].startswith("devices [" + "#" * 30 + "] 100.0% 223/223 ")


def test_reading_the_devices_in_pages_gives_what_reading_them_one_by_one_gives(register: Register) -> None:
    summary = run_import(register, read_legacy_file(SAMPLE_CSV))
    mid_ids = [result.mid_id for result in summary.results.values() if result.mid_id]
    # Pages smaller than the register, so devices' events straddle pages.
    paged = read_devices(register, page=50)
    assert sorted(paged) == sorted(mid_ids)
    for mid_id in mid_ids:
        one: Any = register.repository.get(device_id(mid_id))
        assert DeviceState.of(paged[mid_id]) == DeviceState.of(one)
        assert paged[mid_id].version == one.version
    assert sorted(read_devices(register, mid_ids[:5])) == sorted(mid_ids[:5])
    assert read_devices(register, []) == {}


def test_what_the_import_predicts_of_a_backfill_is_what_the_register_recorded(
    register: Register,
) -> None:
    legacy = read_legacy_file(SAMPLE_CSV)
    # Only the backfill, so the register holds exactly what it recorded.
    backfills = [
        plan_backfill(device, legacy.name).inbound(datetime(2024, 4, 23, 10, tzinfo=UTC))
        for device in legacy.devices
    ]
    handled = CommandProcessor(register).process(backfills)
    recorded = read_devices(register)
    assert len(recorded) == len(legacy.devices)
    for device, outcome in zip(legacy.devices, handled, strict=True):
        mid_id = outcome.outcome["result"]["mid_id"]
        predicted = state_after_backfill(device, mid_id)
        assert predicted == DeviceState.of(recorded[mid_id])
        assert predicted.fingerprint == DeviceState.of(recorded[mid_id]).fingerprint
    # A dry run's new device is shown without a MID-ID of its own.
    assert state_after_backfill(legacy.devices[0], None).mid_id == "MID-(new)"
