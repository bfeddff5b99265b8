"""Who may do what, for whom, since when, granted by whom: every role granted, in force or revoked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.access import Access
from projections.projector import Handler, Projection
from projections.store import Transaction

STATES = ("current", "revoked", "all")


class AccessGrants(Projection):
    name = "access"
    version = 1
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

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {Access.Created: self.created, Access.Granted: self.granted, Access.Revoked: self.revoked}

    @staticmethod
    def created(tx: Transaction, e: Access.Created) -> None:
        tx.execute(
            "INSERT INTO rm_access_people (aggregate_id, person, party) VALUES (?, ?, ?) "
            "ON CONFLICT (aggregate_id) DO NOTHING",
            (str(e.originator_id), e.person, e.party),
        )

    @staticmethod
    def granted(tx: Transaction, e: Access.Granted) -> None:
        person, party = _who(tx, e)
        until = e.until.isoformat() if e.until is not None else None
        tx.execute(
            "INSERT INTO rm_access (person, party, role, name, since, until, granted_by, command_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (person, party, role) DO UPDATE SET "
            "name = excluded.name, since = excluded.since, until = excluded.until, "
            "granted_by = excluded.granted_by, command_id = excluded.command_id, "
            "revoked_at = NULL, revoked_by = NULL, reason = NULL",
            (person, party, e.role, e.name, e.timestamp.isoformat(), until, e.granted_by, e.command_id),
        )

    @staticmethod
    def revoked(tx: Transaction, e: Access.Revoked) -> None:
        person, party = _who(tx, e)
        tx.execute(
            "UPDATE rm_access SET revoked_at = ?, revoked_by = ?, reason = ? "
            "WHERE person = ? AND party = ? AND role = ?",
            (e.timestamp.isoformat(), e.revoked_by, e.reason, person, party, e.role),
        )


def _who(tx: Transaction, e: Any) -> tuple[str, str]:
    found = tx.execute(
        "SELECT person, party FROM rm_access_people WHERE aggregate_id = ?", (str(e.originator_id),)
    ).one()
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
