"""Auditors' exports: every event as JSON lines, the kadaster as CSV and XLSX, now and as of a past moment.

The kadaster is read from the live read models' row versions; a replay of the events is the oracle."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from adapters.bootstrap import all_projections
from adapters.files.exports import (
    KADASTER_COLUMNS,
    event_records,
    json_safe,
    kadaster_rows,
    write_events_jsonl,
    write_kadaster_csv,
    write_kadaster_xlsx,
)
from projections import kadaster_view
from projections.kadaster_view import KadasterView
from projections.projector import Projector
from projections.queries import Queries
from projections.replay import parse_as_of, replay
from projections.store import ReadModelStore
from services.register import Register
from tests.conftest import Sender
from tests.services.test_device_lifecycle import (
    HOSPITAL,
    LICENCE,
    SUPPLIER,
    backfill,
    issue,
    linked_device,
    notice,
    report,
)

HEADERS = [header for _, header in KADASTER_COLUMNS]

ReadModels = Callable[[], ReadModelStore]


@pytest.fixture
def read_models(register: Register, database_url: str, tmp_path: Path) -> Iterator[ReadModels]:
    """The live read models beside the register (the same database on PostgreSQL, as deployed):
    called, they catch up with the log and are returned."""
    sqlite = database_url.startswith("sqlite:///")
    store = ReadModelStore(f"sqlite:///{tmp_path / 'readmodels.db'}" if sqlite else database_url)
    projector = Projector(register, store, all_projections())

    def caught_up() -> ReadModelStore:
        projector.catch_up()
        return store

    yield caught_up
    store.close()


def a_moment_between() -> datetime:
    """A moment strictly after everything recorded so far and before anything recorded next."""
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def drive_devices(sender: Sender) -> dict[str, str]:
    """Devices in every state the kadaster knows, by MID-ID -> expected status."""
    # A CT through the whole life: reported, linked, licensed, billed.
    billed = linked_device(sender)
    sender.accepted("fanc", "fanc.licence", {"mid_id": billed, **LICENCE})
    sender.accepted("riziv", "billing.assign", {"mid_id": billed, "billing_number": "7001"})
    # An MRI, linked.
    mri = linked_device(sender, "MRI", serial_number="MR-1")
    # A PET-CT only its supplier announced so far.
    announced = issue(sender, "PET-CT")
    sender.accepted(
        SUPPLIER, "device.installation", notice(announced, modality="PET-CT", serial_number="PC-9")
    )
    # A CT reported, then taken out of service.
    retired = issue(sender)
    sender.accepted(HOSPITAL, "device.report", report(retired, serial_number="SN-OLD"))
    sender.accepted(
        HOSPITAL,
        "device.decommission",
        {"mid_id": retired, "effective_on": "2024-06-01", "reason": "replaced"},
    )
    # A CT the FOD backfilled from before MID-IDs, with its old FANC number.
    backfilled = sender.accepted("fod", "midid.backfill", backfill())["mid_id"]
    sender.accepted("fanc", "fanc.legacy-number", {"legacy_number": "F-7", "mid_id": backfilled})
    return {
        billed: "linked",
        mri: "linked",
        announced: "announced",
        retired: "decommissioned",
        backfilled: "linked",
    }


def test_an_xlsx_export_holds_every_device_on_a_sheet_per_modality(
    sender: Sender, read_models: ReadModels, tmp_path: Path
) -> None:
    expected = drive_devices(sender)
    path = tmp_path / "kadaster.xlsx"
    write_kadaster_xlsx(kadaster_rows(read_models()), path)
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["CT", "PET-CT", "MRI"]
    found: dict[str, dict[str, object]] = {}
    for sheet in workbook.worksheets:
        header = [cell.value for cell in sheet[1]]
        assert header == HEADERS
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.freeze_panes == "A2"
        assert sheet.column_dimensions["A"].width >= len("MID-0000001-95")
        for values in sheet.iter_rows(min_row=2, values_only=True):
            row = dict(zip(HEADERS, values, strict=True))
            assert row["Modality"] == sheet.title
            found[str(row["MID-ID"])] = row
    assert {mid_id: row["Status"] for mid_id, row in found.items()} == expected
    billed = next(mid_id for mid_id, row in found.items() if row["Billing number"] == "7001")
    assert found[billed]["FANC licence"] == "FANC-L-1"
    assert found[billed]["Installed on"] == datetime(2024, 3, 1)
    assert found[billed]["Campus"] == "Campus Noord"
    assert {row["FANC legacy number"] for row in found.values()} >= {"F-7"}


def test_a_csv_export_has_the_same_columns_and_a_row_per_device(
    sender: Sender, read_models: ReadModels
) -> None:
    expected = drive_devices(sender)
    out = io.StringIO()
    write_kadaster_csv(kadaster_rows(read_models()), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == HEADERS
    assert {row["MID-ID"]: row["Status"] for row in rows} == expected
    retired = next(row for row in rows if row["Status"] == "decommissioned")
    assert retired["Decommissioned on"] == "2024-06-01"
    announced = next(row for row in rows if row["Status"] == "announced")
    # The kadaster shows what the hospital states; a supplier's notice alone states nothing there.
    assert (announced["Serial number"], announced["Campus"]) == ("", "")


def test_the_kadaster_export_has_the_rows_the_devices_query_answers(
    sender: Sender, register: Register, read_models: ReadModels
) -> None:
    drive_devices(sender)
    answered = Queries(register, read_models()).run("devices", {"limit": 1000})["items"]
    exported = list(kadaster_rows(read_models()))
    assert [row["mid_id"] for row in exported] == [row["mid_id"] for row in answered]
    for row, device in zip(exported, answered, strict=True):
        for key in ("institution", "province", "campus", "status", "serial_number", "billing_number"):
            assert row[key] == device[key], key
        assert row["installed_on"] == (
            date.fromisoformat(device["installed_on"]) if device["installed_on"] else None
        )


def test_a_kadaster_export_as_of_a_past_moment_shows_the_devices_as_they_were(
    sender: Sender, read_models: ReadModels
) -> None:
    first = linked_device(sender)
    before = a_moment_between()
    sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": first, "changes": {"campus": "Campus Zuid"}, "effective_on": "2025-01-01"},
    )
    later = linked_device(sender, "MRI", serial_number="MR-2")
    then = {row["mid_id"]: row for row in kadaster_rows(read_models(), as_of=before)}
    now = {row["mid_id"]: row for row in kadaster_rows(read_models())}
    assert set(then) == {first}
    assert then[first]["campus"] == "Campus Noord"
    assert set(now) == {first, later}
    assert now[first]["campus"] == "Campus Zuid"


def replayed_rows(register: Register, moment: datetime, in_force_on: date) -> list[dict[str, Any]]:
    """The oracle: the kadaster view replayed from the events recorded by `moment` into a database of
    its own, its current rows read as the export shows them."""
    with tempfile.TemporaryDirectory() as scratch:
        store = ReadModelStore(f"sqlite:///{Path(scratch) / 'oracle.db'}", scratch=True)
        try:
            replay(register, store, [KadasterView()], moment)
            with store.reading() as tx:
                rows = kadaster_view.export_page(tx, in_force_on, -1, 10_000)
        finally:
            store.close()
    return [{key: value for key, value in row.items() if key != "sequence"} for row in rows]


def comparable(rows: Any) -> list[dict[str, Any]]:
    """Every value as text: the export types dates and moments, the view keeps them as ISO text."""
    return [
        {key: value.isoformat() if isinstance(value, date) else value for key, value in row.items()}
        for row in rows
    ]


def test_a_kadaster_export_as_of_any_moment_has_the_rows_a_replay_to_that_moment_has(
    sender: Sender, register: Register, read_models: ReadModels
) -> None:
    moments = [a_moment_between()]
    # Each step of a device's life, and the moment after it.
    first = linked_device(sender)
    moments.append(a_moment_between())
    sender.accepted("fanc", "fanc.licence", {"mid_id": first, **LICENCE})
    sender.accepted("riziv", "billing.assign", {"mid_id": first, "billing_number": "7002"})
    # Inside the store transaction that assigned the billing number: after its first event's stamp.
    assert register.recordings is not None
    billed = register.recordings.between(0, register.position())[-1]
    stamped: Any = register.mapper.to_domain_event(
        register.recorder.select_notifications(start=billed.first, limit=1)[0]
    )
    moments.append(stamped.timestamp)
    moments.append(a_moment_between())
    sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": first, "changes": {"campus": "Campus Zuid"}, "effective_on": "2031-01-01"},
    )
    moments.append(a_moment_between())
    drive_devices(sender)
    moments.append(a_moment_between())
    live = read_models()
    for moment in moments:
        for day in (moment.date(), date(2031, 6, 1), date(2020, 1, 1)):
            exported = list(kadaster_rows(live, as_of=moment, in_force_on=day))
            assert comparable(exported) == comparable(replayed_rows(register, moment, day)), (moment, day)
    # With no moment: now, the same rows as a replay of everything.
    assert comparable(kadaster_rows(live)) == comparable(
        replayed_rows(register, datetime.now(UTC) + timedelta(days=1), date.today())
    )


def test_a_kadaster_export_creates_no_database_of_its_own(
    sender: Sender, read_models: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    linked_device(sender)
    moment = a_moment_between()
    drive_devices(sender)
    live = read_models()

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the export made a database of its own")

    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkdtemp", refused)
        patched.setattr(tempfile, "mkstemp", refused)
        patched.setattr(ReadModelStore, "__init__", refused)
        then = list(kadaster_rows(live, as_of=moment))
        now = list(kadaster_rows(live))
    assert len(then) == 1
    assert len(now) == 6


def test_an_events_export_as_of_a_past_moment_holds_exactly_the_events_recorded_up_to_then(
    sender: Sender, register: Register
) -> None:
    linked_device(sender)
    recorded_then = [n.id for n in register.recorder.select_notifications(start=1, limit=10_000)]
    moment = a_moment_between()
    linked_device(sender, "MRI", serial_number="MR-3")
    out = io.StringIO()
    count = write_events_jsonl(register, out, as_of=moment)
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(exported)
    assert [record["position"] for record in exported] == recorded_then
    everything = list(event_records(register))
    assert len(everything) > len(exported)
    assert [record["position"] for record in everything] == sorted(
        record["position"] for record in everything
    )


def test_an_exported_event_carries_its_place_in_the_log_and_json_safe_data(
    sender: Sender, register: Register
) -> None:
    mid_id = linked_device(sender)
    records = list(event_records(register))
    reported = next(r for r in records if r["type"] == "Device.Reported")
    assert reported["topic"] == "domain.device:Device.Reported"
    assert reported["version"] == 2
    assert reported["data"]["installed_on"] == "2024-03-01"
    assert datetime.fromisoformat(reported["recorded_at"]).tzinfo is not None
    opened = next(r for r in records if r["type"] == "Device.Opened")
    assert opened["data"]["mid_id"] == mid_id
    assert opened["aggregate_id"] == reported["aggregate_id"]
    json.dumps(records)


def test_moments_and_values_are_read_and_written_as_auditors_expect() -> None:
    assert parse_as_of("2024-04-23T10:00:00Z") == datetime(2024, 4, 23, 10, tzinfo=UTC)
    assert parse_as_of("2024-04-23T12:00:00+02:00") == datetime(2024, 4, 23, 10, tzinfo=UTC)
    assert parse_as_of("2024-04-23T10:00:00") == datetime(2024, 4, 23, 10, tzinfo=UTC)
    # A bare date is the whole of that day.
    assert parse_as_of("2024-04-23") == datetime(2024, 4, 23, 23, 59, 59, 999999, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_as_of("yesterday")
    assert json_safe({"d": date(2024, 1, 2), "s": {1}, "b": b"\x00"}) == {
        "d": "2024-01-02",
        "s": [1],
        "b": "AA==",
    }


def export(*argv: str) -> int:
    from adapters.cli.main import build_parser

    args = build_parser().parse_args(["export", *argv])
    result: int = args.func(args)
    return result


def test_export_kadaster_brings_the_read_models_up_to_date_and_reads_them_as_of_the_moment(
    sender: Sender,
    register: Register,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [n for n in os.environ if n.startswith("KADASTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KADASTER_DATABASE_URL", database_url)
    monkeypatch.setenv("KADASTER_DATA_DIR", str(tmp_path / "data"))
    first = linked_device(sender)
    moment = a_moment_between()
    sender.accepted(
        HOSPITAL,
        "device.change",
        {"mid_id": first, "changes": {"campus": "Campus Zuid"}, "effective_on": "2031-01-01"},
    )
    drive_devices(sender)

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the export made a temporary database")

    files = {}
    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkdtemp", refused)
        patched.setattr(tempfile, "mkstemp", refused)
        for name, extra in (
            ("then", ("--as-of", moment.isoformat())),
            ("now", ()),
            ("in-2031", ("--in-force-on", "2031-06-01")),
        ):
            files[name] = tmp_path / f"{name}.csv"
            assert export("kadaster", "--out", str(files[name]), *extra) == 0
    assert "devices written" in capsys.readouterr().err

    def read(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(files[name].read_text())))

    def oracle(at: datetime, day: date) -> list[str]:
        return [row["mid_id"] for row in replayed_rows(register, at, day)]

    later = datetime.now(UTC) + timedelta(days=1)
    assert [row["MID-ID"] for row in read("then")] == oracle(moment, moment.date()) == [first]
    assert [row["MID-ID"] for row in read("now")] == oracle(later, date.today())
    assert len(read("now")) == 6
    # The change dated 2031 is recorded now, and in force only from then.
    assert read("now")[0]["Campus"] == "Campus Noord"
    assert read("in-2031")[0]["Campus"] == "Campus Zuid"
    assert export("kadaster", "--in-force-on", "next week") == 2
    assert "--in-force-on" in capsys.readouterr().err


def test_an_events_export_as_of_a_moment_inside_a_store_transaction_holds_none_of_it(
    sender: Sender, register: Register
) -> None:
    linked_device(sender)
    assert register.recordings is not None
    last = register.recordings.between(0, register.position())[-1]
    first: Any = register.mapper.to_domain_event(
        register.recorder.select_notifications(start=last.first, limit=1)[0]
    )
    inside: datetime = first.timestamp
    assert last.first < last.last and inside < datetime.fromisoformat(last.moment)
    exported = [record["position"] for record in event_records(register, as_of=inside)]
    assert exported == list(range(1, last.first))
    recorded = [
        record["position"] for record in event_records(register, as_of=datetime.fromisoformat(last.moment))
    ]
    assert recorded == list(range(1, last.last + 1))
