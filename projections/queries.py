"""The contract's queries, one implementation behind NATS, HTTP and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from domain.command_record import command_record_id
from domain.device_events import STATUSES as DEVICE_STATUSES
from domain.errors import DomainError, ErrorDetail
from domain.identifiers import MidId
from domain.reference import parse_modality, province_named
from projections import (
    access,
    audit_history,
    capacity,
    command_log,
    discrepancies,
    kadaster_view,
    mid_id_register,
)
from projections.access import AccessGrants
from projections.capacity import Capacity
from projections.command_log import CommandLog
from projections.discrepancies import Discrepancies
from projections.kadaster_view import KadasterView
from projections.mid_id_register import MidIdRegister
from projections.projector import Projector
from projections.replay import AsOfRegister, parse_as_of
from projections.store import ReadModelStore, Transaction
from projections.versions import AsOfTransaction

VERSIONED = tuple(
    table
    for kind in (KadasterView, MidIdRegister, Discrepancies, Capacity, CommandLog, AccessGrants)
    for table in kind.versioned
)
APPENDED = dict(audit_history.AuditHistory.appended)

MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000
"""Far beyond any register, and within what every database binds as an integer."""


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
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError("schema", f"limit is 1..{MAX_PAGE}", "limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("schema", f"offset is 0..{MAX_OFFSET}", "offset")
    return limit, offset


PAGE_FILTERS = ("limit", "offset")
_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", float: "a number", int: "a number"}


def _check_values(filters: dict[str, Any]) -> None:
    """Every filter is text, as the documents say; a page size or offset may also be a whole number.

    A JSON body can carry any value; anything else would reach the read models' SQL as a parameter
    it cannot bind, and text with a NUL character is refused by PostgreSQL.
    """
    for name, value in filters.items():
        if isinstance(value, str):
            if "\x00" in value:
                raise QueryError("schema", f"filter {name} contains a NUL character", name)
            continue
        if name in PAGE_FILTERS and isinstance(value, int) and not isinstance(value, bool):
            continue
        kind = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
        raise QueryError("schema", f"filter {name} is text, not {kind}", name)


def _text(filters: dict[str, Any], name: str) -> str | None:
    value = filters.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise QueryError("schema", f"{name} is a non-empty string", name)
    return value.strip()


def _choice(
    filters: dict[str, Any], name: str, choices: Sequence[str], default: str | None = None
) -> str | None:
    value = _text(filters, name) or default
    if value is not None and value not in choices:
        raise QueryError("schema", f"{name} is one of {', '.join(choices)}", name)
    return value


def _modality(filters: dict[str, Any]) -> str | None:
    value = _text(filters, "modality")
    if value is None:
        return None
    try:
        return parse_modality(value, "modality").value
    except DomainError as error:
        raise _query_error(error) from None


def _province(filters: dict[str, Any]) -> str | None:
    """A province by any of its names; one that is none of Belgium's matches nothing."""
    value = _text(filters, "province")
    return None if value is None else province_named(value) or value


def _mid_id(filters: dict[str, Any], required: bool = False) -> str | None:
    value = _text(filters, "mid_id")
    if value is None:
        if required:
            raise QueryError("schema", 'give {"mid_id": "MID-..."}', "mid_id")
        return None
    try:
        return str(MidId.parse(value, "mid_id"))
    except DomainError as error:
        raise _query_error(error) from None


def _day(filters: dict[str, Any], name: str, default: date) -> date:
    value = _text(filters, name)
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError("schema", f"{name} is a date such as 2024-04-23", name) from None


def _sort(filters: dict[str, Any]) -> list[tuple[str, bool]]:
    """`sort`: comma-separated columns, each `-`-prefixed for descending; MID-ID order by default."""
    value = _text(filters, "sort") or "mid_id"
    keys = []
    for part in value.split(","):
        column = part.strip().lstrip("-")
        if column not in kadaster_view.SORTABLE:
            raise QueryError(
                "schema",
                f"sort on {', '.join(kadaster_view.SORTABLE)} (a leading - sorts descending)",
                "sort",
            )
        keys.append((column, part.strip().startswith("-")))
    return keys


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryError("schema", "as_of is an ISO 8601 moment such as 2023-10-01T00:00:00Z", "as_of")
    try:
        return parse_as_of(value)
    except ValueError as error:
        raise QueryError("schema", f"as_of: {error}", "as_of") from None


def _query_error(error: DomainError) -> QueryError:
    detail = error.details[0]
    return QueryError(detail.code, detail.message, detail.field)


class AsOfStore:
    """The read-model store read as of a cut: the same queries, every table as it stood then."""

    def __init__(self, store: ReadModelStore, cut: int) -> None:
        self.store = store
        self.cut = cut
        self.dialect = store.dialect

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        with self.store.reading() as tx:
            yield AsOfTransaction(tx, self.cut, VERSIONED, APPENDED)


def cut_at(tx: Transaction, moment: datetime) -> int:
    """The last position of the last store transaction recorded at or before `moment` (0: none)."""
    # Moments are kept in one fixed-width UTC spelling (`services.recordings`), compared as text.
    spelled = moment.astimezone(UTC).isoformat(timespec="microseconds")
    found = tx.execute(
        "SELECT MAX(last_position) FROM rm_transactions WHERE recorded_at <= ?", (spelled,)
    ).scalar()
    return int(found or 0)


def latest_cut(tx: Transaction) -> int:
    """The last position of the last store transaction the read models applied whole (0: none)."""
    return int(tx.execute("SELECT MAX(last_position) FROM rm_transactions").scalar() or 0)


class Queries:
    """Answers queries from read models (after they caught up with the store) or the store itself."""

    def __init__(
        self,
        register: Any,
        store: ReadModelStore,
        projector: Projector | None = None,
        freshness_timeout: float = 2.0,
        extra: Sequence[QuerySpec] = (),
        today: Callable[[], date] = date.today,
    ) -> None:
        """`extra`: queries answered by outer layers (the wiring adds the allocation rounds').

        `today`: the day deadlines are judged against, and the business date asked about, when a
        query names none (read models never read the clock, queries may).
        """
        self.register = register
        self.store: ReadModelStore | AsOfStore = store
        self.projector = projector
        self.freshness_timeout = freshness_timeout
        self.today = today
        self.cut: int | None = None
        self.specs: dict[str, QuerySpec] = {spec.name: spec for spec in (*QUERIES, *extra)}

    def run(self, name: str, filters: dict[str, Any] | None, institution: str | None = None) -> Any:
        """`institution` set means a hospital asks: it sees only its own data."""
        spec = self.specs.get(name)
        if spec is None:
            raise QueryError(
                "unknown_type", f"no query named {name!r} (known: {', '.join(sorted(self.specs))})"
            )
        if filters is not None and not isinstance(filters, dict):
            raise QueryError("schema", "a query's body is a JSON object of filters")
        filters = dict(filters or {})
        _check_values(filters)
        unknown = set(filters) - set(spec.filters) - {"limit", "offset", "as_of"}
        if unknown:
            raise QueryError(
                "schema", f"unknown filter(s) for {name}: {', '.join(sorted(unknown))}", sorted(unknown)[0]
            )
        if institution is not None:
            if not spec.hospital_scoped:
                raise QueryError("forbidden", f"{name} is for operators, not for a hospital")
            asked = filters.get("institution")
            if asked is not None and asked != institution:
                raise QueryError(
                    "forbidden", f"hospital {institution} may only query its own data", "institution"
                )
            filters["institution"] = institution
        moment = _moment(filters.pop("as_of", None))
        self.catch_up()
        if moment is not None:
            return self._run_as_of(spec, filters, moment)
        return spec.run(self, filters)

    def _run_as_of(self, spec: QuerySpec, filters: dict[str, Any], moment: datetime) -> Any:
        """The same query on the read models' row versions as of `moment`, deadlines judged on its day.

        Cut after the last store transaction recorded by then, never inside one.
        """
        assert isinstance(self.store, ReadModelStore)
        with self.store.reading() as tx:
            cut = cut_at(tx, moment)
        past = Queries(AsOfRegister(self.register, cut), self.store, today=moment.date)
        past.store = AsOfStore(self.store, cut)
        past.cut = cut
        past.specs = self.specs
        answer = spec.run(past, filters)
        return {"as_of": moment.isoformat(), **answer} if isinstance(answer, dict) else answer

    def catch_up(self) -> None:
        if self.projector is not None:
            self.projector.wait_until(self.register.position(), timeout=self.freshness_timeout)

    # the queries

    def midids(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        with self.store.reading() as tx:
            items = mid_id_register.list_mid_ids(
                tx, filters.get("institution"), _modality(filters), filters.get("status"), limit, offset
            )
            devices = kadaster_view.device_summaries(tx, [item["mid_id"] for item in items], self.today())
        for item in items:
            item.pop("aggregate_id", None)
            item["device"] = devices.get(item["mid_id"])
            # Free: neither cancelled nor linked, and no device (reported or announced) carries it yet.
            item["free"] = item["status"] == "issued" and item["device"] is None
        return {"items": items, "limit": limit, "offset": offset}

    def devices(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        chosen = {
            "institution": _text(filters, "institution"),
            "modality": _modality(filters),
            "province": _province(filters),
            "status": _choice(filters, "status", DEVICE_STATUSES),
            "campus": _text(filters, "campus"),
        }
        sort = _sort(filters)
        day = _day(filters, "in_force_on", self.today())
        with self.store.reading() as tx:
            items, total = kadaster_view.list_devices(
                tx, {k: v for k, v in chosen.items() if v is not None}, sort, limit, offset, day
            )
        shown = ",".join(f"{'-' if desc else ''}{column}" for column, desc in sort)
        return {
            "items": items,
            "total": total,
            "sort": shown,
            "in_force_on": day.isoformat(),
            "limit": limit,
            "offset": offset,
        }

    def device(self, filters: dict[str, Any]) -> dict[str, Any]:
        mid_id = _mid_id(filters, required=True)
        assert mid_id is not None
        scope = _text(filters, "institution")
        day = _day(filters, "in_force_on", self.today())
        with self.store.reading() as tx:
            found = kadaster_view.find_device(tx, mid_id, day)
            holder = found["institution"] if found else mid_id_register.holder_of(tx, mid_id)
            if scope is not None and holder is not None and holder != scope:
                raise QueryError(
                    "midid_not_yours", f"{mid_id} was issued to another institution, not to {scope}", "mid_id"
                )
            if found is None:
                known = "was never issued" if holder is None else "carries no device known to the kadaster"
                raise QueryError("device_unknown", f"{mid_id} {known}", "mid_id")
            found["discrepancies"] = discrepancies.list_discrepancies(
                tx, self.today(), "open", mid_id=mid_id, limit=MAX_PAGE
            )
            # Who said it: the person who entered the command, where one did.
            said = [s for s in found["provenance"].values() if isinstance(s, dict) and s.get("command_id")]
            people = audit_history.people_of(tx, [(s["source"], s["command_id"]) for s in said])
            for s in said:
                person = people.get((s["source"], s["command_id"]))
                if person is not None:
                    s["person"] = person
        return found

    def history(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        mid_id, round_id = _mid_id(filters), _text(filters, "round_id")
        institution = _text(filters, "institution")
        if mid_id is not None and round_id is not None:
            raise QueryError("schema", "give one of mid_id and round_id", "round_id")
        with self.store.reading() as tx:
            if mid_id is not None:
                holder = audit_history.holder_of(tx, mid_id)
                if holder is None:
                    raise QueryError("midid_unknown", f"{mid_id} was never issued", "mid_id")
                if institution is not None and holder != institution:
                    raise QueryError(
                        "midid_not_yours",
                        f"{mid_id} was issued to another institution, not to {institution}",
                        "mid_id",
                    )
                key, value = "mid_id", mid_id
            elif round_id is not None:
                if not audit_history.knows_round(tx, round_id):
                    raise QueryError("round_unknown", f"no round {round_id} was opened", "round_id")
                key, value = "round_id", round_id
            elif institution is not None:
                key, value = "institution", institution
            else:
                raise QueryError(
                    "schema", 'history needs {"mid_id"}, {"round_id"} or {"institution"}', "mid_id"
                )
            # With a MID-ID or a round, `institution` narrows what is shown to that institution's own.
            scope = institution if key != "institution" else None
            items = audit_history.history(tx, key, value, scope, limit, offset)
        return {key: value, "items": items, "limit": limit, "offset": offset}

    def discrepancies(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        today = _day(filters, "today", self.today())
        state = _choice(filters, "status", discrepancies.STATES, "open")
        assert state is not None
        kind = _choice(filters, "kind", discrepancies.KINDS)
        with self.store.reading() as tx:
            items = discrepancies.list_discrepancies(
                tx, today, state, _text(filters, "institution"), kind, _mid_id(filters), limit, offset
            )
        return {"today": today.isoformat(), "status": state, "items": items, "limit": limit, "offset": offset}

    def capacity(self, filters: dict[str, Any]) -> dict[str, Any]:
        with self.store.reading() as tx:
            return capacity.capacity(tx, _modality(filters), _province(filters))

    def commands(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        sender = filters.get("source")
        if filters.get("institution"):
            sender = f"hospital/{filters['institution']}"
        with self.store.reading() as tx:
            items = command_log.list_commands(
                tx, sender, filters.get("status"), filters.get("command_id"), limit, offset
            )
        return {"items": items, "limit": limit, "offset": offset}

    def access(self, filters: dict[str, Any]) -> dict[str, Any]:
        limit, offset = _page(filters)
        party = _text(filters, "party")
        institution = _text(filters, "institution")
        if institution is not None:
            if party is not None and party != f"hospital/{institution}":
                raise QueryError("forbidden", f"hospital {institution} may only see its own people", "party")
            party = f"hospital/{institution}"
        state = _choice(filters, "status", access.STATES, "current")
        assert state is not None
        with self.store.reading() as tx:
            items = access.list_access(
                tx, _text(filters, "person"), party, _text(filters, "role"), state, limit, offset
            )
        return {"status": state, "items": items, "limit": limit, "offset": offset}

    def outcome(self, filters: dict[str, Any]) -> dict[str, Any]:
        command_id = filters.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            raise QueryError("schema", 'outcome needs {"command_id": "..."}', "command_id")
        sender = filters.get("source")
        if filters.get("institution"):
            sender = f"hospital/{filters['institution']}"
        if sender:
            key = command_record_id(sender, command_id)
            received = self.register.created([key]).get(key)
            if received is not None:
                outcome: dict[str, Any] = received.outcome
                return outcome
            raise QueryError("not_found", f"no command {command_id} from {sender} was received", "command_id")
        with self.store.reading() as tx:
            found = command_log.list_commands(tx, command_id=command_id, limit=2)
        if not found:
            raise QueryError("not_found", f"no command {command_id} was received", "command_id")
        if len(found) > 1:
            raise QueryError("conflict", f"several senders used {command_id}: add a source filter", "source")
        row = found[0]
        return {
            "command_id": row["command_id"],
            "source": row["sender"],
            "type": row["type"],
            "status": row["status"],
            "result": row["result"],
            "errors": row["errors"],
        }


IN_FORCE_ON = (
    "the business date: each device as in force on that day, changes dated later not yet "
    "(default: today, or the as_of moment's day)"
)

DEVICE_FILTERS = {
    "institution": "hospital id",
    "modality": "CT, PET, PET-CT, PET-MRI, SPECT-CT or MRI",
    "province": "the institution's province, e.g. Antwerpen",
    "status": "announced, reported, linked or decommissioned",
    "campus": "the campus the device is on",
    "sort": f"comma-separated, - for descending: {', '.join(kadaster_view.SORTABLE)} (default mid_id)",
    "in_force_on": IN_FORCE_ON,
}

QUERIES: list[QuerySpec] = [
    QuerySpec(
        "midids",
        "MID-IDs per hospital with modality and status (issued, linked, cancelled)",
        {"institution": "hospital id", "modality": "CT, PET, ...", "status": "issued, linked or cancelled"},
        Queries.midids,
    ),
    QuerySpec(
        "outcome",
        "The outcome of one command, by its envelope id",
        {"command_id": "envelope id", "source": "sender, e.g. hospital/H001"},
        Queries.outcome,
    ),
    QuerySpec(
        "commands",
        "Commands received, with their status and errors (rejected ones are kept)",
        {
            "institution": "hospital id",
            "source": "sender",
            "status": "accepted or rejected",
            "command_id": "envelope id",
        },
        Queries.commands,
    ),
    QuerySpec(
        "devices",
        "The kadaster view: one row per device, as the hospital stated it and the FOD linked or corrected it",
        DEVICE_FILTERS,
        Queries.devices,
    ),
    QuerySpec(
        "device",
        "One device by MID-ID, with who said each field and when, its licences and open discrepancies",
        {
            "mid_id": "the MID-ID, in any accepted spelling",
            "institution": "only if the device is this institution's",
            "in_force_on": IN_FORCE_ON,
        },
        Queries.device,
    ),
    QuerySpec(
        "history",
        "Every event about a MID-ID and its device, a round or an institution, in log order, "
        "with source, command id, time recorded and business date",
        {
            "mid_id": "a MID-ID",
            "round_id": "an allocation round",
            "institution": "an institution; with mid_id or round_id, only events about it",
        },
        Queries.history,
    ),
    QuerySpec(
        "discrepancies",
        "Where sources disagree, deadlines passed, or numbers were used where they should "
        "not be, as they stand on a day",
        {
            "institution": "hospital id",
            "kind": ", ".join(discrepancies.KINDS),
            "status": "open (default), resolved, pending (not yet due) or all",
            "today": "the day deadlines are judged against (default: today)",
            "mid_id": "a MID-ID",
        },
        Queries.discrepancies,
    ),
    QuerySpec(
        "access",
        "Who may do what, for whom, since when, granted by whom (roles in force, revoked, or all)",
        {
            "person": "a person's id (login or identity provider subject)",
            "party": "the party the role is held for, e.g. hospital/H001",
            "role": "local-admin, requester, reporter, viewer, operator, admin or auditor",
            "status": "current (default), revoked or all",
            "institution": "hospital id: that hospital's people",
        },
        Queries.access,
    ),
    QuerySpec(
        "capacity",
        "Devices in service per province and modality, per 100,000 inhabitants where a "
        "round gave the population",
        {
            "modality": "one modality: every known province, even at zero",
            "province": "one province",
            "institution": "ignored: capacity per province is public",
        },
        Queries.capacity,
    ),
]
