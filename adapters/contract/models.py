"""The contract's message models: outcomes, errors, and the CloudEvents the register publishes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from domain.identifiers import MidId
from services import envelope
from services.ledger import Checkpoint
from services.published_events import PUBLISHED, PublicEvent, data_model

MID_ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\s*[Mm][Ii][Dd]-?[0-9]{7}-?[0-9]{2}\s*$",
    "description": "A MID-ID: `MID-` + 7 digits + `-` + 2 check digits (ISO 7064 MOD 97-10). Upper- or "
    "lower-case, with or without dashes; a wrong check fails with `midid_checksum`.",
    "examples": ["MID-0000001-95"],
}


class ErrorCode(StrEnum):
    """The contract's error codes; `internal_error` and `not_found` are the README's additions."""

    MALFORMED = "malformed"
    SCHEMA = "schema"
    UNKNOWN_TYPE = "unknown_type"
    SOURCE_MISMATCH = "source_mismatch"
    FORBIDDEN = "forbidden"
    MODALITY_NOT_IN_SCOPE = "modality_not_in_scope"
    MIDID_CHECKSUM = "midid_checksum"
    MIDID_UNKNOWN = "midid_unknown"
    MIDID_NOT_YOURS = "midid_not_yours"
    MIDID_ALREADY_LINKED = "midid_already_linked"
    MIDID_CANCELLED = "midid_cancelled"
    DEVICE_UNKNOWN = "device_unknown"
    DEVICE_DECOMMISSIONED = "device_decommissioned"
    REQUIREMENTS_NOT_MET = "requirements_not_met"
    LEGACY_NUMBER_EXPIRED = "legacy_number_expired"
    NOT_IN_FANC_SCOPE = "not_in_fanc_scope"
    ROUND_CLOSED = "round_closed"
    ROUND_UNKNOWN = "round_unknown"
    CONFLICT = "conflict"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    INTERNAL_ERROR = "internal_error"
    NOT_FOUND = "not_found"


class ContractError(BaseModel):
    """One reason a command or query was refused."""

    code: ErrorCode
    message: str = Field(description="A sentence for a person")
    field: str | None = Field(default=None, description="Where the problem is, e.g. `data.mid_id`")


class Outcome(envelope.Outcome):
    """The one answer to one command: on `kadaster.outcome...`, as the RPC reply, from the `outcome` query."""

    errors: list[ContractError] = Field(default_factory=list)  # type: ignore[assignment]
    person: str | None = Field(
        default=None, description="The person who entered the command (the envelope's `person`), if any"
    )


class QueryErrors(BaseModel):
    """A query's error reply: the outcome's error objects."""

    errors: list[ContractError]


class PublishedCloudEvent(BaseModel):
    """What the register publishes on a stream: a CloudEvents 1.0 event in structured JSON mode."""

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: Literal["kadaster"]
    type: str
    time: datetime
    subject: str = Field(min_length=1)
    datacontenttype: Literal["application/json"]


class PublishedDomainEvent(PublishedCloudEvent):
    """A recorded domain event, published once on `kadaster.evt.<aggregate>.<event>`."""

    id: str = Field(
        pattern=r"^[1-9][0-9]*$",
        description="The event's position in the register's log, also the message's `Nats-Msg-Id`",
    )
    time: datetime = Field(description="When the register recorded the event")
    subject: str = Field(min_length=1, description="The MID-ID, round id, institution or region it is about")
    sequence: int = Field(
        ge=1,
        description="Extension: 1 for the first domain event on the stream, one more for each next one; "
        "a subscriber of every domain event that sees a jump has missed events",
    )
    causation: str = Field(
        pattern=r"^[^:]+:.+$",
        description="Extension: `<source>:<id>` of the command that caused the event",
    )


class OutcomeEvent(PublishedCloudEvent):
    """The outcome of one command on `kadaster.outcome...`; its `data` is the outcome object."""

    id: str = Field(min_length=1, description="Unique per command message; also its `Nats-Msg-Id`")
    type: Literal["kadaster.outcome"]
    time: datetime = Field(description="When the register received the command")
    subject: str = Field(
        min_length=1,
        description="The command's `<source>:<id>` (`<source>:stream-seq:<n>` when no id could be read)",
    )
    data: Outcome


class CheckpointData(Checkpoint):
    """A signed ledger checkpoint, with the `id` its message had before CloudEvents."""

    id: str


class CheckpointEvent(PublishedCloudEvent):
    """A signed ledger checkpoint on `kadaster.evt.ledger.checkpoint`, for auditors to keep."""

    type: Literal["ledger.checkpoint"]
    subject: str = Field(pattern=r"^[0-9]+$", description="The tree size: how many events it covers")
    data: CheckpointData


def published_event_model(public: PublicEvent, event_class: type[Any]) -> type[BaseModel]:
    """The CloudEvent of one public domain event type: its `type` fixed, its `data` typed."""
    data = data_model(event_class)
    name = data.__name__.removesuffix("Data") + "Event"
    model: type[BaseModel] = create_model(
        name,
        __base__=PublishedDomainEvent,
        type=(Literal[public.type], ...),  # type: ignore[arg-type]
        data=(data, ...),
    )
    model.__doc__ = f"`{public.type}`: published on `{public.subject}`."
    return model


def published_event_models() -> dict[str, type[BaseModel]]:
    """Public type to its CloudEvent model, in the order of the published language."""
    return {public.type: published_event_model(public, cls) for cls, public in PUBLISHED.items()}


class ContractJsonSchema(GenerateJsonSchema):
    """Pydantic's generator, except that a MID-ID is the string integrators send, not its dataclass."""

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        if schema["cls"] is MidId:
            return dict(MID_ID_SCHEMA)
        return super().dataclass_schema(schema)


MICRO_ERROR_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Set on error replies only (a refused query, a rejected or failed RPC).",
    "properties": {
        "Nats-Service-Error": {"type": "string", "description": "`<code>: <message>` of the first error"},
        "Nats-Service-Error-Code": {
            "type": "string",
            "enum": ["400", "403", "404", "429", "500"],
            "description": "400 the caller's error, 403 `forbidden`, 404 `not_found`, 429 `rate_limited`, "
            "500 otherwise",
        },
    },
}


PUBLISHED_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["Nats-Msg-Id"],
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "The CloudEvent's `id`: JetStream stores each event, outcome or checkpoint once",
        }
    },
}
