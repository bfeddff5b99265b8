"""What the register says about the devices the legacy register lists, as far as the file can speak."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from domain.device import STATEMENT_FIELDS, Device, device_id
from domain.events import event_class, event_classes
from domain.mid_id import LegacyRef
from services.register import Register


def as_json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@dataclass(frozen=True)
class DeviceState:
    """What the register says about a backfilled device, as far as the legacy file can speak of it."""

    mid_id: str
    modality: str
    record: dict[str, Any]
    legacy_number: str | None
    licences: frozenset[str]
    billing_number: str | None
    decommissioned: bool

    @classmethod
    def of(cls, device: Device) -> DeviceState:
        return cls(
            mid_id=device.mid_id,
            modality=device.modality,
            record={name: device.record.get(name) for name in STATEMENT_FIELDS},
            legacy_number=device.legacy_number,
            licences=frozenset(device.licences),
            billing_number=device.billing_number,
            decommissioned=device.decommissioned,
        )

    @property
    def fingerprint(self) -> str:
        """The facts a command of the import depends on; command ids carry it, the version would not do:
        a state the import predicts must give the id that the same state read back gives."""
        facts = [
            self.mid_id,
            self.modality,
            {k: as_json(v) for k, v in self.record.items()},
            self.legacy_number,
            sorted(self.licences),
            self.billing_number,
            self.decommissioned,
        ]
        canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


LEGACY_REF_TOPIC = get_topic(event_class(LegacyRef, "Assigned"))


def legacy_refs(register: Register, page: int = 5000) -> dict[tuple[str, str], str]:
    """(institution, legacy reference) → MID-ID, for every device backfilled so far."""
    found: dict[tuple[str, str], str] = {}
    start = 0
    while True:
        notifications = register.recorder.select_notifications(
            start, page, topics=[LEGACY_REF_TOPIC], inclusive_of_start=False
        )
        for notification in notifications:
            assigned: Any = register.mapper.to_domain_event(notification)
            found[(assigned.institution, assigned.legacy_ref)] = assigned.mid_id
        if len(notifications) < page:
            return found
        start = notifications[-1].id


def read_device(register: Register, mid_id: str) -> Device | None:
    """For reading only: the cached aggregate itself, not a copy."""
    try:
        device: Any = register.repository.get(device_id(mid_id), deepcopy_from_cache=False)
    except AggregateNotFoundError:
        return None
    return device if isinstance(device, Device) else None


DEVICE_TOPICS = sorted(get_topic(cls) for cls in event_classes(Device))


def read_devices(
    register: Register, mid_ids: Collection[str] | None = None, page: int = 5000
) -> dict[str, Device]:
    """MID-ID → device, for those devices (all when None), from one query per page of device events.

    Reading a backfilled register device by device costs a query or two each; in pages, reading
    twenty thousand devices costs a few dozen.
    """
    wanted = None if mid_ids is None else {device_id(mid_id) for mid_id in mid_ids}
    if wanted is not None and not wanted:
        return {}
    devices: dict[Any, Any] = {}
    start = 0
    while True:
        notifications = register.recorder.select_notifications(
            start, page, topics=DEVICE_TOPICS, inclusive_of_start=False
        )
        for notification in notifications:
            if wanted is not None and notification.originator_id not in wanted:
                continue
            event: Any = register.mapper.to_domain_event(notification)
            devices[event.originator_id] = event.mutate(devices.get(event.originator_id))
        if len(notifications) < page:
            break
        start = notifications[-1].id
    return {device.mid_id: device for device in devices.values() if isinstance(device, Device)}
