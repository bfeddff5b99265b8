"""The hospitals' letters: each backfilled device with the MID-ID it received."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.legacy.state import legacy_refs, read_devices
from services.register import Register


@dataclass(frozen=True)
class LetterLine:
    """One backfilled device as its hospital's letter lists it, with the MID-ID it received."""

    institution: str
    label: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    mid_id: str
    status: str


LETTER_COLUMNS = (
    ("label", "label"),
    ("modality", "modality"),
    ("manufacturer", "manufacturer"),
    ("model", "model"),
    ("serial_number", "serial number"),
    ("campus", "campus"),
    ("mid_id", "MID-ID"),
    ("status", "status"),
)


def natural_order(label: str) -> tuple[Any, ...]:
    """CT2 before CT10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label))


def legacy_letters(register: Register) -> list[LetterLine]:
    """Every backfilled device with its MID-ID and what the register says about it now."""
    lines = []
    refs = legacy_refs(register)
    devices = read_devices(register, refs.values())
    for (institution, label), mid_id in refs.items():
        device = devices.get(mid_id)
        if device is None:
            continue
        record = device.record
        lines.append(
            LetterLine(
                institution=institution,
                label=label,
                modality=device.modality,
                manufacturer=str(record.get("manufacturer", "")),
                model=str(record.get("model", "")),
                serial_number=str(record.get("serial_number", "")),
                campus=str(record.get("campus", "")),
                mid_id=device.mid_id,
                status=device.status,
            )
        )
    return sorted(lines, key=lambda line: (line.institution, natural_order(line.label)))
