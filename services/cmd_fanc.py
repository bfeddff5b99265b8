"""FANC's commands: licences, old FANC unique numbers, and periodic data transfers."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from domain.errors import DomainError
from domain.fanc import (
    LegacyFancNumber,
    check_in_fanc_scope,
    check_legacy_number_accepted,
    legacy_number_id,
    normalise_legacy_number,
)
from domain.identifiers import MidId
from services.cmd_devices import require_device
from services.cmd_mid_ids import require_mid_id
from services.commands import Cause, CommandData, MidIdField, Result, command
from services.unit_of_work import UnitOfWork

LegacyNumber = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class RecordLicence(CommandData):
    # The device is named by exactly one of its MID-ID and its old FANC number.
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["mid_id"]}, {"required": ["legacy_number"]}]}
    )

    mid_id: MidIdField | None = None
    legacy_number: LegacyNumber | None = None
    licence_ref: Text
    valid_from: date
    valid_until: date | None = None

    @model_validator(mode="after")
    def _names_one_device_and_a_period(self) -> RecordLicence:
        if (self.mid_id is None) == (self.legacy_number is None):
            raise ValueError("give exactly one of mid_id and legacy_number")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class MapLegacyNumber(CommandData):
    legacy_number: LegacyNumber
    mid_id: MidIdField


class ReceiveTransfer(CommandData):
    identifier: LegacyNumber
    period: Annotated[str, Field(min_length=1, max_length=32)]
    received_on: date


def mapped_mid_id(uow: UnitOfWork, legacy_number: str, field: str) -> MidId:
    legacy = uow.get(LegacyFancNumber, legacy_number_id(legacy_number))
    if legacy is None:
        number = normalise_legacy_number(legacy_number)
        raise DomainError("device_unknown", f"old FANC number {number} is mapped to no MID-ID", field)
    return MidId.parse(legacy.mid_id)


def _looks_like_mid_id(identifier: str) -> bool:
    return "".join(identifier.split()).upper().startswith("MID")


@command("fanc.licence", RecordLicence, {"fanc", "fod"}, "Record the FANC licence of an ionising device")
def licence(uow: UnitOfWork, data: RecordLicence, cause: Cause) -> Result:
    if data.mid_id is not None:
        mid_id, field, legacy_number = data.mid_id, "data.mid_id", None
    else:
        assert data.legacy_number is not None
        field, legacy_number = "data.legacy_number", normalise_legacy_number(data.legacy_number)
        mid_id = mapped_mid_id(uow, legacy_number, field)
    record = require_mid_id(uow, mid_id, field)
    record.check_not_cancelled(field)
    check_in_fanc_scope(record.mid_id, record.modality, field)
    device = require_device(uow, mid_id, field)
    recorded = device.record_licence(
        licence_ref=data.licence_ref,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        legacy_number=legacy_number,
        **cause.provenance,
    )
    return {
        "mid_id": device.mid_id,
        "licence_ref": data.licence_ref,
        "valid_from": data.valid_from.isoformat(),
        "valid_until": data.valid_until.isoformat() if data.valid_until else None,
        "unchanged": not recorded,
    }


@command(
    "fanc.legacy-number", MapLegacyNumber, {"fanc", "fod"}, "Map an old FANC unique number to its MID-ID"
)
def map_legacy_number(uow: UnitOfWork, data: MapLegacyNumber, cause: Cause) -> Result:
    record = require_mid_id(uow, data.mid_id)
    record.check_not_cancelled()
    check_in_fanc_scope(record.mid_id, record.modality)
    device = require_device(uow, data.mid_id)
    number = normalise_legacy_number(data.legacy_number)
    legacy = uow.get(LegacyFancNumber, legacy_number_id(number))
    if legacy is not None:
        legacy.check_maps_to(record.mid_id)
    mapped = device.map_legacy_number(number, **cause.provenance)
    if legacy is None:
        uow.add(LegacyFancNumber.map(number, record.mid_id, **cause.provenance))
    return {"legacy_number": number, "mid_id": record.mid_id, "unchanged": not mapped}


@command("fanc.transfer", ReceiveTransfer, {"fanc"}, "A periodic data transfer about an ionising device")
def transfer(uow: UnitOfWork, data: ReceiveTransfer, cause: Cause) -> Result:
    field = "data.identifier"
    legacy: str | None = None
    if _looks_like_mid_id(data.identifier):
        mid_id = MidId.parse(data.identifier, field)
    else:
        legacy = normalise_legacy_number(data.identifier)
        # After the transition no old number is accepted, whether or not FANC ever mapped it.
        check_legacy_number_accepted(legacy, data.received_on, registered_before_midid=True, field=field)
        mid_id = mapped_mid_id(uow, legacy, field)
    record = require_mid_id(uow, mid_id, field)
    check_in_fanc_scope(record.mid_id, record.modality, field)
    device = require_device(uow, mid_id, field)
    device.receive_transfer(data.period, data.received_on, legacy, **cause.provenance)
    return {
        "mid_id": device.mid_id,
        "period": data.period,
        "received_on": data.received_on.isoformat(),
        "identified_by": "mid_id" if legacy is None else "legacy_number",
        "legacy_number": legacy,
    }
