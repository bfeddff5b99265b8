"""Commands of allocation rounds (MRI programming, care-region rankings) and capacity corrections."""

from __future__ import annotations

import math
import re
from datetime import datetime
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from domain.allocation_policies import CARE_REGIONS, exact_text
from domain.allocation_round import ROUND_INDEX_ID, AllocationRound, RoundIndex, as_utc, round_aggregate_id
from domain.care_capacity import CareCapacity, care_capacity_id
from domain.errors import DomainError
from services.commands import Cause, CommandData, Result, command
from services.unit_of_work import UnitOfWork

MAX_COUNT = 1_000_000_000
"""Populations, devices, places: every count a round takes stays below this (and within SQL integers)."""

_NUMBER_TEXT = re.compile(r"^\d{1,15}(\.\d{1,12})?$|^\d{1,15}/[1-9]\d{0,14}$")
_NUMBER_HINT = 'a non-negative number such as 1234, 1234.5 or "1234.5"'


def _exact_number(value: Any) -> str:
    """A non-negative number (JSON number or decimal string) recorded exactly as "n" or "n/d"."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PydanticCustomError("schema", _NUMBER_HINT)
    if isinstance(value, str) and not _NUMBER_TEXT.fullmatch(value.strip()):
        # No exponents in text: "1e999999999" would be an enormous exact integer.
        raise PydanticCustomError("schema", _NUMBER_HINT)
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("schema", _NUMBER_HINT)
    if isinstance(value, int | float) and abs(value) >= 10**15:
        raise PydanticCustomError("schema", f"{_NUMBER_HINT}, below 10^15")
    # repr of a float is its shortest decimal spelling, the one the sender wrote: 0.15 → 3/20.
    number = Fraction(repr(value) if isinstance(value, float) else str(value).strip())
    if number < 0:
        raise PydanticCustomError("schema", _NUMBER_HINT)
    return exact_text(number)


ExactNumber = Annotated[
    str,
    BeforeValidator(_exact_number),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _NUMBER_TEXT.pattern},
            ],
            "description": "an exact non-negative number: a JSON number, or a decimal or a fraction "
            'as a string ("1234.5", "3/20"); it is recorded exactly, never as a float',
        }
    ),
]
"""An exact, non-negative number: JSON 0.15 is recorded as "3/20", never as a float."""

RoundId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]


class ProvinceFigures(CommandData):
    name: Name
    population: int = Field(gt=0, le=MAX_COUNT)
    recognised_devices: int = Field(ge=0, le=MAX_COUNT)


class RegionFigures(CommandData):
    name: Name
    programme_figure: int = Field(gt=0, le=MAX_COUNT)
    filled: int | None = Field(default=None, ge=0, le=MAX_COUNT)


class OpenRound(CommandData):
    round_id: RoundId
    programme: Literal["nmr", "care-regions"]
    period: str = Field(min_length=1, max_length=32)
    capacity: int = Field(ge=0, le=MAX_COUNT)
    deadline: UtcDateTime | None = None
    provinces: list[ProvinceFigures] | None = None
    reference_activity: dict[Name, ExactNumber] | None = None
    top_share: ExactNumber = "3/20"
    new_services_only: bool = False
    regions: list[RegionFigures] | None = None


class RoundRef(CommandData):
    round_id: RoundId


class Apply(RoundRef):
    campus: Name
    province: Name
    region: Literal["flemish", "brussels", "wallonia"]
    justified_activity_per_device: ExactNumber
    has_service_on_other_campus: bool = False


class Withdraw(RoundRef):
    pass


class Close(RoundRef):
    pass


class Decide(RoundRef):
    pass


class Object(RoundRef):
    text: str = Field(min_length=1, max_length=20_000)


class RuleObjection(RoundRef):
    institution: Name
    upheld: bool
    reasoning: str = Field(min_length=1, max_length=20_000)


class Grant(RoundRef):
    region: Name | None = None
    institution: Name | None = None
    units: int = Field(gt=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _names_a_region(self) -> Grant:
        # Places count towards a care region's fill rate; an institution alone cannot say which.
        if self.region is None:
            raise PydanticCustomError("schema", "a grant names the care region its places count towards")
        return self


class Finalise(RoundRef):
    pass


class CorrectCapacity(CommandData):
    programme: Literal["nmr", "care-regions"]
    region: Name
    delta: int = Field(ge=-MAX_COUNT, le=MAX_COUNT)
    reason: str = Field(min_length=1, max_length=2000)


def require_round(uow: UnitOfWork, round_id: str) -> AllocationRound:
    found = uow.get(AllocationRound, round_aggregate_id(round_id))
    if found is None:
        raise DomainError("round_unknown", f"no round {round_id} was ever opened", "data.round_id")
    return found


def round_index(uow: UnitOfWork, cause: Cause) -> RoundIndex:
    index = uow.get(RoundIndex, ROUND_INDEX_ID)
    if index is None:
        index = RoundIndex(**cause.provenance)
        uow.add(index)
    return index


def care_capacity(uow: UnitOfWork, programme: str, cause: Cause) -> CareCapacity:
    capacity = uow.get(CareCapacity, care_capacity_id(programme))
    if capacity is None:
        capacity = CareCapacity.start(programme, **cause.provenance)
        uow.add(capacity)
    return capacity


def _policy_inputs(data: OpenRound) -> dict[str, Any]:
    return {
        "provinces": None if data.provinces is None else [p.model_dump() for p in data.provinces],
        "reference_activity": None if data.reference_activity is None else dict(data.reference_activity),
        "top_share": data.top_share,
        "new_services_only": data.new_services_only,
        "regions": None if data.regions is None else [r.model_dump() for r in data.regions],
    }


def round_result(round_: AllocationRound) -> Result:
    return round_.summary()


@command("round.open", OpenRound, {"vazg"}, "Open an allocation round with its policy inputs")
def open_round(uow: UnitOfWork, data: OpenRound, cause: Cause) -> Result:
    if uow.get(AllocationRound, round_aggregate_id(data.round_id)) is not None:
        raise DomainError("conflict", f"round {data.round_id} was already opened", "data.round_id")
    inputs = _policy_inputs(data)
    round_ = AllocationRound.open(
        data.round_id, data.programme, data.period, data.capacity, data.deadline, inputs, **cause.provenance
    )
    if data.programme == CARE_REGIONS:
        capacity = care_capacity(uow, CARE_REGIONS, cause)
        for position, region in enumerate(round_.regions):
            field = f"data.regions.{position}.filled"
            if region["filled"] is not None:
                capacity.record_baseline(
                    region["name"], region["filled"], data.round_id, field, **cause.provenance
                )
            else:
                capacity.check_known(region["name"], field)
    round_index(uow, cause).list_round(data.round_id, data.programme, data.period, **cause.provenance)
    uow.add(round_)
    return round_result(round_)


@command("round.apply", Apply, {"hospital"}, "Apply to an open MRI round before its deadline")
def apply_to_round(uow: UnitOfWork, data: Apply, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    institution = cause.institution
    round_.file_application(
        institution=institution,
        campus=data.campus,
        province=data.province,
        region=data.region,
        justified_activity_per_device=data.justified_activity_per_device,
        has_service_on_other_campus=data.has_service_on_other_campus,
        received_at=cause.received_at,
        sent_at=cause.sent_at,
        **cause.provenance,
    )
    return {
        "round_id": round_.round_id,
        "institution": institution,
        "status": "applied",
        "applications": len(round_.applications),
    }


@command("round.withdraw", Withdraw, {"hospital"}, "Withdraw one's application before the deadline")
def withdraw_from_round(uow: UnitOfWork, data: Withdraw, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    institution = cause.institution
    round_.withdraw_application(institution, cause.received_at, **cause.provenance)
    return {
        "round_id": round_.round_id,
        "institution": institution,
        "status": "withdrawn",
        "applications": len(round_.applications),
    }


@command("round.close", Close, {"vazg"}, "Close a round to applications")
def close_round(uow: UnitOfWork, data: Close, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    round_.close(**cause.provenance)
    return round_result(round_)


@command("round.decide", Decide, {"vazg"}, "Rank and decide a closed round from its recorded inputs")
def decide_round(uow: UnitOfWork, data: Decide, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    filled = None
    if round_.programme == CARE_REGIONS:
        # The register's running count: starting figures, earlier grants, corrections so far.
        filled = dict(care_capacity(uow, CARE_REGIONS, cause).filled)
    round_.decide(filled=filled, **cause.provenance)
    return decision_result(round_)


def decision_result(round_: AllocationRound) -> Result:
    return {
        **round_result(round_),
        "ranking": round_.ranking,
        "decisions": round_.decisions_with_status(),
    }


@command("round.object", Object, {"hospital"}, "Object to an intent to refuse before the round is finalised")
def object_to_refusal(uow: UnitOfWork, data: Object, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    institution = cause.institution
    round_.lodge_objection(institution, data.text, **cause.provenance)
    objection = round_.pending_objection(institution)
    assert objection is not None
    return {
        "round_id": round_.round_id,
        "institution": institution,
        "status": "objection_lodged",
        "against": objection["against"],
    }


@command("round.rule-objection", RuleObjection, {"vazg"}, "Record the ruling on a hospital's objection")
def rule_objection(uow: UnitOfWork, data: RuleObjection, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    changed = round_.rule_on_objection(data.institution, data.upheld, data.reasoning, **cause.provenance)
    return {
        "round_id": round_.round_id,
        "institution": data.institution,
        "upheld": data.upheld,
        "changed": changed,
        "decision": round_.decision_of(data.institution),
        "decisions": round_.decisions_with_status(),
    }


@command("round.grant", Grant, {"vazg"}, "Grant places in a decided care-region round")
def grant_places(uow: UnitOfWork, data: Grant, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    assert data.region is not None
    round_.grant(data.region, data.institution, data.units, **cause.provenance)
    filled = care_capacity(uow, round_.programme, cause).grant_places(
        data.region, data.units, round_.round_id, data.institution, **cause.provenance
    )
    return {
        "round_id": round_.round_id,
        "region": data.region,
        "institution": data.institution,
        "units": data.units,
        "granted_in_round": round_.granted_units,
        "filled": filled,
    }


@command(
    "round.finalise", Finalise, {"vazg"}, "Make a decided round final: intents to refuse become refusals"
)
def finalise_round(uow: UnitOfWork, data: Finalise, cause: Cause) -> Result:
    round_ = require_round(uow, data.round_id)
    refused = round_.finalise(**cause.provenance)
    return {**decision_result(round_), "refused": refused}


@command(
    "capacity.correct", CorrectCapacity, {"vazg"}, "Correct a care region's filled places outside a round"
)
def correct_capacity(uow: UnitOfWork, data: CorrectCapacity, cause: Cause) -> Result:
    filled = care_capacity(uow, data.programme, cause).correct(
        data.region, data.delta, data.reason, **cause.provenance
    )
    return {"programme": data.programme, "region": data.region, "delta": data.delta, "filled": filled}
