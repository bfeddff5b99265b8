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

from eventsourcing.domain import Aggregate, CanInitAggregate, DecoratedFuncCaller
from pydantic import BaseModel, ConfigDict, create_model

import domain
from domain.allocation_round import AllocationRound, RoundIndex
from domain.billing import BillingNumber
from domain.care_capacity import CareCapacity
from domain.command_record import CommandRecord
from domain.device import Device
from domain.fanc import LegacyFancNumber
from domain.institution import Institution
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


def _event(aggregate: type[Aggregate], name: str) -> type[Any]:
    """An aggregate's event class by name; a name it does not record fails at import."""
    found = vars(aggregate).get(name)
    if not (inspect.isclass(found) and issubclass(found, Aggregate.Event)):
        raise TypeError(f"{aggregate.__name__} records no event {name}")
    return found


_DEVICE = ("mid_id", "institution")

PUBLISHED: dict[type[Any], PublicEvent] = {
    _event(MidIdRecord, "Issued"): _public(
        "midid.issued", "mid_id", "institution", "modality", "note", "legacy_ref"
    ),
    _event(MidIdRecord, "Cancelled"): _public("midid.cancelled", "mid_id", "institution", "reason"),
    _event(Device, "Reported"): _public(
        "device.reported",
        *_DEVICE,
        "modality",
        "manufacturer",
        "model",
        "serial_number",
        "campus",
        "installed_on",
        "use",
        "restated",
    ),
    _event(Device, "Backfilled"): _public(
        "device.backfilled",
        *_DEVICE,
        "legacy_ref",
        "modality",
        "manufacturer",
        "model",
        "serial_number",
        "campus",
        "installed_on",
        "use",
        "registered_on",
        "registered_before_midid",
    ),
    _event(Device, "Changed"): _public("device.changed", *_DEVICE, "changes", "effective_on"),
    _event(Device, "Corrected"): _public("device.corrected", *_DEVICE, "corrections", "reason"),
    _event(Device, "Decommissioned"): _public("device.decommissioned", *_DEVICE, "effective_on", "reason"),
    _event(Device, "InstallationRecorded"): _public(
        "device.installation-recorded",
        *_DEVICE,
        "supplier",
        "modality",
        "manufacturer",
        "model",
        "serial_number",
        "installed_on",
    ),
    _event(Device, "DiscrepancyRecorded"): _public(
        "device.discrepancy-recorded",
        *_DEVICE,
        "field",
        "reported_value",
        "reported_source",
        "supplier_value",
        "supplier_source",
    ),
    _event(Device, "DiscrepancyResolved"): _public("device.discrepancy-resolved", *_DEVICE, "field", "value"),
    _event(Device, "Linked"): _public("device.linked", *_DEVICE, "modality"),
    _event(Device, "LicenceRecorded"): _public(
        "licence.recorded", *_DEVICE, "licence_ref", "valid_from", "valid_until", "legacy_number"
    ),
    _event(Device, "LegacyNumberMapped"): _public("legacy-number.mapped", *_DEVICE, "legacy_number"),
    _event(Device, "TransferReceived"): _public(
        "transfer.received", *_DEVICE, "period", "received_on", "legacy_number"
    ),
    _event(Device, "BillingNumberAssigned"): _public("billing.assigned", *_DEVICE, "billing_number"),
    _event(Device, "BillingNumberWithdrawn"): _public(
        "billing.withdrawn", *_DEVICE, "billing_number", "reason", "effective_on"
    ),
    _event(Institution, "Registered"): _public(
        "institution.registered", "institution", "name", "province", "region", "campuses"
    ),
    _event(Institution, "Updated"): _public("institution.updated", "institution", "changes"),
    _event(AllocationRound, "Opened"): _public(
        "round.opened", "round_id", "programme", "period", "capacity", "deadline", "policy_inputs"
    ),
    _event(AllocationRound, "ApplicationFiled"): _public(
        "round.applied",
        "round_id",
        "institution",
        "campus",
        "province",
        "region",
        "justified_activity_per_device",
        "has_service_on_other_campus",
    ),
    _event(AllocationRound, "ApplicationWithdrawn"): _public(
        "round.application-withdrawn", "round_id", "institution"
    ),
    _event(AllocationRound, "Closed"): _public("round.closed", "round_id", "programme"),
    _event(AllocationRound, "Decided"): _public(
        "round.decided", "round_id", "programme", "policy_version", "inputs", "ranking", "decisions"
    ),
    _event(AllocationRound, "ObjectionLodged"): _public(
        "round.objection-lodged", "round_id", "institution", "against", "text"
    ),
    _event(AllocationRound, "ObjectionRuled"): _public(
        "round.objection-ruled",
        "round_id",
        "institution",
        "upheld",
        "reasoning",
        "waivers",
        "ranking",
        "decisions",
    ),
    _event(AllocationRound, "Granted"): _public(
        "round.granted", "round_id", "region", "institution", "units"
    ),
    _event(AllocationRound, "Finalised"): _public("round.finalised", "round_id", "refused"),
    _event(CareCapacity, "BaselineRecorded"): _public(
        "capacity.baseline-recorded", "region", "programme", "filled", "round_id"
    ),
    _event(CareCapacity, "Corrected"): _public(
        "capacity.corrected", "region", "programme", "delta", "reason", "filled"
    ),
    _event(CareCapacity, "PlacesGranted"): _public(
        "capacity.granted", "region", "programme", "units", "round_id", "institution", "filled"
    ),
}
"""Every domain event the outside hears of, by class."""

NOT_PUBLISHED: dict[type[Any], str] = {
    _event(MidIdSequence, "Started"): "the MID-ID sequence counter",
    _event(MidIdSequence, "NumberTaken"): "the MID-ID sequence counter (midid.issued names the MID-ID)",
    _event(MidIdRecord, "Linked"): "the MID-ID's side of device.linked",
    _event(LegacyRef, "Assigned"): "an index of backfilled references (midid.issued names the reference)",
    _event(CommandRecord, "Handled"): "the command record (its outcome is published on KADASTER_OUTCOME)",
    _event(Device, "Opened"): "the opening of a device's record (the statement that opens it is published)",
    _event(BillingNumber, "Assigned"): "an index of billing numbers (billing.assigned says it)",
    _event(BillingNumber, "Reassigned"): "an index of billing numbers (billing.assigned says it)",
    _event(BillingNumber, "Released"): "an index of billing numbers (billing.withdrawn says it)",
    _event(LegacyFancNumber, "Mapped"): "an index of old FANC numbers (legacy-number.mapped says it)",
    _event(RoundIndex, "Started"): "the index of rounds",
    _event(RoundIndex, "RoundListed"): "the index of rounds (round.opened says it)",
    _event(CareCapacity, "Started"): "the opening of a programme's running count",
}
"""Internal bookkeeping, never published, with the reason."""

LEDGER_CHECKPOINT = "ledger.checkpoint"
OUTCOME = "kadaster.outcome"


def topic_of(event_class: type[Any]) -> str:
    return f"{event_class.__module__}:{event_class.__qualname__}"


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


def recorded_event_classes(aggregate: type[Aggregate]) -> list[type[Any]]:
    """The event classes an aggregate records: its decorated methods' and its creation event."""
    found = []
    for name, value in vars(aggregate).items():
        if not inspect.isclass(value):
            continue
        if issubclass(value, DecoratedFuncCaller) or (
            issubclass(value, CanInitAggregate) and name != "Created"
        ):
            found.append(value)
    return found


def creation_event_class(event_class: type[Any]) -> type[Any]:
    """The event that created the aggregate an event belongs to."""
    aggregate = _aggregate_of(event_class)
    for value in vars(aggregate).values():
        if inspect.isclass(value) and issubclass(value, CanInitAggregate) and value.__name__ != "Created":
            return value
    return typing.cast(type[Any], aggregate.Created)


def _aggregate_of(event_class: type[Any]) -> type[Aggregate]:
    owner: Any = sys.modules[event_class.__module__]
    for part in event_class.__qualname__.split(".")[:-1]:
        owner = getattr(owner, part)
    return typing.cast(type[Aggregate], owner)


# the data, typed from the events themselves

_DATA_CONFIG = ConfigDict(extra="forbid")
_DATA_MODELS: dict[type[Any], type[BaseModel]] = {}


def _model_name(public: PublicEvent) -> str:
    words = public.type.replace("-", ".").split(".")
    return "".join(word.capitalize() for word in words) + "Data"


def data_model(event_class: type[Any]) -> type[BaseModel]:
    """A pydantic model of the public data of one event class, its field types read from the event."""
    known = _DATA_MODELS.get(event_class)
    if known is not None:
        return known
    public = PUBLISHED[event_class]
    own = typing.get_type_hints(event_class)
    origin = typing.get_type_hints(creation_event_class(event_class))
    fields: dict[str, Any] = {}
    for name in public.fields:
        hint = own.get(name, origin.get(name))
        if hint is None:
            raise TypeError(f"{event_class.__qualname__} and its creation event carry no {name!r}")
        fields[name] = (hint, ...)
    model: type[BaseModel] = create_model(_model_name(public), __config__=_DATA_CONFIG, **fields)
    model.__doc__ = f"`data` of `{public.type}`."
    _DATA_MODELS[event_class] = model
    return model


def borrowed_fields(event_class: type[Any]) -> frozenset[str]:
    """The public fields an event takes from its aggregate's creation event."""
    own = typing.get_type_hints(event_class)
    return frozenset(name for name in PUBLISHED[event_class].fields if name not in own)


BORROWED = frozenset(name for cls in PUBLISHED for name in borrowed_fields(cls))
"""Every field some event borrows from a creation event: what the relay remembers of one."""
_BORROWING_AGGREGATES = frozenset(
    topic_of(creation_event_class(cls)).rpartition(".")[0] for cls in PUBLISHED if borrowed_fields(cls)
)


def borrows(topic: str) -> bool:
    """Whether events of this topic's aggregate borrow fields from its creation event."""
    return topic.rpartition(".")[0] in _BORROWING_AGGREGATES


def public_data(
    event_class: type[Any], event: Mapping[str, Any], origin: Mapping[str, Any]
) -> dict[str, Any]:
    """The event's data in the contract's names, as JSON values."""
    public = PUBLISHED[event_class]
    values = {name: event[name] if name in event else origin.get(name) for name in public.fields}
    dumped: dict[str, Any] = data_model(event_class).model_validate(values).model_dump(mode="json")
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
