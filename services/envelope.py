"""The CloudEvents envelope every message travels in, and the outcome every command gets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import ErrorDetail

MAX_MESSAGE_BYTES = 1024 * 1024


class Envelope(BaseModel):
    """CloudEvents 1.0, structured JSON mode."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    time: datetime | None = None
    datacontenttype: Literal["application/json"] | None = "application/json"
    data: Any = None


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
            errors=[e.as_dict() for e in errors],
        )
