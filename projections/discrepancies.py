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
from projections.store import Transaction

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
    version = 2
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

    # MID-IDs left unused

    @staticmethod
    def mid_id_issued(tx: Transaction, e: MidIdRecord.Issued) -> None:
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
    def mid_id_done(tx: Transaction, e: MidIdRecord.Linked | MidIdRecord.Cancelled) -> None:
        for row in tx.execute(
            "SELECT id, due_on FROM rm_discrepancies WHERE subject_id = ? AND kind = ? "
            "AND resolved_at IS NULL",
            (str(e.originator_id), "midid_unlinked"),
        ).all():
            _resolve(tx, e, row)

    # a device's dates

    @staticmethod
    def opened(tx: Transaction, e: device_events.Opened) -> None:
        tx.execute(
            "INSERT INTO rm_discrepancy_devices (device_id, mid_id, institution, modality, linked, holdings, "
            "licences) VALUES (?, ?, ?, ?, 0, '[]', '{}') ON CONFLICT (device_id) DO NOTHING",
            (str(e.originator_id), e.mid_id, e.institution, e.modality),
        )

    def reported(self, tx: Transaction, e: device_events.Reported | device_events.Backfilled) -> None:
        self._change(tx, e, lambda s: {"reported_on": s["reported_on"] or e.timestamp.date().isoformat()})

    def linked(self, tx: Transaction, e: device_events.Linked) -> None:
        self._change(tx, e, lambda s: {"linked": 1})

    def decommissioned(self, tx: Transaction, e: device_events.Decommissioned) -> None:
        self._change(tx, e, lambda s: {"decommissioned_on": e.effective_on.isoformat()})

    def installation_recorded(self, tx: Transaction, e: device_events.InstallationRecorded) -> None:
        supplier = {"installed_on": e.installed_on.isoformat(), "source": e.source}
        self._change(tx, e, lambda s: {"supplier": json.dumps(supplier, sort_keys=True)})

    def licence_recorded(self, tx: Transaction, e: device_events.LicenceRecorded) -> None:
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

    def billing_number_assigned(self, tx: Transaction, e: device_events.BillingNumberAssigned) -> None:
        def change(state: dict[str, Any]) -> dict[str, Any]:
            holdings = [
                *json.loads(state["holdings"]),
                [e.billing_number, e.timestamp.date().isoformat(), None],
            ]
            return {"holdings": json.dumps(holdings)}

        self._change(tx, e, change)

    def billing_number_withdrawn(self, tx: Transaction, e: device_events.BillingNumberWithdrawn) -> None:
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
        tx: Transaction, e: Any, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Updates a device's dates and brings its derived discrepancies in line with them."""
        device_id = str(e.originator_id)
        state = tx.execute("SELECT * FROM rm_discrepancy_devices WHERE device_id = ?", (device_id,)).one()
        if state is None:
            return None
        values = change(state)
        state.update(values)
        assignments = ", ".join(f"{column} = ?" for column in values)
        tx.execute(
            f"UPDATE rm_discrepancy_devices SET {assignments} WHERE device_id = ?",
            (*values.values(), device_id),
        )
        wanted = derive(state)
        marks = ", ".join("?" for _ in DERIVED)
        present = {
            row["id"]: row
            for row in tx.execute(
                f"SELECT id, since, until, due_on, detail, resolved_at FROM rm_discrepancies "
                f"WHERE subject_id = ? AND kind IN ({marks})",
                (device_id, *DERIVED),
            ).all()
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
                tx.execute(
                    "UPDATE rm_discrepancies SET until = ?, due_on = ?, detail = ?, resolved_at = NULL, "
                    "resolved_source = NULL, resolved_command_id = NULL, resolved_by_event = NULL "
                    "WHERE id = ?",
                    (row["until"], row["due_on"], row["detail"], key),
                )
        for key, before in present.items():
            if key not in wanted and before["resolved_at"] is None:
                _resolve(tx, e, before, derived=True)
        return state

    # the supplier's and the hospital's statements

    @staticmethod
    def discrepancy_recorded(tx: Transaction, e: device_events.DiscrepancyRecorded) -> None:
        state = tx.execute(
            "SELECT mid_id, institution FROM rm_discrepancy_devices WHERE device_id = ?",
            (str(e.originator_id),),
        ).one()
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
        before = tx.execute("SELECT resolved_at FROM rm_discrepancies WHERE id = ?", (key,)).one()
        if before is not None and before["resolved_at"] is None:
            # Still the same disagreement, now about other values: it has been open since it began.
            tx.execute("UPDATE rm_discrepancies SET detail = ? WHERE id = ?", (detail, key))
            return
        tx.execute("DELETE FROM rm_discrepancies WHERE id = ?", (key,))
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
    def discrepancy_resolved(tx: Transaction, e: device_events.DiscrepancyResolved) -> None:
        state = tx.execute(
            "SELECT mid_id FROM rm_discrepancy_devices WHERE device_id = ?", (str(e.originator_id),)
        ).one()
        if state is None:
            return
        key = f"statement_mismatch:{state['mid_id']}:{e.field}"
        row = tx.execute(
            "SELECT id, due_on, detail FROM rm_discrepancies WHERE id = ? AND resolved_at IS NULL", (key,)
        ).one()
        if row is not None:
            detail = {**json.loads(row["detail"]), "resolved_value": e.value}
            tx.execute(
                "UPDATE rm_discrepancies SET detail = ? WHERE id = ?",
                (json.dumps(detail, sort_keys=True), key),
            )
            _resolve(tx, e, row)


def _insert(
    tx: Transaction,
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
    text = detail_text if detail_text is not None else json.dumps(detail, sort_keys=True)
    tx.execute(
        "INSERT INTO rm_discrepancies (id, kind, mid_id, subject_id, institution, field, since, until, "
        "due_on, detail, recorded_at, source, command_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (
            key,
            kind,
            mid_id,
            subject_id,
            institution,
            field,
            since,
            until,
            due_on,
            text,
            e.timestamp.isoformat(),
            getattr(e, "source", None),
            getattr(e, "command_id", None),
        ),
    )


def _resolve(tx: Transaction, e: Any, row: dict[str, Any], derived: bool = False) -> None:
    """Marks a row resolved by this event, or deletes it when it never came to be.

    A derived row that ends the day it began held for no whole day: one command's events
    (decommissioning, then the billing number's withdrawal) pass through it on the way.
    """
    day = e.timestamp.date().isoformat()
    if day < row["due_on"] or (derived and day <= row["since"]):
        tx.execute("DELETE FROM rm_discrepancies WHERE id = ?", (row["id"],))
        return
    tx.execute(
        "UPDATE rm_discrepancies SET resolved_at = ?, resolved_source = ?, resolved_command_id = ?, "
        "resolved_by_event = ? WHERE id = ?",
        (
            e.timestamp.isoformat(),
            getattr(e, "source", None),
            getattr(e, "command_id", None),
            type(e).__qualname__,
            row["id"],
        ),
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
