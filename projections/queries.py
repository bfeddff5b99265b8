"""The contract's queries, one implementation behind NATS, HTTP and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.command_record import command_record_id
from domain.errors import ErrorDetail
from projections import command_log, mid_id_register
from projections.projector import Projector
from projections.store import ReadModelStore

MAX_PAGE = 1000


class QueryError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(code, message, field)

    def as_reply(self) -> dict[str, Any]:
        return {"errors": [self.detail.as_dict()]}


@dataclass(frozen=True)
class QuerySpec:
    name: str
    summary: str
    filters: dict[str, str]
    run: Callable[[Queries, dict[str, Any]], Any]
    hospital_scoped: bool = True


def _page(filters: dict[str, Any]) -> tuple[int, int]:
    try:
        limit = int(filters.get("limit", 100))
        offset = int(filters.get("offset", 0))
    except (TypeError, ValueError):
        raise QueryError("schema", "limit and offset are whole numbers", "limit") from None
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise QueryError("schema", f"limit is 1..{MAX_PAGE} and offset is 0 or more", "limit")
    return limit, offset


class Queries:
    """Answers queries from read models (after they caught up with the store) or the store itself."""

    def __init__(self, register: Any, store: ReadModelStore, projector: Projector | None = None,
                 freshness_timeout: float = 2.0, extra: Sequence[QuerySpec] = ()) -> None:
        """`extra`: queries answered by outer layers (the wiring adds the allocation rounds')."""
        self.register = register
        self.store = store
        self.projector = projector
        self.freshness_timeout = freshness_timeout
        self.specs: dict[str, QuerySpec] = {spec.name: spec for spec in (*QUERIES, *extra)}

    def run(self, name: str, filters: dict[str, Any] | None, institution: str | None = None) -> Any:
        """`institution` set means a hospital asks: it sees only its own data."""
        spec = self.specs.get(name)
        if spec is None:
            raise QueryError("unknown_type", f"no query named {name!r} (known: {', '.join(sorted(self.specs))})")
        filters = dict(filters or {})
        if not isinstance(filters, dict):
            raise QueryError("schema", "a query's body is a JSON object of filters")
        unknown = set(filters) - set(spec.filters) - {"limit", "offset", "as_of"}
        if unknown:
            raise QueryError("schema", f"unknown filter(s) for {name}: {', '.join(sorted(unknown))}", sorted(unknown)[0])
        if institution is not None:
            if not spec.hospital_scoped:
                raise QueryError("forbidden", f"{name} is for operators, not for a hospital")
            asked = filters.get("institution")
            if asked is not None and asked != institution:
                raise QueryError("forbidden", f"hospital {institution} may only query its own data", "institution")
            filters["institution"] = institution
        self.catch_up()
        return spec.run(self, filters)

    def catch_up(self) -> None:
        if self.projector is not None:
            self.projector.wait_until(self.register.position(), timeout=self.freshness_timeout)

    # the queries

    def midids(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        with self.store.reading() as tx:
            items = mid_id_register.list_mid_ids(
                tx, filters.get("institution"), filters.get("modality"), filters.get("status"), limit, offset
            )
        for item in items:
            item.pop("aggregate_id", None)
        return {"items": items, "limit": limit, "offset": offset}

    def commands(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        sender = filters.get("source")
        if filters.get("institution"):
            sender = f"hospital/{filters['institution']}"
        with self.store.reading() as tx:
            items = command_log.list_commands(tx, sender, filters.get("status"), filters.get("command_id"),
                                              limit, offset)
        return {"items": items, "limit": limit, "offset": offset}

    def outcome(self, filters: dict[str, Any]) -> dict[str, Any]:
        command_id = filters.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            raise QueryError("schema", "outcome needs {\"command_id\": \"...\"}", "command_id")
        sender = filters.get("source")
        if filters.get("institution"):
            sender = f"hospital/{filters['institution']}"
        if sender:
            stored = self.register.recorder.select_events(command_record_id(sender, command_id), limit=1)
            if stored:
                outcome: dict[str, Any] = self.register.mapper.to_domain_event(stored[0]).outcome
                return outcome
            raise QueryError("not_found", f"no command {command_id} from {sender} was received", "command_id")
        with self.store.reading() as tx:
            found = command_log.list_commands(tx, command_id=command_id, limit=2)
        if not found:
            raise QueryError("not_found", f"no command {command_id} was received", "command_id")
        if len(found) > 1:
            raise QueryError("conflict", f"several senders used {command_id}: add a source filter", "source")
        row = found[0]
        return {"command_id": row["command_id"], "source": row["sender"], "type": row["type"],
                "status": row["status"], "result": row["result"], "errors": row["errors"]}


QUERIES: list[QuerySpec] = [
    QuerySpec("midids", "MID-IDs per hospital with modality and status (issued, linked, cancelled)",
              {"institution": "hospital id", "modality": "CT, PET, ...", "status": "issued, linked or cancelled"},
              Queries.midids),
    QuerySpec("outcome", "The outcome of one command, by its envelope id",
              {"command_id": "envelope id", "source": "sender, e.g. hospital/H001"}, Queries.outcome),
    QuerySpec("commands", "Commands received, with their status and errors (rejected ones are kept)",
              {"institution": "hospital id", "source": "sender", "status": "accepted or rejected",
               "command_id": "envelope id"}, Queries.commands),
]
