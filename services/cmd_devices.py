"""Commands of a device's life: reported, noticed by its supplier, linked or backfilled, changed, retired."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from domain.billing import BillingNumber, billing_number_id
from domain.device import Device, device_id
from domain.errors import DomainError
from domain.fanc import LegacyFancNumber, check_in_fanc_scope, legacy_number_id, normalise_legacy_number
from domain.identifiers import PARTY_PATTERN, MidId
from domain.institution import Institution, institution_id
from domain.mid_id import LegacyRef, MidIdRecord, legacy_ref_id
from services.cmd_mid_ids import require_mid_id, take_next_number
from services.commands import Cause, CommandData, MidIdField, ModalityField, Result, command
from services.unit_of_work import UnitOfWork


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Party = Annotated[str, Field(pattern=PARTY_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]
Use = Annotated[Literal["clinical", "research", "mixed"], BeforeValidator(_lower)]


class ReportDevice(CommandData):
    mid_id: MidIdField
    modality: ModalityField
    manufacturer: Text
    model: Text
    serial_number: Text
    campus: Text
    installed_on: date
    use: Use


class DeviceFields(CommandData):
    """Some of a device's stated fields: the ones that change, or that the FOD corrects."""

    manufacturer: Text | None = None
    model: Text | None = None
    serial_number: Text | None = None
    campus: Text | None = None
    installed_on: date | None = None
    use: Use | None = None

    @model_validator(mode="after")
    def _names_at_least_one_value(self) -> DeviceFields:
        if not self.model_fields_set:
            raise ValueError("name at least one field that changes")
        emptied = sorted(key for key in self.model_fields_set if getattr(self, key) is None)
        if emptied:
            raise ValueError(f"{', '.join(emptied)} cannot be emptied")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in sorted(self.model_fields_set)}


class ChangeDevice(CommandData):
    mid_id: MidIdField
    changes: DeviceFields
    effective_on: date


class CorrectDevice(CommandData):
    mid_id: MidIdField
    corrections: DeviceFields
    reason: Reason


class DecommissionDevice(CommandData):
    mid_id: MidIdField
    effective_on: date
    reason: Reason


class RecordInstallation(CommandData):
    mid_id: MidIdField
    institution: Party
    modality: ModalityField
    manufacturer: Text
    model: Text
    serial_number: Text
    installed_on: date


class LinkMidId(CommandData):
    mid_id: MidIdField


class BackfillDevice(CommandData):
    institution: Party
    modality: ModalityField
    legacy_ref: Text
    manufacturer: Text
    model: Text
    serial_number: Text
    campus: Text
    installed_on: date
    use: Use
    registered_on: date | None = None
    legacy_number: Text | None = None


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def require_device(uow: UnitOfWork, mid_id: MidId, field: str = "data.mid_id") -> Device:
    """The device reported under an issued MID-ID; a supplier's notice alone does not make it known."""
    require_mid_id(uow, mid_id, field)
    device = uow.get(Device, device_id(mid_id))
    if device is None:
        raise DomainError(
            "device_unknown", f"no device carrying {mid_id} was reported to the kadaster", field
        )
    device.check_reported(field)
    return device


def device_of(uow: UnitOfWork, record: MidIdRecord, cause: Cause) -> Device:
    """The device record of a MID-ID, opened by whoever first speaks of the device."""
    device = uow.get(Device, device_id(record.mid_id))
    if device is None:
        device = Device.open(record.mid_id, record.institution, record.modality, **cause.provenance)
        uow.add(device)
    return device


def check_campus(uow: UnitOfWork, device: Device, cause: Cause) -> None:
    """Compares the device's campus with the campuses the FOD registered for its institution."""
    institution = uow.get(Institution, institution_id(device.institution))
    if institution is not None:
        device.reconcile_campus(list(institution.campuses), **cause.provenance)


def device_result(device: Device, **extra: Any) -> Result:
    return {
        "mid_id": device.mid_id,
        "device_status": device.status,
        **{key: _json(value) for key, value in extra.items()},
        "discrepancies": device.open_discrepancies(),
    }


@command("device.report", ReportDevice, {"hospital"}, "Report a device carrying one of its own MID-IDs")
def report(uow: UnitOfWork, data: ReportDevice, cause: Cause) -> Result:
    record = require_mid_id(uow, data.mid_id)
    record.check_held_by(cause.institution)
    record.check_not_cancelled()
    record.check_modality(data.modality)
    device = device_of(uow, record, cause)
    restated = device.reported
    recorded = device.report(
        modality=data.modality.value,
        manufacturer=data.manufacturer,
        model=data.model,
        serial_number=data.serial_number,
        campus=data.campus,
        installed_on=data.installed_on,
        use=data.use,
        **cause.provenance,
    )
    check_campus(uow, device, cause)
    return device_result(device, restated=restated and recorded, unchanged=not recorded)


@command("device.change", ChangeDevice, {"hospital"}, "Report what changes about a device (delta)")
def change(uow: UnitOfWork, data: ChangeDevice, cause: Cause) -> Result:
    record = require_mid_id(uow, data.mid_id)
    record.check_held_by(cause.institution)
    record.check_not_cancelled()
    device = require_device(uow, data.mid_id)
    changed = device.change(data.changes.as_dict(), data.effective_on, **cause.provenance)
    check_campus(uow, device, cause)
    return device_result(device, changed=changed, effective_on=data.effective_on)


@command("device.decommission", DecommissionDevice, {"hospital", "fod"}, "Take a device out of service")
def decommission(uow: UnitOfWork, data: DecommissionDevice, cause: Cause) -> Result:
    record = require_mid_id(uow, data.mid_id)
    if not cause.by_fod:
        record.check_held_by(cause.institution)
    device = require_device(uow, data.mid_id)
    billing_number = device.decommission(data.effective_on, data.reason, **cause.provenance)
    if billing_number is not None:
        number = uow.get(BillingNumber, billing_number_id(billing_number))
        if number is not None:
            number.release("device decommissioned", **cause.provenance)
    return device_result(device, effective_on=data.effective_on, billing_number_withdrawn=billing_number)


@command("device.installation", RecordInstallation, {"supplier"}, "A supplier's installation notice")
def installation(uow: UnitOfWork, data: RecordInstallation, cause: Cause) -> Result:
    record = require_mid_id(uow, data.mid_id)
    record.check_not_cancelled()
    device = device_of(uow, record, cause)
    recorded = device.record_installation(
        supplier=cause.institution,
        institution=data.institution,
        modality=data.modality.value,
        manufacturer=data.manufacturer,
        model=data.model,
        serial_number=data.serial_number,
        installed_on=data.installed_on,
        **cause.provenance,
    )
    return device_result(device, unchanged=not recorded)


@command("device.correct", CorrectDevice, {"fod"}, "The FOD corrects a device's record")
def correct(uow: UnitOfWork, data: CorrectDevice, cause: Cause) -> Result:
    device = require_device(uow, data.mid_id)
    corrected = device.correct(data.corrections.as_dict(), data.reason, **cause.provenance)
    check_campus(uow, device, cause)
    return device_result(device, corrected=corrected)


@command("midid.link", LinkMidId, {"fod"}, "Link a MID-ID to its reported device, for good")
def link(uow: UnitOfWork, data: LinkMidId, cause: Cause) -> Result:
    record = require_mid_id(uow, data.mid_id)
    record.check_not_cancelled()
    device = require_device(uow, data.mid_id)
    record.check_linkable_to(device.id)
    linked_now = device.link(**cause.provenance)
    record.link(device.id, **cause.provenance)
    return device_result(device, status=record.status, already_linked=not linked_now)


@command(
    "midid.backfill",
    BackfillDevice,
    {"fod"},
    "Issue and link a MID-ID for a device the kadaster knew before MID-IDs existed",
)
def backfill(uow: UnitOfWork, data: BackfillDevice, cause: Cause) -> Result:
    earlier = uow.get(LegacyRef, legacy_ref_id(data.institution, data.legacy_ref))
    if earlier is not None:
        first = require_mid_id(uow, MidId.parse(earlier.mid_id))
        device = require_device(uow, MidId.parse(earlier.mid_id))
        return _backfill_result(first, device, already_backfilled=True)
    legacy: LegacyFancNumber | None = None
    if data.legacy_number is not None:
        check_in_fanc_scope(f"legacy device {data.legacy_ref}", data.modality.value, "data.legacy_number")
        legacy = uow.get(LegacyFancNumber, legacy_number_id(data.legacy_number))
        if legacy is not None:
            raise DomainError(
                "conflict",
                f"old FANC number {legacy.legacy_number} is already mapped to {legacy.mid_id}",
                "data.legacy_number",
            )
    number = take_next_number(uow, cause.command_id)
    record = MidIdRecord.backfill(
        number, data.institution, data.modality, data.legacy_ref, **cause.provenance
    )
    uow.add(record)
    uow.add(
        LegacyRef(
            institution=data.institution,
            legacy_ref=data.legacy_ref,
            mid_id=record.mid_id,
            **cause.provenance,
        )
    )
    device = device_of(uow, record, cause)
    backfill_device(device, data, cause.provenance)
    record.link(device.id, **cause.provenance)
    if device.legacy_number is not None:
        uow.add(LegacyFancNumber.map(device.legacy_number, record.mid_id, **cause.provenance))
    return _backfill_result(record, device, already_backfilled=False)


def backfill_device(device: Device, data: BackfillDevice, provenance: dict[str, str]) -> None:
    """What a backfill records on the device: the FOD's statement, linked at once, its old FANC number."""
    device.backfill(
        legacy_ref=data.legacy_ref,
        manufacturer=data.manufacturer,
        model=data.model,
        serial_number=data.serial_number,
        campus=data.campus,
        installed_on=data.installed_on,
        use=data.use,
        registered_on=data.registered_on,
        **provenance,
    )
    device.link(**provenance)
    if data.legacy_number is not None:
        device.map_legacy_number(normalise_legacy_number(data.legacy_number), **provenance)


def _backfill_result(record: MidIdRecord, device: Device, already_backfilled: bool) -> Result:
    return device_result(
        device,
        institution=device.institution,
        modality=device.modality,
        status=record.status,
        legacy_ref=device.legacy_ref,
        registered_on=device.registered_on,
        registered_before_midid=device.registered_before_midid,
        legacy_number=device.legacy_number,
        already_backfilled=already_backfilled,
    )
