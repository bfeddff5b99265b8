"""The published language: each domain event's public CloudEvents type, subject and data."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import Aggregate
from pydantic import BaseModel, ConfigDict, create_model

import domain
from domain.access import Access
from domain.allocation_round import AllocationRound, RoundIndex
from domain.billing import BillingNumber
from domain.care_capacity import CareCapacity
from domain.command_record import CommandRecord
from domain.device import Device
from domain.events import event_class, event_classes
from domain.fanc import LegacyFancNumber
from domain.institution import Institution
from domain.ledger_key import LedgerKeys
from domain.mid_id import LegacyRef, MidIdRecord, MidIdSequence

SOURCE = "kadaster"
"""The `source` of everything the register publishes."""
SPECVERSION = "1.0"
JSON = "application/json"


@dataclass(frozen=True)
class PublicEvent:
    """How one domain event is told to the outside: its type, what it is about, and its data fields.

    A field the event itself does not carry (a device's MID-ID, a round's id) comes from the
    aggregate's creation event, which names the thing once for all its later events.
    """

    type: str
    about: str
    fields: tuple[str, ...]

    @property
    def subject(self) -> str:
        """The NATS subject: `kadaster.evt.<aggregate>.<event>`."""
        return f"kadaster.evt.{self.type}"


def _public(type_: str, about: str, *fields: str) -> PublicEvent:
    return PublicEvent(type_, about, (about, *(f for f in fields if f != about)))


_DEVICE = ("mid_id", "institution")
# What a hospital reports of a device, and what the legacy import backfills: the same facts.
_DEVICE_FACTS = ("modality", "manufacturer", "model", "serial_number", "campus", "installed_on", "use")

PUBLISHED: dict[type[Any], PublicEvent] = {
    event_class(MidIdRecord, "Issued"): _public(
        "midid.issued", "mid_id", "institution", "modality", "note", "legacy_ref"
    ),
    event_class(MidIdRecord, "Cancelled"): _public("midid.cancelled", "mid_id", "institution", "reason"),
    event_class(Device, "Reported"): _public(
        "device.reported",
        *_DEVICE,
        *_DEVICE_FACTS,
        "restated",
    ),
    event_class(Device, "Backfilled"): _public(
        "device.backfilled",
        *_DEVICE,
        "legacy_ref",
        *_DEVICE_FACTS,
        "registered_on",
        "registered_before_midid",
    ),
    event_class(Device, "Changed"): _public("device.changed", *_DEVICE, "changes", "effective_on"),
    event_class(Device, "Corrected"): _public("device.corrected", *_DEVICE, "corrections", "reason"),
    event_class(Device, "Decommissioned"): _public(
        "device.decommissioned", *_DEVICE, "effective_on", "reason"
    ),
    event_class(Device, "InstallationRecorded"): _public(
        "device.installation-recorded",
        *_DEVICE,
        "supplier",
        "modality",
        "manufacturer",
        "model",
        "serial_number",
        "installed_on",
    ),
    event_class(Device, "DiscrepancyRecorded"): _public(
        "device.discrepancy-recorded",
        *_DEVICE,
        "field",
        "reported_value",
        "reported_source",
        "supplier_value",
        "supplier_source",
    ),
    event_class(Device, "DiscrepancyResolved"): _public(
        "device.discrepancy-resolved", *_DEVICE, "field", "value"
    ),
    event_class(Device, "Linked"): _public("device.linked", *_DEVICE, "modality"),
    event_class(Device, "LicenceRecorded"): _public(
        "licence.recorded", *_DEVICE, "licence_ref", "valid_from", "valid_until", "legacy_number"
    ),
    event_class(Device, "LegacyNumberMapped"): _public("legacy-number.mapped", *_DEVICE, "legacy_number"),
    event_class(Device, "TransferReceived"): _public(
        "transfer.received", *_DEVICE, "period", "received_on", "legacy_number"
    ),
    event_class(Device, "BillingNumberAssigned"): _public("billing.assigned", *_DEVICE, "billing_number"),
    event_class(Device, "BillingNumberWithdrawn"): _public(
        "billing.withdrawn", *_DEVICE, "billing_number", "reason", "effective_on"
    ),
    event_class(Institution, "Registered"): _public(
        "institution.registered", "institution", "name", "province", "region", "campuses"
    ),
    event_class(Institution, "Updated"): _public("institution.updated", "institution", "changes"),
    event_class(Access, "Granted"): _public(
        "access.granted", "person", "party", "name", "role", "until", "granted_by"
    ),
    event_class(Access, "Revoked"): _public(
        "access.revoked", "person", "party", "role", "reason", "revoked_by"
    ),
    event_class(AllocationRound, "Opened"): _public(
        "round.opened", "round_id", "programme", "period", "capacity", "deadline", "policy_inputs"
    ),
    event_class(AllocationRound, "ApplicationFiled"): _public(
        "round.applied",
        "round_id",
        "institution",
        "campus",
        "province",
        "region",
        "justified_activity_per_device",
        "has_service_on_other_campus",
    ),
    event_class(AllocationRound, "ApplicationWithdrawn"): _public(
        "round.application-withdrawn", "round_id", "institution"
    ),
    event_class(AllocationRound, "Closed"): _public("round.closed", "round_id", "programme"),
    event_class(AllocationRound, "Decided"): _public(
        "round.decided", "round_id", "programme", "policy_version", "inputs", "ranking", "decisions"
    ),
    event_class(AllocationRound, "ObjectionLodged"): _public(
        "round.objection-lodged", "round_id", "institution", "against", "text"
    ),
    event_class(AllocationRound, "ObjectionRuled"): _public(
        "round.objection-ruled",
        "round_id",
        "institution",
        "upheld",
        "reasoning",
        "waivers",
        "ranking",
        "decisions",
    ),
    event_class(AllocationRound, "Granted"): _public(
        "round.granted", "round_id", "region", "institution", "units"
    ),
    event_class(AllocationRound, "Finalised"): _public("round.finalised", "round_id", "refused"),
    event_class(CareCapacity, "BaselineRecorded"): _public(
        "capacity.baseline-recorded", "region", "programme", "filled", "round_id"
    ),
    event_class(CareCapacity, "Corrected"): _public(
        "capacity.corrected", "region", "programme", "delta", "reason", "filled"
    ),
    event_class(CareCapacity, "PlacesGranted"): _public(
        "capacity.granted", "region", "programme", "units", "round_id", "institution", "filled"
    ),
}
"""Every domain event the outside hears of, by class."""

NOT_PUBLISHED: dict[type[Any], str] = {
    event_class(MidIdSequence, "Started"): "the MID-ID sequence counter",
    event_class(MidIdSequence, "NumberTaken"): "the MID-ID sequence counter (midid.issued says it)",
    event_class(MidIdRecord, "Linked"): "the MID-ID's side of device.linked",
    event_class(
        LegacyRef, "Assigned"
    ): "an index of backfilled references (midid.issued names the reference)",
    event_class(
        CommandRecord, "Handled"
    ): "the command record (its outcome is published on KADASTER_OUTCOME)",
    event_class(
        Device, "Opened"
    ): "the opening of a device's record (the statement that opens it is published)",
    event_class(BillingNumber, "Assigned"): "an index of billing numbers (billing.assigned says it)",
    event_class(BillingNumber, "Reassigned"): "an index of billing numbers (billing.assigned says it)",
    event_class(BillingNumber, "Released"): "an index of billing numbers (billing.withdrawn says it)",
    event_class(LegacyFancNumber, "Mapped"): "an index of old FANC numbers (legacy-number.mapped says it)",
    event_class(RoundIndex, "Started"): "the index of rounds",
    event_class(RoundIndex, "RoundListed"): "the index of rounds (round.opened says it)",
    event_class(CareCapacity, "Started"): "the opening of a programme's running count",
    event_class(LedgerKeys, "Started"): "the opening of the record of the ledger's keys",
    event_class(
        LedgerKeys, "Rotated"
    ): "a key rotation, an operator's console act: the next checkpoints carry the new key id",
    event_class(Access, "Created"): "the opening of a person's roles for a party (access.granted says it)",
}
"""Internal bookkeeping, never published, with the reason."""

LEDGER_CHECKPOINT = "ledger.checkpoint"
OUTCOME = "kadaster.outcome"


def topic_of(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


PUBLISHED_BY_TOPIC: dict[str, tuple[type[Any], PublicEvent]] = {
    topic_of(cls): (cls, public) for cls, public in PUBLISHED.items()
}
NOT_PUBLISHED_TOPICS = frozenset(topic_of(cls) for cls in NOT_PUBLISHED)


class UnnamedEvent(LookupError):
    """A recorded domain event that has no public name and is not declared internal."""


def public_event(topic: str) -> PublicEvent | None:
    """The public form of the events of that topic; None for internal bookkeeping."""
    found = PUBLISHED_BY_TOPIC.get(topic)
    if found is not None:
        return found[1]
    if topic in NOT_PUBLISHED_TOPICS or topic.startswith("eventsourcing."):
        return None
    raise UnnamedEvent(f"{topic} has no public name: add it to services/published_events.py")


# what is recorded


def domain_aggregates() -> Iterator[type[Aggregate]]:
    """Every aggregate class of the domain package, found module by module."""
    for module_info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{module_info.name}")
        for value in vars(module).values():
            ours = inspect.isclass(value) and value.__module__ == module.__name__
            if ours and issubclass(value, Aggregate):
                yield value


def creation_event_class(cls: type[Any]) -> type[Any]:
    """The event that created the aggregate an event belongs to."""
    return next(c for c in event_classes(_aggregate_of(cls)) if issubclass(c, Aggregate.Created))


def _aggregate_of(cls: type[Any]) -> type[Aggregate]:
    owner: Any = sys.modules[cls.__module__]
    for part in cls.__qualname__.split(".")[:-1]:
        owner = getattr(owner, part)
    return typing.cast(type[Aggregate], owner)


# the data, typed from the events themselves

_DATA_CONFIG = ConfigDict(extra="forbid")
_DATA_MODELS: dict[type[Any], type[BaseModel]] = {}


def _model_name(public: PublicEvent) -> str:
    words = public.type.replace("-", ".").split(".")
    return "".join(word.capitalize() for word in words) + "Data"


def data_model(cls: type[Any]) -> type[BaseModel]:
    """A pydantic model of the public data of one event class, its field types read from the event."""
    known = _DATA_MODELS.get(cls)
    if known is not None:
        return known
    public = PUBLISHED[cls]
    own = typing.get_type_hints(cls)
    origin = typing.get_type_hints(creation_event_class(cls))
    fields: dict[str, Any] = {}
    for name in public.fields:
        hint = own.get(name, origin.get(name))
        if hint is None:
            raise TypeError(f"{cls.__qualname__} and its creation event carry no {name!r}")
        fields[name] = (hint, ...)
    model: type[BaseModel] = create_model(_model_name(public), __config__=_DATA_CONFIG, **fields)
    model.__doc__ = f"`data` of `{public.type}`."
    _DATA_MODELS[cls] = model
    return model


def borrowed_fields(cls: type[Any]) -> frozenset[str]:
    """The public fields an event takes from its aggregate's creation event."""
    own = typing.get_type_hints(cls)
    return frozenset(name for name in PUBLISHED[cls].fields if name not in own)


BORROWED = frozenset(name for cls in PUBLISHED for name in borrowed_fields(cls))
"""Every field some event borrows from a creation event: what the relay remembers of one."""
_BORROWING_AGGREGATES = frozenset(
    topic_of(creation_event_class(cls)).rpartition(".")[0] for cls in PUBLISHED if borrowed_fields(cls)
)


def borrows(topic: str) -> bool:
    """Whether events of this topic's aggregate borrow fields from its creation event."""
    return topic.rpartition(".")[0] in _BORROWING_AGGREGATES


def public_data(cls: type[Any], event: Mapping[str, Any], origin: Mapping[str, Any]) -> dict[str, Any]:
    """The event's data in the contract's names, as JSON values."""
    public = PUBLISHED[cls]
    values = {name: event[name] if name in event else origin.get(name) for name in public.fields}
    dumped: dict[str, Any] = data_model(cls).model_validate(values).model_dump(mode="json")
    return dumped


# the CloudEvents envelope of what goes out


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as CloudEvents consumers read `time`."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cloud_event(
    type_: str, id_: str, time: datetime, subject: str, data: Any, **extensions: Any
) -> dict[str, Any]:
    """A structured-mode CloudEvent from the register; extensions left out when None."""
    event: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id_,
        "source": SOURCE,
        "type": type_,
        "time": utc_text(time),
        "subject": subject,
        "datacontenttype": JSON,
    }
    event.update({name: value for name, value in extensions.items() if value is not None})
    event["data"] = data
    return event


def causation(event: Mapping[str, Any]) -> str | None:
    """`<source>:<id>` of the command that caused an event, when the event names it."""
    source, command_id = event.get("source"), event.get("command_id")
    return f"{source}:{command_id}" if source and command_id else None


def outcome_event(
    outcome: Mapping[str, Any], id_: str, received_at: datetime, stream_sequence: int | None
) -> dict[str, Any]:
    """The `kadaster.outcome` CloudEvent of one command: `subject` is the command's `<source>:<id>`.

    A message whose id could not be read is named by its place on KADASTER_CMD instead.
    """
    command_id = outcome.get("command_id") or (
        f"stream-seq:{stream_sequence}" if stream_sequence is not None else "unknown"
    )
    return cloud_event(OUTCOME, id_, received_at, f"{outcome['source']}:{command_id}", dict(outcome))
