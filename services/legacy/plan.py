"""What to send so the register says what a legacy row says: pure planning, no store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from domain.device import Device
from domain.identifiers import FOD, MidId
from domain.reference import UNKNOWN_PROVINCE
from services.cmd_devices import BackfillDevice, backfill_device
from services.legacy.rows import LEGACY_CUTOFF, InstitutionFacts, LegacyDevice
from services.legacy.state import DeviceState, as_json
from services.processor import Inbound

IMPORT_CHANNEL = "import"


@dataclass(frozen=True)
class PlannedCommand:
    """One command of the import, with an id derived from what it says and the state it was planned on."""

    row: int | None
    key: tuple[str, str]
    step: str
    source: str
    type: str
    data: dict[str, Any]
    command_id: str

    def inbound(self, sent_at: datetime) -> Inbound:
        envelope = {
            "specversion": "1.0",
            "id": self.command_id,
            "source": self.source,
            "type": self.type,
            "time": sent_at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": self.data,
        }
        subject = f"kadaster.cmd.{self.source.replace('/', '.')}.{self.type}"
        return Inbound(json.dumps(envelope, ensure_ascii=False).encode(), subject, channel=IMPORT_CHANNEL)


def command_id(scope: str, step: str, data: dict[str, Any], planned_on: str | None = None) -> str:
    """`legacy:<institution>:<label>:<step>:<digest>`; the digest covers the data and the state planned on.

    The same file against the same register gives the same ids, so sending again is a duplicate;
    once the device changed, a command refused before is a new command and is tried again.
    """
    canonical = json.dumps(
        [step, data, planned_on], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    readable = f"legacy:{scope}:{step}:{digest}"
    if len(readable) <= 128:
        return readable
    return f"legacy:{hashlib.sha256(scope.encode()).hexdigest()[:32]}:{step}:{digest}"


def _planned(
    device: LegacyDevice, step: str, source: str, type_: str, data: dict[str, Any], planned_on: str | None
) -> PlannedCommand:
    scope = f"{device.institution}:{device.label}"
    return PlannedCommand(
        device.row, device.key, step, source, type_, data, command_id(scope, step, data, planned_on)
    )


def plan_institution(facts: InstitutionFacts) -> PlannedCommand | None:
    """`institution.register` for an institution the register does not know, if the file says where it is."""
    if facts.region is None:
        return None
    data = {
        "institution": facts.institution,
        "name": facts.name,
        "province": facts.province or UNKNOWN_PROVINCE,
        "region": facts.region,
        "campuses": list(facts.campuses),
    }
    scope = facts.institution
    return PlannedCommand(
        None,
        (facts.institution, ""),
        "institution",
        FOD,
        "institution.register",
        data,
        command_id(scope, "institution", data),
    )


def plan_backfill(device: LegacyDevice, source_name: str) -> PlannedCommand:
    data: dict[str, Any] = {
        "institution": device.institution,
        "modality": device.modality,
        "legacy_ref": device.label,
        **{name: as_json(value) for name, value in device.statement().items()},
        "registered_on": device.registered_on.isoformat(),
    }
    # The old FANC number goes in with the backfill so the device and its number are recorded at once.
    if device.fanc_number is not None:
        data["legacy_number"] = device.fanc_number
    return _planned(device, "backfill", FOD, "midid.backfill", data, None)


@dataclass(frozen=True)
class Refusal:
    """A row the import will not apply, or a command of it the register refused."""

    row: int | None
    institution: str
    label: str
    step: str
    code: str
    message: str
    command_id: str | None = None
    earlier: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "institution": self.institution,
            "label": self.label,
            "step": self.step,
            "code": self.code,
            "message": self.message,
            "command_id": self.command_id,
            "earlier": self.earlier,
        }


NEW_DEVICE = MidId(1)
"""Stands in for the MID-ID a device of a dry run would receive."""


def state_after_backfill(device: LegacyDevice, mid_id: str | None) -> DeviceState:
    """What `midid.backfill` records from the row, as the command itself records it, on a device not
    stored, so the import need not read it back (a dry run's new device: its MID-ID left out)."""
    planned = plan_backfill(device, "")
    data = BackfillDevice.model_validate(planned.data)
    provenance = {"source": planned.source, "command_id": planned.command_id}
    shown = str(NEW_DEVICE) if mid_id is None else mid_id
    recorded = Device.open(shown, data.institution, data.modality.value, **provenance)
    backfill_device(recorded, data, provenance)
    state = DeviceState.of(recorded)
    return state if mid_id is not None else replace(state, mid_id="MID-(new)")


def plan_changes(
    device: LegacyDevice, state: DeviceState, source_name: str
) -> tuple[list[PlannedCommand], list[Refusal]]:
    """What to send, in order, so the register says what the row says. It adds and corrects, never removes.

    Corrections and FANC come first; billing and decommissioning are planned on the state those
    leave, so a billing number is asked for once the licence it needs is there.
    """
    mid_id = state.mid_id
    if state.modality != device.modality:
        return [], [
            Refusal(
                device.row,
                device.institution,
                device.label,
                "correct",
                "conflict",
                f"{device.label} is the {state.modality} carrying {mid_id}; a MID-ID's modality never "
                "changes (a new device takes a new label)",
            )
        ]
    commands: list[PlannedCommand] = []
    refusals: list[Refusal] = []
    planned_on = state.fingerprint
    statement = device.statement()
    corrections = {name: value for name, value in statement.items() if state.record.get(name) != value}
    if corrections:
        data = {
            "mid_id": mid_id,
            "corrections": {name: as_json(value) for name, value in corrections.items()},
            "reason": f"legacy kadaster register {source_name}, row {device.row}",
        }
        commands.append(_planned(device, "correct", FOD, "device.correct", data, planned_on))
    legacy_number = state.legacy_number
    if device.fanc_number is not None and legacy_number != device.fanc_number:
        data = {"legacy_number": device.fanc_number, "mid_id": mid_id}
        commands.append(_planned(device, "fanc-number", FOD, "fanc.legacy-number", data, planned_on))
        legacy_number = legacy_number or device.fanc_number
    licences = state.licences
    # A licence and a billing number ended with the device; an out-of-service row records neither.
    in_service = not device.out_of_service and not state.decommissioned
    # The FANC unique number stands for the device's licence, valid since it was installed.
    licence = device.fanc_number
    if licence is not None and in_service and licence not in licences:
        data = {"mid_id": mid_id, "licence_ref": licence, "valid_from": device.installed_on.isoformat()}
        commands.append(_planned(device, "licence", FOD, "fanc.licence", data, planned_on))
        licences = licences | {licence}
    if state.decommissioned:
        if not device.out_of_service:
            refusals.append(
                Refusal(
                    device.row,
                    device.institution,
                    device.label,
                    "decommission",
                    "device_decommissioned",
                    f"the device carrying {mid_id} was decommissioned; it does not return to service",
                )
            )
        return commands, refusals
    planned_on = DeviceState(
        mid_id,
        state.modality,
        {**state.record, **corrections},
        legacy_number,
        licences,
        state.billing_number,
        state.decommissioned,
    ).fingerprint
    if device.billing_number is not None and in_service and state.billing_number != device.billing_number:
        data = {"mid_id": mid_id, "billing_number": device.billing_number}
        commands.append(_planned(device, "billing", FOD, "billing.assign", data, planned_on))
    if device.out_of_service:
        effective_on = device.decommissioned_on or max(LEGACY_CUTOFF, device.installed_on)
        data = {
            "mid_id": mid_id,
            "effective_on": effective_on.isoformat(),
            "reason": "out of service in the legacy kadaster register",
        }
        commands.append(_planned(device, "decommission", FOD, "device.decommission", data, planned_on))
    return commands, refusals
