"""Who may do what, for whom, since when, granted by whom: every role granted, in force or revoked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.access import Access
from projections.projector import Handler, Projection
from projections.store import Transaction
from projections.writes import Batch

STATES = ("current", "revoked", "all")


class AccessGrants(Projection):
    name = "access"
    # 2: the versions written with the rows at the end of each batch (no triggers).
    version = 2
    tables = ("rm_access", "rm_access_people")
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {"rm_access": ("person", "party", "role")}
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_access ("
        "person TEXT NOT NULL, party TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL, "
        "since TEXT NOT NULL, until TEXT, granted_by TEXT NOT NULL, command_id TEXT NOT NULL, "
        "revoked_at TEXT, revoked_by TEXT, reason TEXT, PRIMARY KEY (person, party, role))",
        "CREATE INDEX IF NOT EXISTS rm_access_party ON rm_access (party, role)",
        # Grants and revokes name the role; their aggregate's creation names the person and party.
        "CREATE TABLE IF NOT EXISTS rm_access_people ("
        "aggregate_id TEXT PRIMARY KEY, person TEXT NOT NULL, party TEXT NOT NULL)",
    )

    write_behind = True

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {Access.Created: self.created, Access.Granted: self.granted, Access.Revoked: self.revoked}

    @staticmethod
    def created(tx: Batch, e: Access.Created) -> None:
        tx.rows("rm_access_people").insert(
            {"aggregate_id": str(e.originator_id), "person": e.person, "party": e.party}
        )

    @staticmethod
    def granted(tx: Batch, e: Access.Granted) -> None:
        person, party = _who(tx, e)
        tx.rows("rm_access").put(
            {
                "person": person,
                "party": party,
                "role": e.role,
                "name": e.name,
                "since": e.timestamp.isoformat(),
                "until": e.until.isoformat() if e.until is not None else None,
                "granted_by": e.granted_by,
                "command_id": e.command_id,
                "revoked_at": None,
                "revoked_by": None,
                "reason": None,
            }
        )

    @staticmethod
    def revoked(tx: Batch, e: Access.Revoked) -> None:
        person, party = _who(tx, e)
        tx.rows("rm_access").update(
            (person, party, e.role),
            revoked_at=e.timestamp.isoformat(),
            revoked_by=e.revoked_by,
            reason=e.reason,
        )


def _who(tx: Batch, e: Any) -> tuple[str, str]:
    found = tx.rows("rm_access_people").get(str(e.originator_id))
    assert found is not None, "an access grant before its aggregate was created"
    return str(found["person"]), str(found["party"])


def list_access(
    tx: Transaction,
    person: str | None,
    party: str | None,
    role: str | None,
    state: str,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    clauses, params = [], []
    for column, value in (("person", person), ("party", party), ("role", role)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if state == "current":
        clauses.append("revoked_at IS NULL")
    elif state == "revoked":
        clauses.append("revoked_at IS NOT NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return tx.execute(
        "SELECT person, name, party, role, since, until, granted_by, command_id, revoked_at, revoked_by, "
        f"reason FROM rm_access{where} ORDER BY party, person, role LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).all()
