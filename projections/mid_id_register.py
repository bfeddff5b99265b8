"""Which MID-IDs does each hospital hold, for which modality, and which are still free."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.mid_id import MidIdRecord
from projections.projector import Handler, Projection
from projections.store import Transaction

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
    version = 3
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

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {
            MidIdRecord.Issued: self.issued,
            MidIdRecord.Cancelled: self.cancelled,
            MidIdRecord.Linked: self.linked,
        }

    @staticmethod
    def issued(tx: Transaction, e: MidIdRecord.Issued) -> None:
        at = e.timestamp.isoformat()
        tx.execute(
            "INSERT INTO rm_mid_ids (mid_id, aggregate_id, sequence, institution, modality, status, note, "
            "legacy_ref, issued_by, command_id, issued_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'issued', ?, ?, ?, ?, ?, ?) ON CONFLICT (mid_id) DO NOTHING",
            (
                e.mid_id,
                str(e.originator_id),
                e.sequence,
                e.institution,
                e.modality,
                e.note,
                getattr(e, "legacy_ref", None),
                e.source,
                e.command_id,
                at,
                at,
            ),
        )

    @staticmethod
    def cancelled(tx: Transaction, e: MidIdRecord.Cancelled) -> None:
        tx.execute(
            "UPDATE rm_mid_ids SET status = 'cancelled', cancel_reason = ?, updated_at = ? "
            "WHERE aggregate_id = ?",
            (e.reason, e.timestamp.isoformat(), str(e.originator_id)),
        )

    @staticmethod
    def linked(tx: Transaction, e: MidIdRecord.Linked) -> None:
        tx.execute(
            "UPDATE rm_mid_ids SET status = 'linked', device_id = ?, updated_at = ? WHERE aggregate_id = ?",
            (str(e.device_id), e.timestamp.isoformat(), str(e.originator_id)),
        )


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
