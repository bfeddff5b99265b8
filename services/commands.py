"""The command catalogue: each command type's data model, who may send it, and its handler."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic_core import PydanticCustomError

from domain.errors import DomainError
from domain.identifiers import FOD, MidId, Modality, Source
from domain.reference import parse_modality
from services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Cause:
    """Who sent the command being handled, under which id, when they say they sent it (a claim),
    and when the register received it (the moment deadlines are judged by)."""

    source: Source
    command_id: str
    sent_at: datetime | None
    received_at: datetime
    person: str | None = None
    """The CloudEvents extension `person`: who entered the command, where a person did."""

    @property
    def provenance(self) -> dict[str, str]:
        return {"source": str(self.source), "command_id": self.command_id}

    @property
    def institution(self) -> str:
        """The party sending: the hospital's recognition number, or the supplier's id.

        Only commands that hospitals or suppliers send ask for it; their sources always name one.
        """
        if self.source.party is None:
            raise DomainError("forbidden", f"{self.source} speaks for no institution", "source")
        return self.source.party

    @property
    def by_fod(self) -> bool:
        """The FOD keeps the kadaster: it speaks for every holder, as its legacy register does."""
        return self.source.kind == FOD


def _parse_mid_id(value: Any) -> MidId:
    if isinstance(value, MidId):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("schema", "a MID-ID is a string such as MID-0000001-95")
    try:
        return MidId.parse(value)
    except DomainError as error:
        raise PydanticCustomError(error.code, str(error)) from None


def _parse_modality(value: Any) -> Modality:
    if isinstance(value, Modality):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("schema", "a modality is a string such as CT or PET-CT")
    try:
        return parse_modality(value)
    except DomainError as error:
        raise PydanticCustomError(error.code, str(error)) from None


MidIdField = Annotated[
    MidId,
    BeforeValidator(_parse_mid_id),
    PlainSerializer(str, return_type=str, when_used="json"),
]
"""A MID-ID in any accepted spelling, normalised; a wrong check fails with `midid_checksum`."""

ModalityField = Annotated[
    Modality,
    BeforeValidator(_parse_modality),
    PlainSerializer(lambda m: m.value, return_type=str, when_used="json"),
]
"""One of the six modalities; anything else fails with `modality_not_in_scope`."""


class CommandData(BaseModel):
    """Base of every command's `data`: unknown fields are refused so typos are caught."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


D = TypeVar("D", bound=CommandData)
Result = dict[str, Any]
Handler = Callable[[UnitOfWork, Any, Cause], Result]


@dataclass(frozen=True)
class CommandSpec:
    model: type[CommandData]
    type: str
    senders: frozenset[str]
    handler: Handler
    summary: str


CATALOGUE: dict[str, CommandSpec] = {}


def command(
    type_: str, model: type[D], senders: set[str], summary: str
) -> Callable[[Callable[[UnitOfWork, D, Cause], Result]], Callable[[UnitOfWork, D, Cause], Result]]:
    """Registers a handler for a command type; `senders` are source kinds (hospital, fod, ...)."""

    def register(
        handler: Callable[[UnitOfWork, D, Cause], Result],
    ) -> Callable[[UnitOfWork, D, Cause], Result]:
        if type_ in CATALOGUE:
            raise ValueError(f"command type {type_} registered twice")
        CATALOGUE[type_] = CommandSpec(model, type_, frozenset(senders), handler, summary)
        return handler

    return register


def load_catalogue() -> dict[str, CommandSpec]:
    """Imports every command module so the catalogue is complete."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("cmd_"):
            importlib.import_module(f"services.{module.name}")
    return CATALOGUE
