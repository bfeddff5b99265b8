"""Discrepancies: where sources disagree, deadlines passed, or numbers were used where they should not be.

Kinds (each row names one MID-ID and, where it applies, a field):

- `statement_mismatch`: the supplier's installation notice and the kadaster's record disagree on a
  field (Device.DiscrepancyRecorded), until they agree (Device.DiscrepancyResolved).
- `not_reported`: a supplier announced the device, the hospital has not reported it; due on the
  supplier's installation date, since a report is due before use.
- `not_linked`: reported but not linked by the FOD for more than 30 days (from the report's recording).
- `midid_unlinked`: a MID-ID issued and neither linked nor cancelled for more than 12 months.
- `billing_without_licence`: an ionising device held a billing number on days no FANC licence covered.
- `billing_after_decommission`: a billing number stayed on a device after the date it left service
  (a decommissioning reported late leaves the number in the register for the days in between).
- `legacy_number_after_transition`: FANC recorded a licence under an old FANC number on or after
  2023-10-01, when only the MID-ID identifies the device. Transfers under old numbers after that date
  are refused, so they never get here.

Nothing here reads the clock: rows keep the dates they start (`since`), end (`until`) and count from
(`due_on`); whether one is open, resolved or not yet due is decided at query time for a given day.
A row resolved before it was due, or a derived one that ends the day it began, is deleted: it never
was a discrepancy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain import device_events
from domain.device import Device
from domain.fanc import LEGACY_NUMBERS_ACCEPTED_UNTIL
from domain.identifiers import Modality
from domain.mid_id import MidIdRecord
from domain.obligations import (
    DAY,
    DAYS_TO_LINK,
    MONTHS_UNLINKED,
    link_overdue_on,
    uncovered,
    unused_overdue_on,
)
from projections.projector import Handler, Projection
from projections.store import Row, Transaction
from projections.writes import Batch

KINDS = (
    "statement_mismatch",
    "not_reported",
    "not_linked",
    "midid_unlinked",
    "billing_without_licence",
    "billing_after_decommission",
    "legacy_number_after_transition",
)
DERIVED = ("not_reported", "not_linked", "billing_without_licence", "billing_after_decommission")
"""Kinds recomputed from a device's recorded dates whenever one of them changes."""

STATES = ("open", "resolved", "pending", "all")

COLUMNS = (
    "id",
    "kind",
    "mid_id",
    "institution",
    "field",
    "since",
    "until",
    "due_on",
    "detail",
    "recorded_at",
    "source",
    "command_id",
    "resolved_at",
    "resolved_source",
    "resolved_command_id",
    "resolved_by_event",
)


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _wanted(
    kind: str,
    mid_id: str,
    suffix: str,
    since: date,
    until: date | None,
    due_on: date,
    detail: dict[str, Any],
    field: str | None = None,
) -> tuple[str, dict[str, Any]]:
    key = f"{kind}:{mid_id}" + (f":{suffix}" if suffix else "")
    return key, {
        "kind": kind,
        "field": field,
        "since": _iso(since),
        "until": _iso(until),
        "due_on": _iso(due_on),
        "detail": json.dumps(detail, sort_keys=True),
    }


def derive(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The device-level discrepancies its recorded dates imply, by id."""
    mid_id = state["mid_id"]
    reported_on, decommissioned_on = _day(state["reported_on"]), _day(state["decommissioned_on"])
    found: dict[str, dict[str, Any]] = {}
    supplier = json.loads(state["supplier"]) if state["supplier"] else None
    if supplier is not None and reported_on is None:
        installed_on = date.fromisoformat(supplier["installed_on"])
        key, row = _wanted(
            "not_reported",
            mid_id,
            "",
            installed_on,
            None,
            installed_on,
            {"supplier_installed_on": supplier["installed_on"], "supplier": supplier["source"]},
        )
        found[key] = row
    if reported_on is not None and not state["linked"] and decommissioned_on is None:
        key, row = _wanted(
            "not_linked",
            mid_id,
            "",
            reported_on,
            None,
            link_overdue_on(reported_on),
            {"reported_on": reported_on.isoformat(), "days_allowed": DAYS_TO_LINK},
        )
        found[key] = row
    licences = json.loads(state["licences"])
    covers = [(date.fromisoformat(f), _day(u)) for f, u in licences.values()]
    for number, assigned_on, withdrawn_on in json.loads(state["holdings"]):
        # Held from the day it was assigned up to the day before it was withdrawn.
        first = date.fromisoformat(assigned_on)
        last = None if withdrawn_on is None else date.fromisoformat(withdrawn_on) - DAY
        if last is not None and last < first:
            continue
        if Modality(state["modality"]).is_ionising:
            for gap_from, gap_until in uncovered(first, last, covers):
                key, row = _wanted(
                    "billing_without_licence",
                    mid_id,
                    gap_from.isoformat(),
                    gap_from,
                    gap_until,
                    gap_from,
                    {"billing_number": number, "licences": licences},
                )
                found[key] = row
        if decommissioned_on is not None:
            start = max(first, decommissioned_on)
            if last is None or last >= start:
                key, row = _wanted(
                    "billing_after_decommission",
                    mid_id,
                    start.isoformat(),
                    start,
                    last,
                    start,
                    {"billing_number": number, "decommissioned_on": decommissioned_on.isoformat()},
                )
                found[key] = row
    return found


class Discrepancies(Projection):
    name = "discrepancies"
    # 2: every row version kept (recorded_from, recorded_to).
    # 3: the versions written with the rows, at the end of each batch (no triggers).
    version = 3
    # No deadline or number depends on what the statement says, or on a transfer.
    ignored = ("Device.Changed", "Device.Corrected", "Device.LegacyNumberMapped", "Device.TransferReceived")
    tables = ("rm_discrepancies", "rm_discrepancy_devices")
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {"rm_discrepancies": ("id",)}
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_discrepancies ("
        "id TEXT PRIMARY KEY, kind TEXT NOT NULL, mid_id TEXT NOT NULL, subject_id TEXT NOT NULL, "
        "institution TEXT NOT NULL, field TEXT, since TEXT NOT NULL, until TEXT, due_on TEXT NOT NULL, "
        "detail TEXT NOT NULL, recorded_at TEXT NOT NULL, source TEXT, command_id TEXT, resolved_at TEXT, "
        "resolved_source TEXT, resolved_command_id TEXT, resolved_by_event TEXT)",
        "CREATE INDEX IF NOT EXISTS rm_discrepancies_due ON rm_discrepancies (due_on, id)",
        "CREATE INDEX IF NOT EXISTS rm_discrepancies_institution ON rm_discrepancies (institution, due_on)",
        "CREATE INDEX IF NOT EXISTS rm_discrepancies_kind ON rm_discrepancies (kind, due_on)",
        "CREATE INDEX IF NOT EXISTS rm_discrepancies_mid_id ON rm_discrepancies (mid_id)",
        "CREATE INDEX IF NOT EXISTS rm_discrepancies_subject ON rm_discrepancies (subject_id, kind)",
        # The dates each device's derived discrepancies are computed from.
        "CREATE TABLE IF NOT EXISTS rm_discrepancy_devices ("
        "device_id TEXT PRIMARY KEY, mid_id TEXT NOT NULL, institution TEXT NOT NULL, "
        "modality TEXT NOT NULL, "
        "reported_on TEXT, linked INTEGER NOT NULL, decommissioned_on TEXT, supplier TEXT, "
        "holdings TEXT NOT NULL, licences TEXT NOT NULL)",
    )

    write_behind = True

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {
            MidIdRecord.Issued: self.mid_id_issued,
            MidIdRecord.Linked: self.mid_id_done,
            MidIdRecord.Cancelled: self.mid_id_done,
            Device.Opened: self.opened,
            Device.Reported: self.reported,
            Device.Backfilled: self.reported,
            Device.Linked: self.linked,
            Device.Decommissioned: self.decommissioned,
            Device.InstallationRecorded: self.installation_recorded,
            Device.LicenceRecorded: self.licence_recorded,
            Device.BillingNumberAssigned: self.billing_number_assigned,
            Device.BillingNumberWithdrawn: self.billing_number_withdrawn,
            Device.DiscrepancyRecorded: self.discrepancy_recorded,
            Device.DiscrepancyResolved: self.discrepancy_resolved,
        }

    def prefetch(self, tx: Batch, events: Sequence[Any]) -> None:
        devices = tx.rows("rm_discrepancy_devices")
        device_ids = {str(e.originator_id) for e in events if type(e) in DEVICE_EVENTS}
        devices.load("device_id", device_ids)
        # A row's id names its MID-ID: the rows of a MID-ID say which of its ids exist.
        mid_ids = {e.mid_id for e in events if type(e) is Device.Opened}
        mid_ids.update(
            e.mid_id
            for e in events
            if type(e) is MidIdRecord.Issued and getattr(e, "legacy_ref", None) is None
        )
        for device_id in device_ids:
            state = devices.get(device_id)
            if state is not None:
                mid_ids.add(state["mid_id"])
        found = tx.rows("rm_discrepancies")
        found.load("mid_id", mid_ids)
        found.load("subject_id", [str(e.originator_id) for e in events if type(e) in MID_ID_DONE])

    # MID-IDs left unused

    @staticmethod
    def mid_id_issued(tx: Batch, e: MidIdRecord.Issued) -> None:
        if getattr(e, "legacy_ref", None) is not None:
            return  # a backfilled MID-ID is linked in the same breath
        issued_on = e.timestamp.date()
        due_on = unused_overdue_on(issued_on)
        detail = {
            "issued_on": issued_on.isoformat(),
            "modality": e.modality,
            "months_allowed": MONTHS_UNLINKED,
        }
        _insert(
            tx,
            e,
            f"midid_unlinked:{e.mid_id}",
            "midid_unlinked",
            e.mid_id,
            str(e.originator_id),
            e.institution,
            None,
            issued_on.isoformat(),
            None,
            due_on.isoformat(),
            detail,
        )

    @staticmethod
    def mid_id_done(tx: Batch, e: MidIdRecord.Linked | MidIdRecord.Cancelled) -> None:
        for row in tx.rows("rm_discrepancies").where("subject_id", str(e.originator_id)):
            if row["kind"] == "midid_unlinked" and row["resolved_at"] is None:
                _resolve(tx, e, row)

    # a device's dates

    @staticmethod
    def opened(tx: Batch, e: device_events.Opened) -> None:
        tx.rows("rm_discrepancy_devices").insert(
            {
                "device_id": str(e.originator_id),
                "mid_id": e.mid_id,
                "institution": e.institution,
                "modality": e.modality,
                "reported_on": None,
                "linked": 0,
                "decommissioned_on": None,
                "supplier": None,
                "holdings": "[]",
                "licences": "{}",
            }
        )

    def reported(self, tx: Batch, e: device_events.Reported | device_events.Backfilled) -> None:
        self._change(tx, e, lambda s: {"reported_on": s["reported_on"] or e.timestamp.date().isoformat()})

    def linked(self, tx: Batch, e: device_events.Linked) -> None:
        self._change(tx, e, lambda s: {"linked": 1})

    def decommissioned(self, tx: Batch, e: device_events.Decommissioned) -> None:
        self._change(tx, e, lambda s: {"decommissioned_on": e.effective_on.isoformat()})

    def installation_recorded(self, tx: Batch, e: device_events.InstallationRecorded) -> None:
        supplier = {"installed_on": e.installed_on.isoformat(), "source": e.source}
        self._change(tx, e, lambda s: {"supplier": json.dumps(supplier, sort_keys=True)})

    def licence_recorded(self, tx: Batch, e: device_events.LicenceRecorded) -> None:
        def change(state: dict[str, Any]) -> dict[str, Any]:
            licences = json.loads(state["licences"])
            licences[e.licence_ref] = [
                e.valid_from.isoformat(),
                None if e.valid_until is None else e.valid_until.isoformat(),
            ]
            return {"licences": json.dumps(licences, sort_keys=True)}

        state = self._change(tx, e, change)
        if (
            state is not None
            and e.legacy_number is not None
            and e.timestamp.date() >= LEGACY_NUMBERS_ACCEPTED_UNTIL
        ):
            recorded_on = e.timestamp.date().isoformat()
            detail = {
                "legacy_number": e.legacy_number,
                "licence_ref": e.licence_ref,
                "legacy_numbers_accepted_until": LEGACY_NUMBERS_ACCEPTED_UNTIL.isoformat(),
            }
            _insert(
                tx,
                e,
                f"legacy_number_after_transition:{state['mid_id']}:{e.licence_ref}",
                "legacy_number_after_transition",
                state["mid_id"],
                state["device_id"],
                state["institution"],
                "licence",
                recorded_on,
                None,
                recorded_on,
                detail,
            )

    def billing_number_assigned(self, tx: Batch, e: device_events.BillingNumberAssigned) -> None:
        def change(state: dict[str, Any]) -> dict[str, Any]:
            holdings = [
                *json.loads(state["holdings"]),
                [e.billing_number, e.timestamp.date().isoformat(), None],
            ]
            return {"holdings": json.dumps(holdings)}

        self._change(tx, e, change)

    def billing_number_withdrawn(self, tx: Batch, e: device_events.BillingNumberWithdrawn) -> None:
        def change(state: dict[str, Any]) -> dict[str, Any]:
            holdings = json.loads(state["holdings"])
            for holding in holdings:
                if holding[0] == e.billing_number and holding[2] is None:
                    # When the register stopped showing it: that is what claims were checked against.
                    holding[2] = e.timestamp.date().isoformat()
            return {"holdings": json.dumps(holdings)}

        self._change(tx, e, change)

    @staticmethod
    def _change(
        tx: Batch, e: Any, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Updates a device's dates and brings its derived discrepancies in line with them."""
        device_id = str(e.originator_id)
        devices = tx.rows("rm_discrepancy_devices")
        state = devices.get(device_id)
        if state is None:
            return None
        state.update(change(state))
        devices.put(state)
        wanted = derive(state)
        found = tx.rows("rm_discrepancies")
        present = {
            row["id"]: row
            for row in found.where("mid_id", state["mid_id"])
            if row["subject_id"] == device_id and row["kind"] in DERIVED
        }
        for key, row in wanted.items():
            before = present.get(key)
            if before is None:
                _insert(
                    tx,
                    e,
                    key,
                    row["kind"],
                    state["mid_id"],
                    device_id,
                    state["institution"],
                    row["field"],
                    row["since"],
                    row["until"],
                    row["due_on"],
                    None,
                    detail_text=row["detail"],
                )
            elif before["resolved_at"] is not None or any(
                before[k] != row[k] for k in ("until", "due_on", "detail")
            ):
                found.update(
                    (key,),
                    until=row["until"],
                    due_on=row["due_on"],
                    detail=row["detail"],
                    resolved_at=None,
                    resolved_source=None,
                    resolved_command_id=None,
                    resolved_by_event=None,
                )
        for key, before in present.items():
            if key not in wanted and before["resolved_at"] is None:
                _resolve(tx, e, before, derived=True)
        return state

    # the supplier's and the hospital's statements

    @staticmethod
    def discrepancy_recorded(tx: Batch, e: device_events.DiscrepancyRecorded) -> None:
        state = tx.rows("rm_discrepancy_devices").get(str(e.originator_id))
        if state is None:
            return
        key = f"statement_mismatch:{state['mid_id']}:{e.field}"
        detail = json.dumps(
            {
                "reported_value": e.reported_value,
                "reported_source": e.reported_source,
                "supplier_value": e.supplier_value,
                "supplier_source": e.supplier_source,
            },
            sort_keys=True,
        )
        found = tx.rows("rm_discrepancies")
        before = _existing(tx, state["mid_id"], key)
        if before is not None and before["resolved_at"] is None:
            # Still the same disagreement, now about other values: it has been open since it began.
            found.update((key,), detail=detail)
            return
        if before is not None:
            found.delete(key)
        day = e.timestamp.date().isoformat()
        _insert(
            tx,
            e,
            key,
            "statement_mismatch",
            state["mid_id"],
            str(e.originator_id),
            state["institution"],
            e.field,
            day,
            None,
            day,
            None,
            detail_text=detail,
        )

    @staticmethod
    def discrepancy_resolved(tx: Batch, e: device_events.DiscrepancyResolved) -> None:
        state = tx.rows("rm_discrepancy_devices").get(str(e.originator_id))
        if state is None:
            return
        key = f"statement_mismatch:{state['mid_id']}:{e.field}"
        row = _existing(tx, state["mid_id"], key)
        if row is not None and row["resolved_at"] is None:
            detail = {**json.loads(row["detail"]), "resolved_value": e.value}
            tx.rows("rm_discrepancies").update((key,), detail=json.dumps(detail, sort_keys=True))
            _resolve(tx, e, row)


DEVICE_EVENTS = frozenset(
    {
        Device.Opened,
        Device.Reported,
        Device.Backfilled,
        Device.Linked,
        Device.Decommissioned,
        Device.InstallationRecorded,
        Device.LicenceRecorded,
        Device.BillingNumberAssigned,
        Device.BillingNumberWithdrawn,
        Device.DiscrepancyRecorded,
        Device.DiscrepancyResolved,
    }
)
"""The device events whose handlers read the device's dates."""
MID_ID_DONE = frozenset({MidIdRecord.Linked, MidIdRecord.Cancelled})


def _existing(tx: Batch, mid_id: str, key: str) -> Row | None:
    """The row with this id, found among its MID-ID's rows (every id names its MID-ID), which a
    batch reads beforehand: an id not there is known absent without asking the database."""
    for row in tx.rows("rm_discrepancies").where("mid_id", mid_id):
        if row["id"] == key:
            return row
    return None


def _insert(
    tx: Batch,
    e: Any,
    key: str,
    kind: str,
    mid_id: str,
    subject_id: str,
    institution: str,
    field: str | None,
    since: str,
    until: str | None,
    due_on: str,
    detail: dict[str, Any] | None,
    detail_text: str | None = None,
) -> None:
    if _existing(tx, mid_id, key) is not None:
        return
    text = detail_text if detail_text is not None else json.dumps(detail, sort_keys=True)
    tx.rows("rm_discrepancies").put(
        {
            "id": key,
            "kind": kind,
            "mid_id": mid_id,
            "subject_id": subject_id,
            "institution": institution,
            "field": field,
            "since": since,
            "until": until,
            "due_on": due_on,
            "detail": text,
            "recorded_at": e.timestamp.isoformat(),
            "source": getattr(e, "source", None),
            "command_id": getattr(e, "command_id", None),
            "resolved_at": None,
            "resolved_source": None,
            "resolved_command_id": None,
            "resolved_by_event": None,
        }
    )


def _resolve(tx: Batch, e: Any, row: dict[str, Any], derived: bool = False) -> None:
    """Marks a row resolved by this event, or deletes it when it never came to be.

    A derived row that ends the day it began held for no whole day: one command's events
    (decommissioning, then the billing number's withdrawal) pass through it on the way.
    """
    day = e.timestamp.date().isoformat()
    found = tx.rows("rm_discrepancies")
    if day < row["due_on"] or (derived and day <= row["since"]):
        found.delete(row["id"])
        return
    found.update(
        (row["id"],),
        resolved_at=e.timestamp.isoformat(),
        resolved_source=getattr(e, "source", None),
        resolved_command_id=getattr(e, "command_id", None),
        resolved_by_event=type(e).__qualname__,
    )


# reading


def _state(row: dict[str, Any], today: str) -> str:
    if row["due_on"] > today:
        return "pending"
    if row["resolved_at"] is not None or (row["until"] is not None and row["until"] < today):
        return "resolved"
    return "open"


def list_discrepancies(
    tx: Transaction,
    today: date,
    state: str = "open",
    institution: str | None = None,
    kind: str | None = None,
    mid_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Discrepancies as they stand on `today`: open, resolved (or past), pending (not yet due) or all due."""
    day = today.isoformat()
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("institution", institution), ("kind", kind), ("mid_id", mid_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if state == "pending":
        clauses.append("due_on > ? AND resolved_at IS NULL")
        params.append(day)
    else:
        clauses.append("due_on <= ?")
        params.append(day)
    if state == "open":
        clauses.append("resolved_at IS NULL AND (until IS NULL OR until >= ?)")
        params.append(day)
    elif state == "resolved":
        clauses.append("(resolved_at IS NOT NULL OR until < ?)")
        params.append(day)
    rows = tx.execute(
        f"SELECT {', '.join(COLUMNS)} FROM rm_discrepancies WHERE {' AND '.join(clauses)} "
        "ORDER BY due_on, id LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).all()
    items = []
    for row in rows:
        resolved_by = None
        if row["resolved_at"] is not None:
            resolved_by = {
                "at": row["resolved_at"],
                "source": row["resolved_source"],
                "command_id": row["resolved_command_id"],
                "event": row["resolved_by_event"],
            }
        items.append(
            {
                "id": row["id"],
                "kind": row["kind"],
                "mid_id": row["mid_id"],
                "institution": row["institution"],
                "field": row["field"],
                "state": _state(row, day),
                "since": row["since"],
                "until": row["until"],
                "due_on": row["due_on"],
                "detail": json.loads(row["detail"]),
                "recorded_at": row["recorded_at"],
                "source": row["source"],
                "command_id": row["command_id"],
                "resolved": resolved_by,
            }
        )
    return items
