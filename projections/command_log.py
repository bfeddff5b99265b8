"""Every command received, accepted or rejected, so an operator can see what came in and why it failed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.command_record import CommandRecord
from projections.projector import Handler, Projection
from projections.store import Transaction
from projections.writes import Batch


class CommandLog(Projection):
    name = "command_log"
    # 2: every row version kept (recorded_from, recorded_to).
    # 3: the versions written with the rows at the end of each batch (no triggers).
    version = 3
    tables = ("rm_commands",)
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {"rm_commands": ("record_id",)}
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_commands ("
        "record_id TEXT PRIMARY KEY, sender TEXT NOT NULL, command_id TEXT NOT NULL, type TEXT, "
        "status TEXT NOT NULL, channel TEXT NOT NULL, subject TEXT NOT NULL, stream_sequence BIGINT, "
        "received_at TEXT NOT NULL, recorded_at TEXT NOT NULL, errors TEXT NOT NULL, result TEXT)",
        "CREATE INDEX IF NOT EXISTS rm_commands_command_id ON rm_commands (command_id)",
        "CREATE INDEX IF NOT EXISTS rm_commands_sender ON rm_commands (sender, status)",
    )

    write_behind = True

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {CommandRecord.Handled: self.handled}

    def prefetch(self, tx: Batch, events: Sequence[Any]) -> None:
        handled = [str(e.originator_id) for e in events if type(e) is CommandRecord.Handled]
        tx.rows("rm_commands").load("record_id", handled)

    @staticmethod
    def handled(tx: Batch, e: CommandRecord.Handled) -> None:
        tx.rows("rm_commands").insert(
            {
                "record_id": str(e.originator_id),
                "sender": e.sender,
                "command_id": e.command_id,
                "type": e.command_type,
                "status": e.outcome["status"],
                "channel": e.channel,
                "subject": e.subject,
                "stream_sequence": e.stream_sequence,
                "received_at": e.received_at,
                "recorded_at": e.timestamp.isoformat(),
                "errors": json.dumps(e.outcome.get("errors") or []),
                "result": json.dumps(e.outcome.get("result")),
            }
        )


def list_commands(
    tx: Transaction,
    sender: str | None = None,
    status: str | None = None,
    command_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    clauses, params = [], []
    for column, value in (("sender", sender), ("status", status), ("command_id", command_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = tx.execute(
        "SELECT record_id, sender, command_id, type, status, channel, subject, stream_sequence, "
        f"received_at, recorded_at, errors, result FROM rm_commands{where} "
        "ORDER BY recorded_at, record_id LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).all()
    for row in rows:
        row["errors"] = json.loads(row["errors"])
        row["result"] = json.loads(row["result"]) if row["result"] else None
    return rows
