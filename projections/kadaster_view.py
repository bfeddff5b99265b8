"""The kadaster view: one row per device as the register shows it, and who said each field and when.

Each device's row is cut on the business axis too: a slice per span of days it is in force
(`valid_from` up to `valid_to`, exclusive; open: from then on). A change or a decommissioning the
hospital dates (`effective_on`) holds from that day on, and is recorded the moment it is said, so a
change effective next week is in the register today and in force next week. Other statements (the
report, the FOD's link and corrections, licences, billing numbers) are about the device as a whole
and hold on every day. "Now" is the slice in force today, a day the query asks (never the clock's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain import device_events
from domain.device import STATEMENT_FIELDS, Device
from domain.device_events import device_status
from domain.identifiers import MidId
from domain.institution import Institution
from domain.mid_id import MidIdRecord
from projections.projector import Handler, Projection
from projections.store import Row, Transaction
from projections.writes import Batch, Rows

LIST_COLUMNS = (
    "mid_id",
    "device_id",
    "institution",
    "province",
    "region",
    "campus",
    "modality",
    "manufacturer",
    "model",
    "serial_number",
    "use",
    "installed_on",
    "status",
    "licence_ref",
    "licence_valid_from",
    "licence_valid_until",
    "legacy_number",
    "billing_number",
    "registered_on",
    "linked_on",
    "decommissioned_on",
    "open_discrepancies",
)
DETAIL_COLUMNS = (
    *LIST_COLUMNS,
    "legacy_ref",
    "decommission_reason",
    "discrepancy_fields",
    "provenance",
    "opened_at",
    "updated_at",
)

SORTABLE = (
    "mid_id",
    "institution",
    "province",
    "campus",
    "modality",
    "manufacturer",
    "model",
    "status",
    "installed_on",
    "registered_on",
    "linked_on",
    "decommissioned_on",
    "billing_number",
)
"""Columns a list may be sorted on; the MID-ID's sequence number breaks ties, so pages are stable."""

ALWAYS = "0001-01-01"
"""The first slice of a device holds from the beginning of time."""

IN_FORCE = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _said(e: Any, **extra: Any) -> dict[str, Any]:
    """Provenance of a value: the source that said it, under which command, recorded when."""
    said = {"source": e.source, "command_id": e.command_id, "at": e.timestamp.isoformat()}
    said.update({k: _iso(v) for k, v in extra.items() if v is not None})
    return said


_PROVENANCES: dict[str, dict[str, Any]] = {}
"""Devices' provenances lately written, by their JSON: the events of one command change a device's
row one after the other, and the next need not decode what the last one encoded."""


def _encoded(provenance: dict[str, Any]) -> str:
    text = json.dumps(provenance, sort_keys=True)
    if len(_PROVENANCES) >= 10_000:
        _PROVENANCES.clear()
    _PROVENANCES[text] = provenance
    return text


def _decoded_provenance(text: str) -> dict[str, Any]:
    """A copy to change: the values (who said what) are replaced, never changed in place."""
    known = _PROVENANCES.get(text)
    return dict(known) if known is not None else json.loads(text)


def _status(row: dict[str, Any]) -> str:
    return device_status(
        reported=row["reported_at"] is not None,
        linked=row["linked_on"] is not None,
        decommissioned=row["decommissioned_on"] is not None,
    )


LICENCE_RECORDED = Device.LicenceRecorded


class KadasterView(Projection):
    name = "kadaster_view"
    # 3: every row version kept (recorded_from, recorded_to); rows cut by business date (valid_from).
    # 4: versions written with the rows at the end of each batch, no triggers.
    # 5: the filters' indexes carry the business dates, so counting the slices in force reads no row.
    version = 5
    # The supplier's notice shows as discrepancies, transfers in the audit history; the MID-ID's own
    # link and cancellation are the MID-ID register's.
    ignored = (
        "Device.InstallationRecorded",
        "Device.TransferReceived",
        "MidIdRecord.Cancelled",
        "MidIdRecord.Linked",
    )
    tables = ("rm_devices", "rm_device_licences", "rm_institutions", "rm_device_mid_ids")
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {
        "rm_devices": ("mid_id", "valid_from"),
        "rm_device_licences": ("device_id", "licence_ref"),
        "rm_institutions": ("institution",),
    }
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_devices ("
        "mid_id TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT, device_id TEXT NOT NULL, "
        "sequence BIGINT NOT NULL, "
        "institution TEXT NOT NULL, province TEXT, region TEXT, campus TEXT, modality TEXT NOT NULL, "
        "manufacturer TEXT, model TEXT, serial_number TEXT, use TEXT, installed_on TEXT, "
        "status TEXT NOT NULL, "
        "licence_ref TEXT, licence_valid_from TEXT, licence_valid_until TEXT, legacy_number TEXT, "
        "legacy_ref TEXT, billing_number TEXT, registered_on TEXT, reported_at TEXT, linked_on TEXT, "
        "decommissioned_on TEXT, decommission_reason TEXT, open_discrepancies INTEGER NOT NULL, "
        "discrepancy_fields TEXT NOT NULL, provenance TEXT NOT NULL, opened_at TEXT NOT NULL, "
        "updated_at TEXT NOT NULL, PRIMARY KEY (mid_id, valid_from))",
        "CREATE INDEX IF NOT EXISTS rm_devices_device_id ON rm_devices (device_id, valid_from)",
        # One index per filter an operator or a hospital uses, each ending in the default order and
        # then the business dates, so a list's total counts the slices in force from the index alone.
        "CREATE INDEX IF NOT EXISTS rm_devices_sequence ON rm_devices (sequence, valid_from, valid_to)",
        "CREATE INDEX IF NOT EXISTS rm_devices_institution "
        "ON rm_devices (institution, sequence, valid_from, valid_to)",
        "CREATE INDEX IF NOT EXISTS rm_devices_modality "
        "ON rm_devices (modality, sequence, valid_from, valid_to)",
        "CREATE INDEX IF NOT EXISTS rm_devices_province "
        "ON rm_devices (province, sequence, valid_from, valid_to)",
        "CREATE INDEX IF NOT EXISTS rm_devices_province_modality "
        "ON rm_devices (province, modality, sequence, valid_from, valid_to)",
        "CREATE INDEX IF NOT EXISTS rm_devices_status ON rm_devices (status, sequence, valid_from, valid_to)",
        "CREATE INDEX IF NOT EXISTS rm_devices_institution_campus "
        "ON rm_devices (institution, campus, sequence, valid_from, valid_to)",
        # Oldest or newest first: replacement planning sorts on the installation date.
        "CREATE INDEX IF NOT EXISTS rm_devices_installed_on ON rm_devices (installed_on)",
        "CREATE INDEX IF NOT EXISTS rm_devices_modality_installed_on ON rm_devices (modality, installed_on)",
        "CREATE INDEX IF NOT EXISTS rm_devices_province_installed_on "
        "ON rm_devices (province, installed_on, sequence)",
        "CREATE TABLE IF NOT EXISTS rm_device_licences ("
        "device_id TEXT NOT NULL, licence_ref TEXT NOT NULL, valid_from TEXT NOT NULL, valid_until TEXT, "
        "legacy_number TEXT, source TEXT NOT NULL, command_id TEXT NOT NULL, recorded_at TEXT NOT NULL, "
        "position BIGINT NOT NULL, PRIMARY KEY (device_id, licence_ref))",
        "CREATE TABLE IF NOT EXISTS rm_institutions ("
        "institution TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
        "province TEXT NOT NULL, region TEXT NOT NULL, campuses TEXT NOT NULL, provenance TEXT NOT NULL, "
        "updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rm_device_mid_ids ("
        "mid_id TEXT PRIMARY KEY, source TEXT NOT NULL, command_id TEXT NOT NULL, issued_at TEXT NOT NULL)",
    )

    write_behind = True

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {
            MidIdRecord.Issued: self.mid_id_issued,
            Institution.Registered: self.institution_registered,
            Institution.Updated: self.institution_updated,
            Device.Opened: self.opened,
            Device.Reported: self.stated,
            Device.Backfilled: self.backfilled,
            Device.Changed: self.changed,
            Device.Corrected: self.corrected,
            Device.Linked: self.linked,
            Device.Decommissioned: self.decommissioned,
            Device.LegacyNumberMapped: self.legacy_number_mapped,
            Device.BillingNumberAssigned: self.billing_number_assigned,
            Device.BillingNumberWithdrawn: self.billing_number_withdrawn,
            Device.DiscrepancyRecorded: self.discrepancy_recorded,
            Device.DiscrepancyResolved: self.discrepancy_resolved,
        }

    def apply(self, tx: Batch, event: Any, position: int) -> None:
        # Of all licences a device had, the row shows the latest one; ties go to the later event.
        if type(event) is LICENCE_RECORDED:
            self.licence_recorded(tx, event, position)
        else:
            super().apply(tx, event, position)

    def wants(self, event_type: str) -> bool:
        return event_type == LICENCE_RECORDED.__qualname__ or event_type in self._handled_names

    def prefetch(self, tx: Batch, events: Sequence[Any]) -> None:
        """The MID-IDs, institutions, devices and licences the batch's events name, a query each."""
        by_type: dict[type, list[Any]] = {}
        for e in events:
            by_type.setdefault(type(e), []).append(e)
        opened = by_type.get(Device.Opened, [])
        registered = by_type.get(Institution.Registered, [])
        updated = by_type.get(Institution.Updated, [])
        issued = [e.mid_id for e in (*by_type.get(MidIdRecord.Issued, []), *opened)]
        tx.rows("rm_device_mid_ids").load("mid_id", issued)
        institutions = tx.rows("rm_institutions")
        institutions.load("institution", [e.institution for e in (*registered, *opened)])
        institutions.load("aggregate_id", [str(e.originator_id) for e in updated])
        devices = tx.rows("rm_devices")
        devices.load("mid_id", [e.mid_id for e in opened])
        device_ids = [str(e.originator_id) for kind in DEVICE_EVENTS for e in by_type.get(kind, ())]
        devices.load("device_id", device_ids)
        # Devices take their institution's province and region when it is registered or moves.
        names = {str(e.originator_id): e.institution for e in registered}
        moved = {e.institution for e in registered}
        for e in updated:
            if "province" in e.changes or "region" in e.changes:
                found = institutions.find("aggregate_id", str(e.originator_id))
                name = found["institution"] if found is not None else names.get(str(e.originator_id))
                if name is not None:
                    moved.add(name)
        devices.load("institution", moved)
        licensed = [str(e.originator_id) for e in by_type.get(LICENCE_RECORDED, ())]
        tx.rows("rm_device_licences").load("device_id", licensed)

    # the institutions and MID-IDs the rows refer to

    @staticmethod
    def mid_id_issued(tx: Batch, e: MidIdRecord.Issued) -> None:
        tx.rows("rm_device_mid_ids").insert(
            {
                "mid_id": e.mid_id,
                "source": e.source,
                "command_id": e.command_id,
                "issued_at": e.timestamp.isoformat(),
            }
        )

    @staticmethod
    def institution_registered(tx: Batch, e: Institution.Registered) -> None:
        said = _said(e)
        provenance = dict.fromkeys(("name", "province", "region", "campuses"), said)
        tx.rows("rm_institutions").insert(
            {
                "institution": e.institution,
                "aggregate_id": str(e.originator_id),
                "name": e.name,
                "province": e.province,
                "region": e.region,
                "campuses": json.dumps(list(e.campuses)),
                "provenance": json.dumps(provenance, sort_keys=True),
                "updated_at": said["at"],
            }
        )
        _place(tx, e.institution, e.province, e.region)

    @staticmethod
    def institution_updated(tx: Batch, e: Institution.Updated) -> None:
        # Institution.Updated does not repeat the institution's id: its aggregate's id finds it.
        institutions = tx.rows("rm_institutions")
        row = institutions.find("aggregate_id", str(e.originator_id))
        if row is None:
            return
        said = _said(e)
        provenance = json.loads(row["provenance"])
        campuses = json.loads(row["campuses"])
        for key, value in e.changes.items():
            provenance[key] = said
            if key == "campuses":
                campuses = list(value)
            else:
                row[key] = value
        row["campuses"] = json.dumps(campuses)
        row["provenance"] = json.dumps(provenance, sort_keys=True)
        row["updated_at"] = said["at"]
        institutions.put(row)
        if "province" in e.changes or "region" in e.changes:
            _place(tx, row["institution"], row["province"], row["region"])

    # the device's record

    @staticmethod
    def opened(tx: Batch, e: device_events.Opened) -> None:
        devices = tx.rows("rm_devices")
        if any(row["valid_from"] == ALWAYS for row in devices.where("mid_id", e.mid_id)):
            return
        issued = tx.rows("rm_device_mid_ids").get(e.mid_id)
        # Institution and modality are the MID-ID's: whoever requested it said them, not the opener.
        by_mid_id = (
            {"source": issued["source"], "command_id": issued["command_id"], "at": issued["issued_at"]}
            if issued is not None
            else _said(e)
        )
        place = tx.rows("rm_institutions").get(e.institution) or {"province": None, "region": None}
        provenance = {"institution": by_mid_id, "modality": by_mid_id, "status": _said(e)}
        at = e.timestamp.isoformat()
        row = dict.fromkeys(devices.spec.columns)
        row.update(
            mid_id=e.mid_id,
            valid_from=ALWAYS,
            device_id=str(e.originator_id),
            sequence=MidId.parse(e.mid_id).sequence,
            institution=e.institution,
            province=place["province"],
            region=place["region"],
            modality=e.modality,
            status="announced",
            open_discrepancies=0,
            discrepancy_fields="[]",
            provenance=_encoded(provenance),
            opened_at=at,
            updated_at=at,
        )
        devices.put(row)

    def stated(self, tx: Batch, e: device_events.Reported) -> None:
        """The hospital's report, or a restatement of it: the record is what it now says."""
        values = {field: getattr(e, field) for field in STATEMENT_FIELDS}
        _update(tx, e, values, _said(e), first_statement=True)

    def backfilled(self, tx: Batch, e: device_events.Backfilled) -> None:
        values: dict[str, Any] = {field: getattr(e, field) for field in STATEMENT_FIELDS}
        values["legacy_ref"] = e.legacy_ref
        _update(tx, e, values, _said(e), first_statement=True, registered_on=e.registered_on)

    def changed(self, tx: Batch, e: device_events.Changed) -> None:
        _update(tx, e, dict(e.changes), _said(e, effective_on=e.effective_on), in_force_from=e.effective_on)

    def corrected(self, tx: Batch, e: device_events.Corrected) -> None:
        _update(tx, e, dict(e.corrections), _said(e, reason=e.reason))

    def linked(self, tx: Batch, e: device_events.Linked) -> None:
        _update(tx, e, {"linked_on": e.timestamp.date()}, _said(e))

    def decommissioned(self, tx: Batch, e: device_events.Decommissioned) -> None:
        said = _said(e, reason=e.reason)
        values = {"decommissioned_on": e.effective_on, "decommission_reason": e.reason}
        _update(tx, e, values, said, in_force_from=e.effective_on)

    def licence_recorded(self, tx: Batch, e: device_events.LicenceRecorded, position: int) -> None:
        device = str(e.originator_id)
        licences = tx.rows("rm_device_licences")
        licences.put(
            {
                "device_id": device,
                "licence_ref": e.licence_ref,
                "valid_from": e.valid_from.isoformat(),
                "valid_until": _iso(e.valid_until),
                "legacy_number": e.legacy_number,
                "source": e.source,
                "command_id": e.command_id,
                "recorded_at": e.timestamp.isoformat(),
                "position": position,
            }
        )
        shown = max(licences.where("device_id", device), key=lambda row: (row["valid_from"], row["position"]))
        said = {"source": shown["source"], "command_id": shown["command_id"], "at": shown["recorded_at"]}
        if shown["legacy_number"]:
            said["legacy_number"] = shown["legacy_number"]
        _update(
            tx,
            e,
            {
                "licence_ref": shown["licence_ref"],
                "licence_valid_from": shown["valid_from"],
                "licence_valid_until": shown["valid_until"],
            },
            said,
            provenance_field="licence",
        )

    def legacy_number_mapped(self, tx: Batch, e: device_events.LegacyNumberMapped) -> None:
        _update(tx, e, {"legacy_number": e.legacy_number}, _said(e))

    def billing_number_assigned(self, tx: Batch, e: device_events.BillingNumberAssigned) -> None:
        _update(tx, e, {"billing_number": e.billing_number}, _said(e))

    def billing_number_withdrawn(self, tx: Batch, e: device_events.BillingNumberWithdrawn) -> None:
        said = _said(e, reason=e.reason, effective_on=e.effective_on, withdrawn=e.billing_number)
        _update(tx, e, {"billing_number": None}, said)

    @staticmethod
    def discrepancy_recorded(tx: Batch, e: device_events.DiscrepancyRecorded) -> None:
        _discrepancy_fields(tx, e, lambda fields: sorted({*fields, e.field}))

    @staticmethod
    def discrepancy_resolved(tx: Batch, e: device_events.DiscrepancyResolved) -> None:
        _discrepancy_fields(tx, e, lambda fields: [f for f in fields if f != e.field])


DEVICE_EVENTS = (
    Device.Opened,
    Device.Reported,
    Device.Backfilled,
    Device.Changed,
    Device.Corrected,
    Device.Linked,
    Device.Decommissioned,
    LICENCE_RECORDED,
    Device.LegacyNumberMapped,
    Device.BillingNumberAssigned,
    Device.BillingNumberWithdrawn,
    Device.DiscrepancyRecorded,
    Device.DiscrepancyResolved,
)
"""The events that change a device's slices, found by its id."""


def _place(tx: Batch, institution: str, province: str | None, region: str | None) -> None:
    """Every slice of the institution's devices takes its province and region."""
    devices = tx.rows("rm_devices")
    for row in devices.where("institution", institution):
        if row["province"] != province or row["region"] != region:
            devices.put({**row, "province": province, "region": region})


def _update(
    tx: Batch,
    e: Any,
    values: dict[str, Any],
    said: dict[str, Any],
    *,
    first_statement: bool = False,
    registered_on: date | None = None,
    provenance_field: str | None = None,
    in_force_from: date | None = None,
) -> None:
    """Writes some of a device's fields and says, for each, who said it; recomputes its status.

    `in_force_from`: the values hold from that day on (the slice it falls in is cut there);
    otherwise on every day.
    """
    devices = tx.rows("rm_devices")
    slices = sorted(devices.where("device_id", str(e.originator_id)), key=_valid_from)
    if not slices:
        return
    if in_force_from is not None:
        slices = _cut(devices, slices, in_force_from.isoformat())
    columns = {key: _iso(value) for key, value in values.items()}
    at = e.timestamp.isoformat()
    # A field a later-dated statement set keeps that value from its day on.
    blocked: set[str] = set()
    for row in slices:
        provenance = _decoded_provenance(row["provenance"])
        if in_force_from is not None:
            for key in values:
                dated = provenance.get(provenance_field or key, {}).get("effective_on")
                if dated is not None and dated > in_force_from.isoformat():
                    blocked.update((key, "decommission_reason") if key == "decommissioned_on" else (key,))
        changed = {key: value for key, value in columns.items() if key not in blocked}
        for key in values:
            if key == "decommission_reason" or key in blocked:
                continue
            provenance[provenance_field or key] = said
        if first_statement and row["reported_at"] is None:
            changed["reported_at"] = at
            changed["registered_on"] = _iso(registered_on) or e.timestamp.date().isoformat()
            provenance["registered_on"] = said
        status = _status({**row, **changed})
        if status != row["status"]:
            changed["status"] = status
            provenance["status"] = said
        changed["provenance"] = _encoded(provenance)
        changed["updated_at"] = at
        devices.put({**row, **changed})


def _valid_from(row: Row) -> str:
    return str(row["valid_from"])


def _cut(devices: Rows, slices: list[Row], day: str) -> list[Row]:
    """Cuts the slice in force on `day` there; returns the slices from `day` on."""
    later = []
    for row in slices:
        if row["valid_from"] >= day:
            later.append(row)
        elif row["valid_to"] is None or row["valid_to"] > day:
            devices.put({**row, "valid_to": day})
            tail = {**row, "valid_from": day}
            devices.put(tail)
            later.append(tail)
    return later


def _discrepancy_fields(tx: Batch, e: Any, change: Callable[[list[str]], list[str]]) -> None:
    devices = tx.rows("rm_devices")
    for row in devices.where("device_id", str(e.originator_id)):
        fields = change(json.loads(row["discrepancy_fields"]))
        devices.put(
            {
                **row,
                "discrepancy_fields": json.dumps(fields),
                "open_discrepancies": len(fields),
                "updated_at": e.timestamp.isoformat(),
            }
        )


# reading


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("provenance", "discrepancy_fields"):
        if key in row and isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def list_devices(
    tx: Transaction,
    filters: dict[str, str],
    sort: Sequence[tuple[str, bool]],
    limit: int,
    offset: int,
    in_force_on: date,
) -> tuple[list[dict[str, Any]], int]:
    """A page of devices as in force on a day, matching every filter (column → value), and how many
    match in all."""
    clauses = [*(f"{column} = ?" for column in filters), IN_FORCE]
    where = f" WHERE {' AND '.join(clauses)}"
    params = (*filters.values(), in_force_on.isoformat(), in_force_on.isoformat())
    order = [
        f"{'sequence' if column == 'mid_id' else column} {'DESC' if desc else 'ASC'}" for column, desc in sort
    ]
    if not any(column == "mid_id" for column, _ in sort):
        order.append("sequence ASC")
    rows = tx.execute(
        f"SELECT {', '.join(LIST_COLUMNS)} FROM rm_devices{where} "
        f"ORDER BY {', '.join(order)} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).all()
    total = int(tx.execute(f"SELECT COUNT(*) FROM rm_devices{where}", params).scalar() or 0)
    return rows, total


def find_device(tx: Transaction, mid_id: str, in_force_on: date) -> dict[str, Any] | None:
    """One device as in force on a day, with its provenance, all its licences, its institution's
    facts, and the days its record changes on (`in_force`)."""
    day = in_force_on.isoformat()
    row = tx.execute(
        f"SELECT {', '.join(DETAIL_COLUMNS)}, valid_from, valid_to FROM rm_devices "
        f"WHERE mid_id = ? AND {IN_FORCE}",
        (mid_id, day, day),
    ).one()
    if row is None:
        return None
    device = _decoded(row)
    valid_from, valid_to = device.pop("valid_from"), device.pop("valid_to")
    device["in_force"] = {"on": day, "from": None if valid_from == ALWAYS else valid_from, "until": valid_to}
    device["licences"] = tx.execute(
        "SELECT licence_ref, valid_from, valid_until, legacy_number, source, command_id, recorded_at "
        "FROM rm_device_licences WHERE device_id = ? ORDER BY valid_from, position",
        (device["device_id"],),
    ).all()
    institution = tx.execute(
        "SELECT name, campuses, provenance FROM rm_institutions WHERE institution = ?",
        (device["institution"],),
    ).one()
    device["institution_name"] = None
    if institution is not None:
        device["institution_name"] = institution["name"]
        # Province and region are the institution's facts, as the FOD registered them.
        facts = json.loads(institution["provenance"])
        for key in ("province", "region"):
            if key in facts:
                device["provenance"][key] = facts[key]
    device["provenance"] = dict(sorted(device["provenance"].items()))
    return device


def device_summaries(tx: Transaction, mid_ids: Sequence[str], in_force_on: date) -> dict[str, dict[str, Any]]:
    """What a list of MID-IDs needs to say about their devices as in force on a day, by MID-ID."""
    if not mid_ids:
        return {}
    marks = ", ".join("?" for _ in mid_ids)
    day = in_force_on.isoformat()
    rows = tx.execute(
        f"SELECT mid_id, status, manufacturer, model, serial_number, campus FROM rm_devices "
        f"WHERE mid_id IN ({marks}) AND {IN_FORCE}",
        (*mid_ids, day, day),
    ).all()
    return {row.pop("mid_id"): row for row in rows}


EXPORT_COLUMNS = (
    "mid_id",
    "institution",
    "province",
    "campus",
    "modality",
    "manufacturer",
    "model",
    "serial_number",
    "use",
    "installed_on",
    "status",
    "licence_ref",
    "licence_valid_from",
    "licence_valid_until",
    "legacy_number",
    "billing_number",
    "legacy_ref",
    "registered_on",
    "linked_on",
    "decommissioned_on",
    "opened_at",
    "updated_at",
)


def export_page(tx: Transaction, in_force_on: date, after: int, limit: int) -> list[dict[str, Any]]:
    """The next devices of the view as in force on a day, in MID-ID order after the `sequence` `after`,
    each with its `sequence` and the columns an export shows."""
    day = in_force_on.isoformat()
    return tx.execute(
        f"SELECT sequence, {', '.join(EXPORT_COLUMNS)} FROM rm_devices WHERE sequence > ? "
        f"AND {IN_FORCE} ORDER BY sequence LIMIT ?",
        (after, day, day, limit),
    ).all()


def list_institutions(tx: Transaction) -> list[dict[str, Any]]:
    """Every institution the FOD registered, with its devices by status, in institution order."""
    institutions = tx.execute(
        "SELECT institution, name, province, region, campuses, updated_at FROM rm_institutions "
        "ORDER BY institution"
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for row in tx.execute(
        "SELECT institution, status, COUNT(*) AS devices FROM rm_devices GROUP BY institution, status"
    ).all():
        counts.setdefault(row["institution"], {})[row["status"]] = int(row["devices"])
    for institution in institutions:
        institution["campuses"] = json.loads(institution["campuses"])
        institution["devices"] = counts.get(institution["institution"], {})
    return institutions
