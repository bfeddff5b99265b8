"""A large register, recorded quickly through the real pipeline: institutions, backfilled devices, MID-IDs.

Big batches through `CommandProcessor.process`, as the ingest role records them, but without NATS:
what is measured afterwards is reading, projecting and querying such a register, not filling it.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from services.processor import CommandProcessor, Inbound
from services.register import Register

PROVINCES = (
    ("Antwerpen", "flemish"),
    ("Limburg", "flemish"),
    ("Oost-Vlaanderen", "flemish"),
    ("West-Vlaanderen", "flemish"),
    ("Vlaams-Brabant", "flemish"),
    ("Brussel", "brussels"),
    ("Waals-Brabant", "wallonia"),
    ("Henegouwen", "wallonia"),
    ("Luik", "wallonia"),
    ("Luxemburg", "wallonia"),
    ("Namen", "wallonia"),
)
MODALITIES = ("CT", "MRI", "PET-CT", "SPECT-CT", "PET", "PET-MRI")
MANUFACTURERS = (("Siemens", "Somatom"), ("GE", "Revolution"), ("Philips", "Ingenia"), ("Canon", "Aquilion"))
CAMPUSES = ("Campus Noord", "Campus Zuid", "Campus Centrum")

EVENTS_PER_DEVICE = 8
"""What one `midid.backfill` records: number taken, MID-ID issued and linked, legacy reference,
device opened, stated and linked, and the command's record."""
EVENTS_PER_MID_ID = 3
"""What one `midid.issue` records: number taken, MID-ID issued, the command's record."""


@dataclass(frozen=True)
class Shape:
    """How many of each: devices (backfilled, linked) and MID-IDs issued but not yet used."""

    institutions: int
    devices: int
    free_mid_ids: int

    @classmethod
    def of_events(cls, events: int, institutions: int = 200) -> Shape:
        """About `events` events, four in five of them about devices, the rest free MID-IDs."""
        devices = events * 4 // 5 // EVENTS_PER_DEVICE
        free = (events - devices * EVENTS_PER_DEVICE) // EVENTS_PER_MID_ID
        return cls(institutions, devices, free)


def institution(i: int) -> str:
    return f"H{i + 1:03d}"


def province_of(i: int) -> str:
    return PROVINCES[i % len(PROVINCES)][0]


def _inbound(source: str, type_: str, data: dict[str, object], command_id: str) -> Inbound:
    kind, _, party = source.partition("/")
    prefix = f"kadaster.cmd.{kind}.{party}" if party else f"kadaster.cmd.{kind}"
    body = {
        "specversion": "1.0",
        "id": command_id,
        "source": source,
        "type": type_,
        "time": "2026-01-01T00:00:00Z",
        "data": data,
    }
    return Inbound(json.dumps(body).encode(), f"{prefix}.{type_}")


def commands(shape: Shape) -> Iterator[Inbound]:
    """Institutions first, then devices and free MID-IDs interleaved, as a register grows."""
    for i in range(shape.institutions):
        name, region = PROVINCES[i % len(PROVINCES)]
        yield _inbound(
            "fod",
            "institution.register",
            {
                "institution": institution(i),
                "name": f"Ziekenhuis {i + 1}",
                "province": name,
                "region": region,
                "campuses": list(CAMPUSES),
            },
            f"fill-institution-{i}",
        )
    free = 0
    for d in range(shape.devices):
        manufacturer, model = MANUFACTURERS[d % len(MANUFACTURERS)]
        yield _inbound(
            "fod",
            "midid.backfill",
            {
                "institution": institution(d % shape.institutions),
                "modality": MODALITIES[d % len(MODALITIES)],
                "legacy_ref": f"L{d}",
                "manufacturer": manufacturer,
                "model": model,
                "serial_number": f"SN-{d:07d}",
                "campus": CAMPUSES[d % len(CAMPUSES)],
                "installed_on": f"{2010 + d % 15}-{1 + d % 12:02d}-{1 + d % 28:02d}",
                "use": "clinical",
            },
            f"fill-device-{d}",
        )
        # Free MID-IDs evenly among the devices, so every stretch of the log has the same mix.
        while free < (d + 1) * shape.free_mid_ids // shape.devices:
            yield _free_mid_id(shape, free)
            free += 1
    while free < shape.free_mid_ids:
        yield _free_mid_id(shape, free)
        free += 1


def _free_mid_id(shape: Shape, n: int) -> Inbound:
    hospital = institution(n % shape.institutions)
    return _inbound(
        f"hospital/{hospital}", "midid.issue", {"modality": MODALITIES[n % len(MODALITIES)]}, f"fill-free-{n}"
    )


def fill(
    register: Register,
    shape: Shape,
    batch: int = 2000,
    copy_at: tuple[int, Callable[[], None]] | None = None,
) -> int:
    """Records the shape's commands in batches of `batch`; returns the event store's position.

    `copy_at` (events, copy): calls `copy()` once the log holds about that many events, between
    two batches, so a smaller log with the very same mix is the first part of this one.
    """
    with _fewer_collections():
        return _fill(register, shape, batch, copy_at)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Filling allocates millions of short-lived objects: collecting every 700 of them costs a fifth."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _fill(
    register: Register, shape: Shape, batch: int, copy_at: tuple[int, Callable[[], None]] | None
) -> int:
    processor = CommandProcessor(register)
    pending = copy_at
    position = register.position()
    size = batch if pending is None else max(1, min(batch, (pending[0] - position) // EVENTS_PER_DEVICE))
    waiting: list[Inbound] = []
    for inbound in commands(shape):
        waiting.append(inbound)
        if len(waiting) < size:
            continue
        _record(processor, waiting)
        waiting = []
        position = register.position()
        if pending is not None:
            if position >= pending[0]:
                pending[1]()
                pending = None
            else:
                # Smaller batches near the mark: the copy holds the events asked for, not a batch more.
                size = max(1, min(batch, (pending[0] - position) // EVENTS_PER_DEVICE))
        else:
            size = batch
    if waiting:
        _record(processor, waiting)
    if pending is not None:
        pending[1]()
    return register.position()


def _record(processor: CommandProcessor, batch: list[Inbound]) -> None:
    for handled in processor.process(batch):
        if handled.outcome["status"] != "accepted":
            raise RuntimeError(f"a fill command was rejected: {handled.outcome}")
