"""Exports for auditors: every stored event as JSON lines; the kadaster, a row per device, as CSV or XLSX."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, Any, TextIO
from uuid import UUID

from adapters.files.safe_files import csv_text
from domain.identifiers import Modality
from projections import kadaster_view
from projections.queries import AsOfStore, cut_at, latest_cut
from projections.replay import utc
from projections.store import ReadModelStore
from services.register import Register

Progress = Callable[[int, int], None]

BATCH = 2000

HEADERS = {
    "mid_id": "MID-ID",
    "institution": "Institution",
    "province": "Province",
    "campus": "Campus",
    "modality": "Modality",
    "manufacturer": "Manufacturer",
    "model": "Model",
    "serial_number": "Serial number",
    "use": "Use",
    "installed_on": "Installed on",
    "status": "Status",
    "licence_ref": "FANC licence",
    "licence_valid_from": "Licence valid from",
    "licence_valid_until": "Licence valid until",
    "legacy_number": "FANC legacy number",
    "billing_number": "Billing number",
    "legacy_ref": "FOD file (before MID-ID)",
    "registered_on": "Registered on",
    "linked_on": "Linked on",
    "decommissioned_on": "Decommissioned on",
    "opened_at": "First recorded (UTC)",
    "updated_at": "Last changed (UTC)",
}
"""How an export heads each of the kadaster view's columns."""

KADASTER_COLUMNS = [(name, HEADERS[name]) for name in kadaster_view.EXPORT_COLUMNS]
"""The kadaster view's columns (`projections.kadaster_view.EXPORT_COLUMNS`), with their headers."""


def json_safe(value: Any) -> Any:
    """Plain JSON: UUIDs, dates and moments as ISO strings, bytes as base64, containers recursively."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return str(value)


# events


def event_records(
    register: Register, as_of: datetime | None = None, progress: Progress | None = None
) -> Iterator[dict[str, Any]]:
    """Every stored event in log order; with `as_of`, only those of the store transactions recorded
    at or before that moment (never part of one)."""
    total = register.recorder.max_notification_id() or 0
    limit = utc(as_of) if as_of is not None else None
    stop = None
    if limit is not None and register.recordings is not None:
        stop = total = register.recordings.cut(limit)
        limit = None
    position = 0
    while stop is None or position < stop:
        notifications = register.recorder.select_notifications(
            start=position, limit=BATCH, stop=stop, inclusive_of_start=False
        )
        if not notifications:
            break
        for notification in notifications:
            event: Any = register.mapper.to_domain_event(notification)
            recorded_at = utc(event.timestamp)
            if limit is not None and recorded_at > limit:
                continue
            data = {
                key: value
                for key, value in vars(event).items()
                if key not in ("originator_id", "originator_version", "timestamp")
            }
            yield {
                "position": notification.id,
                "aggregate_id": str(notification.originator_id),
                "version": notification.originator_version,
                "type": notification.topic.partition(":")[2],
                "topic": notification.topic,
                "recorded_at": recorded_at.isoformat(),
                "data": json_safe(data),
            }
        position = notifications[-1].id
        if progress is not None:
            progress(position, max(total, position))


def write_events_jsonl(
    register: Register, out: TextIO, as_of: datetime | None = None, progress: Progress | None = None
) -> int:
    count = 0
    for record in event_records(register, as_of, progress):
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


# the kadaster


def _typed(key: str, value: Any) -> Any:
    """The view keeps dates and moments as ISO text; a spreadsheet wants them as dates."""
    if not isinstance(value, str) or not value:
        return value
    if key.endswith("_at"):
        return datetime.fromisoformat(value)
    if key.endswith("_on") or key.startswith("licence_valid"):
        return date.fromisoformat(value)
    return value


def kadaster_rows(
    store: ReadModelStore,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    in_force_on: date | None = None,
) -> Iterator[dict[str, Any]]:
    """The kadaster view, one row per device in MID-ID order, as the `devices` query answers it: read
    from the read models' row versions as of `as_of` (default: the last store transaction they
    applied), a page at a time. One cut for every page, so the pages agree with each other even while
    a projector writes; bring the read models up to date with the log before asking for now.

    Each device as in force on `in_force_on` (default: the day of `as_of`, or today)."""
    if in_force_on is None:
        in_force_on = utc(as_of).date() if as_of is not None else date.today()
    with store.reading() as tx:
        cut = cut_at(tx, utc(as_of)) if as_of is not None else latest_cut(tx)
    then = AsOfStore(store, cut)
    total = 0
    if progress is not None:
        with then.reading() as tx:
            total = kadaster_view.list_devices(tx, {}, [("mid_id", False)], 1, 0, in_force_on)[1]
    after, done = -1, 0
    while True:
        with then.reading() as tx:
            rows = kadaster_view.export_page(tx, in_force_on, after, BATCH)
        if not rows:
            return
        after = int(rows[-1]["sequence"])
        for row in rows:
            yield {key: _typed(key, value) for key, value in row.items() if key != "sequence"}
        done += len(rows)
        if progress is not None:
            progress(done, max(total, done))


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_kadaster_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Writes the rows as they come; returns how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for _, header in KADASTER_COLUMNS])
    count = 0
    for row in rows:
        writer.writerow([csv_text(_cell_text(row.get(key))) for key, _ in KADASTER_COLUMNS])
        count += 1
    return count


def as_text_cells(cells: Iterable[Any]) -> None:
    """openpyxl takes a string starting with `=` for a formula: what a party reported stays text."""
    for cell in cells:
        if cell.data_type == "f":
            cell.data_type = "s"


def write_kadaster_xlsx(
    rows: Iterable[dict[str, Any]], out: Path | IO[bytes], as_of: datetime | None = None
) -> int:
    """One sheet per modality (in the contract's order), a bold frozen header, widths that fit the
    values; returns how many rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    by_modality: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_modality.setdefault(str(row["modality"]), []).append(row)
    known = [modality.value for modality in Modality]
    present = set(by_modality)
    modalities = [m for m in known if m in present] + sorted(present - set(known))
    bold = Font(bold=True)
    for modality in modalities or ["kadaster"]:
        sheet = workbook.create_sheet(title=modality)
        sheet.append([header for _, header in KADASTER_COLUMNS])
        for cell in sheet[1]:
            cell.font = bold
        widths = [len(header) for _, header in KADASTER_COLUMNS]
        for row in by_modality.get(modality, []):
            values = []
            for index, (key, _) in enumerate(KADASTER_COLUMNS):
                value = row.get(key)
                # Excel has no time zones: moments are written in UTC, as the header says.
                if isinstance(value, datetime):
                    value = utc(value).replace(tzinfo=None, microsecond=0)
                values.append(value)
                widths[index] = max(widths[index], len(_cell_text(value)))
            sheet.append(values)
            as_text_cells(sheet[sheet.max_row])
        for index, (key, _) in enumerate(KADASTER_COLUMNS, 1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = min(widths[index - 1] + 2, 48)
            if key.endswith("_at"):
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif key.endswith("_on") or key.startswith("licence_valid"):
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = "yyyy-mm-dd"
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
    workbook.properties.title = "Kadaster of heavy medical imaging devices"
    if as_of is not None:
        workbook.properties.description = f"As of {utc(as_of).isoformat()}"
    workbook.save(out)
    return sum(len(sheet) for sheet in by_modality.values())
