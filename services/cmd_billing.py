"""RIZIV's commands: a billing number for a device that meets every requirement, and its withdrawal."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from domain.billing import BillingNumber, billing_number_id, normalise_billing_number
from services.cmd_devices import require_device
from services.commands import Cause, CommandData, MidIdField, Result, command
from services.unit_of_work import UnitOfWork


class AssignBillingNumber(CommandData):
    mid_id: MidIdField
    billing_number: Annotated[str, Field(min_length=1, max_length=64)]


class WithdrawBillingNumber(CommandData):
    mid_id: MidIdField
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


@command("billing.assign", AssignBillingNumber, {"riziv", "fod"}, "Give a device its billing number")
def assign(uow: UnitOfWork, data: AssignBillingNumber, cause: Cause) -> Result:
    device = require_device(uow, data.mid_id)
    billing_number = normalise_billing_number(data.billing_number)
    # The licence must be valid when RIZIV decides, which is when it says it sent the command.
    day = cause.sent_at.date() if cause.sent_at is not None else None
    number = uow.get(BillingNumber, billing_number_id(billing_number))
    assigned = device.assign_billing_number(billing_number, day, **cause.provenance)
    if number is None:
        uow.add(BillingNumber.assign(billing_number, device.mid_id, **cause.provenance))
    else:
        number.reassign(device.mid_id, **cause.provenance)
    return {
        "mid_id": device.mid_id,
        "billing_number": billing_number,
        "device_status": device.status,
        "unchanged": not assigned,
    }


@command("billing.withdraw", WithdrawBillingNumber, {"riziv"}, "Withdraw a device's billing number")
def withdraw(uow: UnitOfWork, data: WithdrawBillingNumber, cause: Cause) -> Result:
    device = require_device(uow, data.mid_id)
    billing_number = device.withdraw_billing_number(data.reason, None, **cause.provenance)
    number = uow.get(BillingNumber, billing_number_id(billing_number))
    if number is not None:
        number.release(data.reason, **cause.provenance)
    return {
        "mid_id": device.mid_id,
        "billing_number": None,
        "withdrawn": billing_number,
        "device_status": device.status,
    }
