"""Commands of the MID-ID's life: issue and cancel."""

from __future__ import annotations

from pydantic import Field

from domain.errors import DomainError
from domain.identifiers import MidId
from domain.mid_id import SEQUENCE_ID, MidIdRecord, MidIdSequence
from services.commands import Cause, CommandData, MidIdField, ModalityField, Result, command
from services.unit_of_work import UnitOfWork


class IssueMidId(CommandData):
    modality: ModalityField
    note: str | None = Field(default=None, max_length=1000)


class CancelMidId(CommandData):
    mid_id: MidIdField
    reason: str = Field(min_length=1, max_length=1000)


def require_mid_id(uow: UnitOfWork, mid_id: MidId, field: str = "data.mid_id") -> MidIdRecord:
    record = uow.get(MidIdRecord, mid_id.aggregate_id)
    if record is None:
        raise DomainError("midid_unknown", f"{mid_id} was never issued", field)
    return record


def take_next_number(uow: UnitOfWork, command_id: str) -> MidId:
    sequence = uow.get(MidIdSequence, SEQUENCE_ID)
    if sequence is None:
        sequence = MidIdSequence()
        uow.add(sequence)
    return sequence.take_next(command_id)


def mid_id_result(record: MidIdRecord) -> Result:
    return {"mid_id": record.mid_id, "modality": record.modality, "status": record.status}


@command("midid.issue", IssueMidId, {"hospital"}, "Issue the next MID-ID to the sending hospital")
def issue(uow: UnitOfWork, data: IssueMidId, cause: Cause) -> Result:
    institution = cause.institution
    number = take_next_number(uow, cause.command_id)
    record = MidIdRecord.issue(number, institution, data.modality, data.note, **cause.provenance)
    uow.add(record)
    return mid_id_result(record)


@command("midid.cancel", CancelMidId, {"hospital"}, "Cancel an unlinked MID-ID of one's own")
def cancel(uow: UnitOfWork, data: CancelMidId, cause: Cause) -> Result:
    institution = cause.institution
    record = require_mid_id(uow, data.mid_id)
    record.cancel(institution, data.reason, **cause.provenance)
    return mid_id_result(record)
