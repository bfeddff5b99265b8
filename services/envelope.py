"""The CloudEvents envelope every message travels in, and the outcome every command gets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.errors import ErrorDetail

MAX_MESSAGE_BYTES = 1024 * 1024
BINARY_PREFIX = "ce-"
"""Binary mode: each CloudEvents attribute is a NATS header `ce-<attribute>`, the data is the body."""
JSON_MEDIA_TYPE = "application/json"
UTF8 = ("utf-8", "utf8")


def json_media_type(value: str) -> str:
    """`application/json`, with parameters such as `; charset=utf-8`; any charset but UTF-8 is refused."""
    media_type, *parameters = value.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        raise ValueError(f"datacontenttype is {JSON_MEDIA_TYPE} (parameters allowed), not {value!r}")
    for parameter in parameters:
        name, _, given = parameter.partition("=")
        if name.strip().lower() == "charset" and given.strip().strip('"').lower() not in UTF8:
            raise ValueError(f"messages are UTF-8, not {given.strip()!r}")
    return value


JsonMediaType = Annotated[
    str,
    AfterValidator(json_media_type),
    Field(
        json_schema_extra={
            "pattern": r"^application/json\s*(;.*)?$",
            "examples": ["application/json", "application/json; charset=utf-8"],
        }
    ),
]


def binary_mode_attributes(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The CloudEvents attributes of a binary-mode message (`ce-*` headers); None in structured mode."""
    if not headers:
        return None
    attributes = {
        name[len(BINARY_PREFIX) :].lower(): value
        for name, value in headers.items()
        if name.lower().startswith(BINARY_PREFIX)
    }
    if "specversion" not in attributes:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if content_type is not None:
        attributes.setdefault("datacontenttype", content_type)
    return attributes


MAX_LISTED_ERRORS = 100
"""An outcome lists at most this many errors, then says how many more there were."""
MAX_ERRORS_BYTES = 256 * 1024
"""Nor more than this much of them, so an outcome stays far below the 1 MiB a message may carry."""
MAX_ERROR_MESSAGE = 2000
"""Characters of one error's message (a value quoted back can be long)."""


def listed_errors(errors: list[ErrorDetail] | tuple[ErrorDetail, ...]) -> list[dict[str, str | None]]:
    """The errors as an outcome lists them: bounded in number and size, the rest counted in a last one."""
    listed: list[dict[str, str | None]] = []
    size = 0
    for error in errors:
        item = error.as_dict()
        message = item.get("message") or ""
        if len(message) > MAX_ERROR_MESSAGE:
            item["message"] = message[:MAX_ERROR_MESSAGE] + "…"
        if item.get("field") and len(item["field"] or "") > 500:
            item["field"] = (item["field"] or "")[:500] + "…"
        size += len(json.dumps(item))
        if len(listed) >= MAX_LISTED_ERRORS or size > MAX_ERRORS_BYTES:
            break
        listed.append(item)
    rest = len(errors) - len(listed)
    if rest:
        listed.append(
            {
                "code": errors[len(listed)].code,
                "message": f"and {rest} more error(s) not listed",
                "field": None,
            }
        )
    return listed


class Envelope(BaseModel):
    """CloudEvents 1.0, in structured JSON mode or assembled from binary mode; extensions kept as extras."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    time: datetime | None = None
    datacontenttype: JsonMediaType | None = JSON_MEDIA_TYPE
    data: Any = None
    person: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Extension: who entered the command (the identity provider's subject or a local login)",
    )


class Outcome(BaseModel):
    """The one answer to one command, published on `kadaster.outcome...` and kept."""

    command_id: str | None
    source: str
    type: str | None = None
    status: Literal["accepted", "rejected"]
    result: dict[str, Any] | None = None
    errors: list[dict[str, str | None]] = Field(default_factory=list)

    @classmethod
    def accepted(cls, command_id: str, source: str, type_: str, result: dict[str, Any]) -> Outcome:
        return cls(command_id=command_id, source=source, type=type_, status="accepted", result=result)

    @classmethod
    def rejected(
        cls,
        command_id: str | None,
        source: str,
        type_: str | None,
        errors: list[ErrorDetail] | tuple[ErrorDetail, ...],
    ) -> Outcome:
        return cls(
            command_id=command_id,
            source=source,
            type=type_,
            status="rejected",
            errors=listed_errors(errors),
        )
