"""Exports for auditors: every stored event as JSON lines; the kadaster, a row per device, as CSV or XLSX."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, Any, TextIO
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.device import Device
from domain.identifiers import Modality
from projections.as_of import utc
from services.register import Register

Progress = Callable[[int, int], None]

DEVICE_OPENED = get_topic(Device.Opened)  # type: ignore[attr-defined]
BATCH = 2000

KADASTER_COLUMNS: list[tuple[str, str]] = [
    ("mid_id", "MID-ID"),
    ("institution", "Institution"),
    ("campus", "Campus"),
    ("modality", "Modality"),
    ("manufacturer", "Manufacturer"),
    ("model", "Model"),
    ("serial_number", "Serial number"),
    ("use", "Use"),
    ("installed_on", "Installed on"),
    ("status", "Status"),
    ("fanc_licence", "FANC licence"),
    ("licence_valid_from", "Licence valid from"),
    ("licence_valid_until", "Licence valid until"),
    ("legacy_number", "FANC legacy number"),
    ("billing_number", "Billing number"),
    ("legacy_ref", "FOD file (before MID-ID)"),
    ("registered_on", "Registered on"),
    ("decommissioned_on", "Decommissioned on"),
    ("first_recorded_at", "First recorded (UTC)"),
    ("last_changed_at", "Last changed (UTC)"),
]


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
    """Every stored event in log order; with `as_of`, only those recorded at or before that moment."""
    total = register.recorder.max_notification_id() or 0
    limit = utc(as_of) if as_of is not None else None
    position = 0
    while True:
        notifications = register.recorder.select_notifications(
            start=position, limit=BATCH, inclusive_of_start=False
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


def _device_as_of(register: Register, device_id: UUID, as_of: datetime | None) -> Device | None:
    if as_of is None:
        device: Device = register.repository.get(device_id)
        return device
    version = None
    for stored in register.recorder.select_events(device_id):
        event: Any = register.mapper.to_domain_event(stored)
        # An aggregate's events are recorded in order: the first one after the moment ends its history.
        if utc(event.timestamp) > as_of:
            break
        version = event.originator_version
    if version is None:
        return None
    device = register.repository.get(device_id, version=version)
    return device


def device_row(device: Device) -> dict[str, Any]:
    """The kadaster's line for one device: the hospital's record, else what the supplier announced."""
    record = device.record or {}
    announced = device.supplier_statement or {}

    def stated(key: str) -> Any:
        return record.get(key, announced.get(key))

    licence_ref, licence = None, None
    if device.licences:
        licence_ref, licence = max(
            device.licences.items(), key=lambda item: item[1]["valid_from"] or date.min
        )
    return {
        "mid_id": device.mid_id,
        "institution": device.institution,
        "campus": record.get("campus"),
        "modality": device.modality,
        "manufacturer": stated("manufacturer"),
        "model": stated("model"),
        "serial_number": stated("serial_number"),
        "use": record.get("use"),
        "installed_on": stated("installed_on"),
        "status": device.status,
        "fanc_licence": licence_ref,
        "licence_valid_from": licence["valid_from"] if licence else None,
        "licence_valid_until": licence["valid_until"] if licence else None,
        "legacy_number": device.legacy_number,
        "billing_number": device.billing_number,
        "legacy_ref": device.legacy_ref,
        "registered_on": device.registered_on,
        "decommissioned_on": device.decommissioned_on,
        "first_recorded_at": utc(device.created_on),
        "last_changed_at": utc(device.modified_on),
    }


def kadaster_rows(
    register: Register, as_of: datetime | None = None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """One row per device, folded from the Device aggregates' own events (up to `as_of`), by MID-ID."""
    limit = utc(as_of) if as_of is not None else None
    device_ids: list[UUID] = []
    position = 0
    while True:
        opened = register.recorder.select_notifications(
            start=position, limit=BATCH, topics=[DEVICE_OPENED], inclusive_of_start=False
        )
        if not opened:
            break
        device_ids += [UUID(str(notification.originator_id)) for notification in opened]
        position = opened[-1].id
    rows = []
    for done, device_id in enumerate(device_ids, 1):
        device = _device_as_of(register, device_id, limit)
        if device is not None:
            rows.append(device_row(device))
        if progress is not None:
            progress(done, len(device_ids))
    return sorted(rows, key=lambda row: str(row["mid_id"]))


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_kadaster_csv(rows: list[dict[str, Any]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for _, header in KADASTER_COLUMNS])
    for row in rows:
        writer.writerow([_cell_text(row.get(key)) for key, _ in KADASTER_COLUMNS])


def write_kadaster_xlsx(
    rows: list[dict[str, Any]], out: Path | IO[bytes], as_of: datetime | None = None
) -> None:
    """One sheet per modality (in the contract's order), a bold frozen header, widths that fit the values."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    known = [modality.value for modality in Modality]
    present = {str(row["modality"]) for row in rows}
    modalities = [m for m in known if m in present] + sorted(present - set(known))
    bold = Font(bold=True)
    for modality in modalities or ["kadaster"]:
        sheet = workbook.create_sheet(title=modality)
        sheet.append([header for _, header in KADASTER_COLUMNS])
        for cell in sheet[1]:
            cell.font = bold
        widths = [len(header) for _, header in KADASTER_COLUMNS]
        for row in (r for r in rows if r["modality"] == modality):
            values = []
            for index, (key, _) in enumerate(KADASTER_COLUMNS):
                value = row.get(key)
                # Excel has no time zones: moments are written in UTC, as the header says.
                if isinstance(value, datetime):
                    value = utc(value).replace(tzinfo=None, microsecond=0)
                values.append(value)
                widths[index] = max(widths[index], len(_cell_text(value)))
            sheet.append(values)
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
