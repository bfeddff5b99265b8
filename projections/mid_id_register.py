"""Which MID-IDs does each hospital hold, for which modality, and which are still free."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.mid_id import MidIdRecord
from projections.projector import Handler, Projection
from projections.store import Transaction
from projections.writes import Batch

COLUMNS = (
    "mid_id",
    "sequence",
    "institution",
    "modality",
    "status",
    "device_id",
    "note",
    "cancel_reason",
    "legacy_ref",
    "issued_by",
    "command_id",
    "issued_at",
    "updated_at",
)


class MidIdRegister(Projection):
    name = "mid_id_register"
    # 2: who issued it (the FOD for a backfill), under which command, and the legacy reference.
    # 3: every row version kept (recorded_from, recorded_to).
    # 4: the versions written with the rows, at the end of each batch (no triggers).
    version = 4
    tables = ("rm_mid_ids",)
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {"rm_mid_ids": ("mid_id",)}
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_mid_ids ("
        "mid_id TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL UNIQUE, sequence BIGINT NOT NULL, "
        "institution TEXT NOT NULL, "
        "modality TEXT NOT NULL, status TEXT NOT NULL, device_id TEXT, note TEXT, cancel_reason TEXT, "
        "legacy_ref TEXT, issued_by TEXT NOT NULL, command_id TEXT NOT NULL, "
        "issued_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_mid_ids_institution ON rm_mid_ids (institution, modality, status)",
        "CREATE INDEX IF NOT EXISTS rm_mid_ids_sequence ON rm_mid_ids (sequence)",
        # A hospital's own MID-IDs, in the order they were issued, without sorting them all.
        "CREATE INDEX IF NOT EXISTS rm_mid_ids_institution_sequence ON rm_mid_ids (institution, sequence)",
    )

    write_behind = True

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {
            MidIdRecord.Issued: self.issued,
            MidIdRecord.Cancelled: self.cancelled,
            MidIdRecord.Linked: self.linked,
        }

    def prefetch(self, tx: Batch, events: Sequence[Any]) -> None:
        rows = tx.rows("rm_mid_ids")
        rows.load("mid_id", [e.mid_id for e in events if type(e) is MidIdRecord.Issued])
        rows.load("aggregate_id", [str(e.originator_id) for e in events if type(e) in CHANGES])

    @staticmethod
    def issued(tx: Batch, e: MidIdRecord.Issued) -> None:
        at = e.timestamp.isoformat()
        tx.rows("rm_mid_ids").insert(
            {
                "mid_id": e.mid_id,
                "aggregate_id": str(e.originator_id),
                "sequence": e.sequence,
                "institution": e.institution,
                "modality": e.modality,
                "status": "issued",
                "device_id": None,
                "note": e.note,
                "cancel_reason": None,
                "legacy_ref": getattr(e, "legacy_ref", None),
                "issued_by": e.source,
                "command_id": e.command_id,
                "issued_at": at,
                "updated_at": at,
            }
        )

    @staticmethod
    def cancelled(tx: Batch, e: MidIdRecord.Cancelled) -> None:
        _change(tx, e, status="cancelled", cancel_reason=e.reason)

    @staticmethod
    def linked(tx: Batch, e: MidIdRecord.Linked) -> None:
        _change(tx, e, status="linked", device_id=str(e.device_id))


CHANGES = (MidIdRecord.Cancelled, MidIdRecord.Linked)


def _change(tx: Batch, e: MidIdRecord.Cancelled | MidIdRecord.Linked, **values: Any) -> None:
    rows = tx.rows("rm_mid_ids")
    row = rows.find("aggregate_id", str(e.originator_id))
    if row is not None:
        rows.update((row["mid_id"],), **values, updated_at=e.timestamp.isoformat())


def list_mid_ids(
    tx: Transaction,
    institution: str | None = None,
    modality: str | None = None,
    status: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    clauses, params = [], []
    for column, value in (("institution", institution), ("modality", modality), ("status", status)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = tx.execute(
        f"SELECT {', '.join(COLUMNS)} FROM rm_mid_ids{where} ORDER BY sequence LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).all()
    return rows


def holder_of(tx: Transaction, mid_id: str) -> str | None:
    """The institution a MID-ID was issued to; None when it was never issued."""
    found = tx.execute("SELECT institution FROM rm_mid_ids WHERE mid_id = ?", (mid_id,)).scalar()
    return None if found is None else str(found)
