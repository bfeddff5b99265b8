"""The kadaster's record of one device: what its hospital and supplier state, and its life after linking."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import device_events
from domain.device_events import device_status
from domain.errors import DomainError, ErrorDetail
from domain.fanc import MIDID_IN_FORCE, check_in_fanc_scope, check_legacy_number_accepted
from domain.identifiers import MidId, Modality, SerialNumber, stable_id
from domain.obligations import licensed_on

USES = ("clinical", "research", "mixed")
BILLABLE_USES = ("clinical", "mixed")

STATEMENT_FIELDS = ("manufacturer", "model", "serial_number", "campus", "installed_on", "use")
"""What a hospital states about a device besides its modality, which the MID-ID fixes."""

COMPARED_FIELDS = ("institution", "modality", "manufacturer", "model", "serial_number", "installed_on")
"""What the hospital's and the supplier's statements should agree on."""


def device_id(mid_id: str | MidId) -> UUID:
    """One device per MID-ID, for good."""
    number = mid_id if isinstance(mid_id, MidId) else MidId.parse(mid_id)
    return stable_id("device", str(number))


def _same_text(field: str, one: str, other: str) -> bool:
    # Serial numbers are typed off type plates with varying separators; names vary in case.
    if field == "serial_number":
        return SerialNumber(one) == SerialNumber(other)
    return " ".join(one.split()).casefold() == " ".join(other.split()).casefold()


def _agree(field: str, one: Any, other: Any) -> bool:
    if isinstance(one, str) and isinstance(other, str):
        return _same_text(field, one, other)
    return bool(one == other)


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _check_fields(values: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    if not values:
        raise DomainError("schema", "name at least one field that changes", field)
    for key, value in values.items():
        if key not in allowed:
            allowed_names = ", ".join(allowed)
            raise DomainError("schema", f"{key!r} cannot be changed ({allowed_names} can)", f"{field}.{key}")
        if value is None:
            raise DomainError("schema", f"{key} cannot be emptied", f"{field}.{key}")
    if "use" in values and values["use"] not in USES:
        raise DomainError("schema", f"use is one of {', '.join(USES)}", f"{field}.use")


class Device(Aggregate):
    """A device carrying one MID-ID, as the hospital, its supplier, the FOD, FANC and RIZIV know it.

    `record` is the kadaster's view: the hospital's statement with its later changes, and the
    FOD's corrections; `provenance` says who set each field. The supplier's installation notice
    is kept beside it, and every field on which the two disagree is an open discrepancy.
    """

    @staticmethod
    def create_id(mid_id: str) -> UUID:
        return device_id(mid_id)

    Opened = device_events.Opened
    Reported = device_events.Reported
    Backfilled = device_events.Backfilled
    Changed = device_events.Changed
    Corrected = device_events.Corrected
    Decommissioned = device_events.Decommissioned
    InstallationRecorded = device_events.InstallationRecorded
    DiscrepancyRecorded = device_events.DiscrepancyRecorded
    DiscrepancyResolved = device_events.DiscrepancyResolved
    Linked = device_events.Linked
    LicenceRecorded = device_events.LicenceRecorded
    LegacyNumberMapped = device_events.LegacyNumberMapped
    TransferReceived = device_events.TransferReceived
    BillingNumberAssigned = device_events.BillingNumberAssigned
    BillingNumberWithdrawn = device_events.BillingNumberWithdrawn

    @event(Opened)
    def __init__(self, mid_id: str, institution: str, modality: str, source: str, command_id: str) -> None:
        self.mid_id = mid_id
        self.institution = institution
        self.modality = modality
        self.record: dict[str, Any] = {}
        self.provenance: dict[str, str] = {}
        self.supplier_statement: dict[str, Any] | None = None
        self.discrepancies: dict[str, dict[str, str]] = {}
        self.linked = False
        self.decommissioned_on: date | None = None
        self.decommission_reason: str | None = None
        self.legacy_ref: str | None = None
        self.registered_on: date | None = None
        self.registered_before_midid = False
        self.legacy_number: str | None = None
        self.licences: dict[str, dict[str, date | None]] = {}
        self.billing_number: str | None = None
        self.transfers: list[dict[str, Any]] = []

    @classmethod
    def open(cls, mid_id: str, institution: str, modality: str, source: str, command_id: str) -> Device:
        """The record of the device that carries a MID-ID, opened by whoever first speaks of it."""
        return cls(
            mid_id=mid_id, institution=institution, modality=modality, source=source, command_id=command_id
        )

    # what the record says

    @property
    def reported(self) -> bool:
        return bool(self.record)

    @property
    def decommissioned(self) -> bool:
        return self.decommissioned_on is not None

    @property
    def status(self) -> str:
        return device_status(reported=self.reported, linked=self.linked, decommissioned=self.decommissioned)

    @property
    def ionising(self) -> bool:
        return Modality(self.modality).is_ionising

    def licence_valid_on(self, day: date | None) -> bool:
        """Valid on that day; without a day, only a licence without an end date counts."""
        covers = [
            (licence["valid_from"], licence["valid_until"])
            for licence in self.licences.values()
            if licence["valid_from"] is not None
        ]
        return licensed_on(covers, day)

    def open_discrepancies(self) -> list[dict[str, str]]:
        return [dict(self.discrepancies[field]) for field in sorted(self.discrepancies)]

    # guards

    def check_reported(self, field: str = "data.mid_id") -> None:
        if not self.reported:
            raise DomainError(
                "device_unknown", f"no device carrying {self.mid_id} was reported to the kadaster", field
            )

    def check_in_service(self, field: str = "data.mid_id") -> None:
        if self.decommissioned_on is not None:
            raise DomainError("device_decommissioned", self._decommissioned(self.decommissioned_on), field)

    def _decommissioned(self, on: date) -> str:
        return f"the device carrying {self.mid_id} was decommissioned on {on.isoformat()}"

    def check_modality(self, modality: str, field: str = "data.modality") -> None:
        if modality != self.modality:
            raise DomainError(
                "conflict", f"{self.mid_id} was issued for {self.modality}, not for {modality}", field
            )

    def check_same_device(self, serial_number: str, field: str = "data.serial_number") -> None:
        """Once linked, the MID-ID stays on the device with the serial number it was linked with."""
        current = self.record.get("serial_number")
        if self.linked and current is not None and not _same_text("serial_number", current, serial_number):
            raise DomainError(
                "midid_already_linked",
                f"{self.mid_id} is linked for good to the device with serial number {current}",
                field,
            )

    def check_in_fanc_scope(self, field: str = "data.mid_id") -> None:
        check_in_fanc_scope(self.mid_id, self.modality, field)

    def missing_billing_requirements(self, day: date | None) -> list[ErrorDetail]:
        missing = []
        if not self.linked:
            missing.append(
                ErrorDetail(
                    "requirements_not_met",
                    f"{self.mid_id} is not yet linked to its device by the FOD",
                    "device.linked",
                )
            )
        use = self.record.get("use")
        if use not in BILLABLE_USES:
            missing.append(
                ErrorDetail(
                    "requirements_not_met",
                    f"the device carrying {self.mid_id} is for {use} use; billing numbers are for clinical "
                    "or mixed use",
                    "device.use",
                )
            )
        if self.decommissioned_on is not None:
            gone = self._decommissioned(self.decommissioned_on)
            missing.append(ErrorDetail("requirements_not_met", gone, "device.status"))
        if self.ionising and not self.licence_valid_on(day):
            when = f"valid on {day.isoformat()}" if day is not None else "without an end date"
            missing.append(
                ErrorDetail(
                    "requirements_not_met",
                    f"the {self.modality} carrying {self.mid_id} has no FANC licence {when}",
                    "device.fanc_licence",
                )
            )
        return missing

    # the hospital's statement

    def report(
        self,
        modality: str,
        manufacturer: str,
        model: str,
        serial_number: str,
        campus: str,
        installed_on: date,
        use: str,
        source: str,
        command_id: str,
    ) -> bool:
        """Records the hospital's report; a later one restates it. False when it says nothing new."""
        self.check_modality(modality)
        self.check_in_service()
        self.check_same_device(serial_number)
        statement = {
            "modality": modality,
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial_number,
            "campus": campus,
            "installed_on": installed_on,
            "use": use,
        }
        _check_fields({k: v for k, v in statement.items() if k != "modality"}, STATEMENT_FIELDS, "data")
        if all(self.record.get(k) == v and self.provenance.get(k) == source for k, v in statement.items()):
            return False
        self._report(
            modality=modality,
            manufacturer=manufacturer,
            model=model,
            serial_number=serial_number,
            campus=campus,
            installed_on=installed_on,
            use=use,
            restated=self.reported,
            source=source,
            command_id=command_id,
        )
        self._reconcile(source, command_id)
        return True

    @event(Reported)
    def _report(
        self,
        modality: str,
        manufacturer: str,
        model: str,
        serial_number: str,
        campus: str,
        installed_on: date,
        use: str,
        restated: bool,
        source: str,
        command_id: str,
    ) -> None:
        self.record = {
            "modality": modality,
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial_number,
            "campus": campus,
            "installed_on": installed_on,
            "use": use,
        }
        self.provenance = dict.fromkeys(self.record, source)

    def backfill(
        self,
        legacy_ref: str,
        manufacturer: str,
        model: str,
        serial_number: str,
        campus: str,
        installed_on: date,
        use: str,
        registered_on: date | None,
        source: str,
        command_id: str,
    ) -> None:
        """The FOD's own record of a device it knew before MID-IDs existed."""
        if self.reported:
            raise DomainError(
                "conflict", f"the device carrying {self.mid_id} is already in the kadaster", "data"
            )
        _check_fields({"use": use}, STATEMENT_FIELDS, "data")
        registered = registered_on or installed_on
        self._backfill(
            legacy_ref=legacy_ref,
            modality=self.modality,
            manufacturer=manufacturer,
            model=model,
            serial_number=serial_number,
            campus=campus,
            installed_on=installed_on,
            use=use,
            registered_on=registered,
            registered_before_midid=registered < MIDID_IN_FORCE,
            source=source,
            command_id=command_id,
        )
        self._reconcile(source, command_id)

    @event(Backfilled)
    def _backfill(
        self,
        legacy_ref: str,
        modality: str,
        manufacturer: str,
        model: str,
        serial_number: str,
        campus: str,
        installed_on: date,
        use: str,
        registered_on: date,
        registered_before_midid: bool,
        source: str,
        command_id: str,
    ) -> None:
        self.record = {
            "modality": modality,
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial_number,
            "campus": campus,
            "installed_on": installed_on,
            "use": use,
        }
        self.provenance = dict.fromkeys(self.record, source)
        self.legacy_ref = legacy_ref
        self.registered_on = registered_on
        self.registered_before_midid = registered_before_midid

    def change(self, changes: dict[str, Any], effective_on: date, source: str, command_id: str) -> list[str]:
        """Records what really changes; returns the changed fields (none: nothing recorded)."""
        self.check_reported()
        self.check_in_service()
        _check_fields(changes, STATEMENT_FIELDS, "data.changes")
        if "serial_number" in changes:
            self.check_same_device(changes["serial_number"], "data.changes.serial_number")
        delta = {key: value for key, value in changes.items() if self.record.get(key) != value}
        if delta:
            self._change(changes=delta, effective_on=effective_on, source=source, command_id=command_id)
            self._reconcile(source, command_id)
        return sorted(delta)

    @event(Changed)
    def _change(self, changes: dict[str, Any], effective_on: date, source: str, command_id: str) -> None:
        self.record.update(changes)
        self.provenance.update(dict.fromkeys(changes, source))

    def correct(self, corrections: dict[str, Any], reason: str, source: str, command_id: str) -> list[str]:
        """The FOD sets the record straight, e.g. to the serial number on the type plate."""
        self.check_reported()
        _check_fields(corrections, STATEMENT_FIELDS, "data.corrections")
        delta = {key: value for key, value in corrections.items() if self.record.get(key) != value}
        if delta:
            self._correct(corrections=delta, reason=reason, source=source, command_id=command_id)
            self._reconcile(source, command_id)
        return sorted(delta)

    @event(Corrected)
    def _correct(self, corrections: dict[str, Any], reason: str, source: str, command_id: str) -> None:
        self.record.update(corrections)
        self.provenance.update(dict.fromkeys(corrections, source))

    def decommission(self, effective_on: date, reason: str, source: str, command_id: str) -> str | None:
        """Takes the device out of service; returns the billing number that ends with it, if any."""
        self.check_reported()
        self.check_in_service()
        billing_number = self.billing_number
        self._decommission(effective_on=effective_on, reason=reason, source=source, command_id=command_id)
        if billing_number is not None:
            # A number outside the device's registration period is what RIZIV's audit found unchecked.
            self._withdraw_billing_number(
                billing_number=billing_number,
                reason="device decommissioned",
                effective_on=effective_on,
                source=source,
                command_id=command_id,
            )
        return billing_number

    @event(Decommissioned)
    def _decommission(self, effective_on: date, reason: str, source: str, command_id: str) -> None:
        self.decommissioned_on = effective_on
        self.decommission_reason = reason

    # the supplier's statement

    def record_installation(
        self,
        supplier: str,
        institution: str,
        modality: str,
        manufacturer: str,
        model: str,
        serial_number: str,
        installed_on: date,
        source: str,
        command_id: str,
    ) -> bool:
        """Records the supplier's notice beside the hospital's report; False when it says nothing new.

        A notice may arrive after the device left service: it still tells how it was installed.
        """
        statement = {
            "supplier": supplier,
            "institution": institution,
            "modality": modality,
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial_number,
            "installed_on": installed_on,
        }
        current = self.supplier_statement or {}
        if all(current.get(k) == v for k, v in statement.items()):
            return False
        self._record_installation(
            supplier=supplier,
            institution=institution,
            modality=modality,
            manufacturer=manufacturer,
            model=model,
            serial_number=serial_number,
            installed_on=installed_on,
            source=source,
            command_id=command_id,
        )
        self._reconcile(source, command_id)
        return True

    @event(InstallationRecorded)
    def _record_installation(
        self,
        supplier: str,
        institution: str,
        modality: str,
        manufacturer: str,
        model: str,
        serial_number: str,
        installed_on: date,
        source: str,
        command_id: str,
    ) -> None:
        self.supplier_statement = {
            "supplier": supplier,
            "institution": institution,
            "modality": modality,
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial_number,
            "installed_on": installed_on,
            "source": source,
        }

    # discrepancies between the two

    def _reported_value(self, field: str) -> Any:
        if field == "institution":
            return self.institution
        if field == "modality":
            return self.modality
        return self.record.get(field)

    def _reported_source(self, field: str) -> str:
        return self.provenance.get(field, f"hospital/{self.institution}")

    def _disagreements(self) -> dict[str, dict[str, str]]:
        supplier = self.supplier_statement
        if supplier is None:
            return {}
        found = {}
        for field in COMPARED_FIELDS:
            reported = self._reported_value(field)
            if reported is None or _agree(field, reported, supplier[field]):
                continue
            found[field] = {
                "field": field,
                "reported_value": _shown(reported),
                "reported_source": self._reported_source(field),
                "supplier_value": _shown(supplier[field]),
                "supplier_source": supplier["source"],
            }
        return found

    def _reconcile(self, source: str, command_id: str) -> None:
        found = self._disagreements()
        for field, discrepancy in found.items():
            if self.discrepancies.get(field) != discrepancy:
                self._record_discrepancy(**discrepancy, source=source, command_id=command_id)
        for field in sorted(set(self.discrepancies) & set(COMPARED_FIELDS) - set(found)):
            self._resolve_discrepancy(
                field=field, value=_shown(self._reported_value(field)), source=source, command_id=command_id
            )

    def reconcile_campus(self, campuses: list[str], source: str, command_id: str) -> None:
        campus, said = self.record.get("campus"), dict(field="campus", source=source, command_id=command_id)
        if campuses and campus is not None and campus not in campuses:
            if self.discrepancies.get("campus", {}).get("reported_value") != campus:
                said.update(reported_value=campus, supplier_value=", ".join(campuses), supplier_source="fod")
                self._record_discrepancy(reported_source=self._reported_source("campus"), **said)
        elif "campus" in self.discrepancies:
            self._resolve_discrepancy(value=str(campus), **said)

    @event(DiscrepancyRecorded)
    def _record_discrepancy(
        self,
        field: str,
        reported_value: str,
        reported_source: str,
        supplier_value: str,
        supplier_source: str,
        source: str,
        command_id: str,
    ) -> None:
        self.discrepancies[field] = {
            "field": field,
            "reported_value": reported_value,
            "reported_source": reported_source,
            "supplier_value": supplier_value,
            "supplier_source": supplier_source,
        }

    @event(DiscrepancyResolved)
    def _resolve_discrepancy(self, field: str, value: str, source: str, command_id: str) -> None:
        self.discrepancies.pop(field, None)

    # the FOD's link

    def link(self, source: str, command_id: str) -> bool:
        """The FOD confirms the report; False when it already had."""
        self.check_reported()
        if self.linked:
            return False
        self.check_in_service()
        self._link(mid_id=self.mid_id, source=source, command_id=command_id)
        return True

    @event(Linked)
    def _link(self, mid_id: str, source: str, command_id: str) -> None:
        self.linked = True

    # FANC

    def record_licence(
        self,
        licence_ref: str,
        valid_from: date,
        valid_until: date | None,
        legacy_number: str | None,
        source: str,
        command_id: str,
    ) -> bool:
        """Records a licence, or its new validity under the same reference; False when nothing changes."""
        self.check_in_fanc_scope()
        self.check_reported()
        self.check_in_service()
        if valid_until is not None and valid_until < valid_from:
            raise DomainError("schema", "a licence cannot end before it starts", "data.valid_until")
        if self.licences.get(licence_ref) == {"valid_from": valid_from, "valid_until": valid_until}:
            return False
        self._record_licence(
            licence_ref=licence_ref,
            valid_from=valid_from,
            valid_until=valid_until,
            legacy_number=legacy_number,
            source=source,
            command_id=command_id,
        )
        return True

    @event(LicenceRecorded)
    def _record_licence(
        self,
        licence_ref: str,
        valid_from: date,
        valid_until: date | None,
        legacy_number: str | None,
        source: str,
        command_id: str,
    ) -> None:
        self.licences[licence_ref] = {"valid_from": valid_from, "valid_until": valid_until}

    def map_legacy_number(self, legacy_number: str, source: str, command_id: str) -> bool:
        """Records the old FANC unique number this device had; False when it already was."""
        self.check_in_fanc_scope()
        self.check_reported()
        if self.legacy_number == legacy_number:
            return False
        if self.legacy_number is not None:
            raise DomainError(
                "conflict",
                f"the device carrying {self.mid_id} already had old FANC number {self.legacy_number}",
                "data.legacy_number",
            )
        self._map_legacy_number(legacy_number=legacy_number, source=source, command_id=command_id)
        return True

    @event(LegacyNumberMapped)
    def _map_legacy_number(self, legacy_number: str, source: str, command_id: str) -> None:
        self.legacy_number = legacy_number

    def receive_transfer(
        self,
        period: str,
        received_on: date,
        legacy_number: str | None,
        source: str,
        command_id: str,
    ) -> None:
        """A periodic transfer to FANC, under the MID-ID or (during the transition) the old number."""
        self.check_in_fanc_scope("data.identifier")
        self.check_reported("data.identifier")
        if legacy_number is not None:
            check_legacy_number_accepted(legacy_number, received_on, self.registered_before_midid)
        self._receive_transfer(
            period=period,
            received_on=received_on,
            legacy_number=legacy_number,
            source=source,
            command_id=command_id,
        )

    @event(TransferReceived)
    def _receive_transfer(
        self, period: str, received_on: date, legacy_number: str | None, source: str, command_id: str
    ) -> None:
        self.transfers.append({"period": period, "received_on": received_on, "legacy_number": legacy_number})

    # RIZIV

    def assign_billing_number(
        self, billing_number: str, day: date | None, source: str, command_id: str
    ) -> bool:
        """Gives the device its billing number if every requirement is met; False when it already has it."""
        self.check_reported()
        missing = self.missing_billing_requirements(day)
        if missing:
            raise DomainError.of(missing)
        if self.billing_number == billing_number:
            return False
        if self.billing_number is not None:
            raise DomainError(
                "conflict",
                f"the device carrying {self.mid_id} has billing number {self.billing_number}; "
                "withdraw it first",
                "data.billing_number",
            )
        self._assign_billing_number(billing_number=billing_number, source=source, command_id=command_id)
        return True

    @event(BillingNumberAssigned)
    def _assign_billing_number(self, billing_number: str, source: str, command_id: str) -> None:
        self.billing_number = billing_number

    def withdraw_billing_number(
        self, reason: str, effective_on: date | None, source: str, command_id: str
    ) -> str:
        self.check_reported()
        if self.billing_number is None:
            raise DomainError(
                "conflict", f"the device carrying {self.mid_id} has no billing number", "data.mid_id"
            )
        billing_number = self.billing_number
        self._withdraw_billing_number(
            billing_number=billing_number,
            reason=reason,
            effective_on=effective_on,
            source=source,
            command_id=command_id,
        )
        return billing_number

    @event(BillingNumberWithdrawn)
    def _withdraw_billing_number(
        self, billing_number: str, reason: str, effective_on: date | None, source: str, command_id: str
    ) -> None:
        self.billing_number = None
