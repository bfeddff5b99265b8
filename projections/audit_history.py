"""The audit history: every event in log order, with the MID-ID, round or institution it concerns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from itertools import islice
from typing import Any, ClassVar
from uuid import UUID

from domain.command_record import CommandRecord
from domain.events import event_class
from domain.identifiers import MidId
from projections.projector import Projection
from projections.store import Transaction
from projections.writes import Batch

BUSINESS_DATES = ("effective_on", "received_on", "valid_from", "installed_on", "registered_on", "deadline")
"""The business date an event refers to, the first of these it carries."""

NOT_HISTORY = (event_class(CommandRecord, "Handled").__qualname__,)
"""Commands are the command log's (query `commands`); every history row names its command by id."""

HELD_BY_SUBJECT = ("Device", "MidIdRecord", "LegacyRef", "Institution")
"""Aggregates whose creation event names the institution their events concern."""

REMEMBERED = 10_000
"""Subjects and holders kept in memory at most; past that the older half is forgotten.

An aggregate's events mostly come close together in the log (one command records most of them),
so a few thousand recent ones answer nearly every event, and what a replay holds does not grow
with the log; the rest is read back from `rm_history_subjects` and `rm_history_holders`."""

ENVELOPE = ("originator_id", "originator_version", "timestamp", "originator_topic")

COLUMNS = (
    "position",
    "aggregate_type",
    "aggregate_id",
    "version",
    "event_type",
    "mid_id",
    "round_id",
    "institution",
    "source",
    "command_id",
    "recorded_at",
    "business_date",
    "business_date_field",
    "data",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class AuditHistory(Projection):
    name = "audit_history"
    # 2: holders keep the position they were learnt at, so the history is cut by position as of a moment.
    # 3: the person who entered each command, where one did.
    version = 3
    # Its rows are only ever added: written with executemany at the end of each batch.
    write_behind = True
    tables = ("rm_history", "rm_history_subjects", "rm_history_holders", "rm_history_people")
    appended: ClassVar[Mapping[str, str]] = {"rm_history": "position", "rm_history_holders": "position"}
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_history ("
        "position BIGINT PRIMARY KEY, aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, event_type TEXT NOT NULL, mid_id TEXT, round_id TEXT, institution TEXT, "
        "source TEXT, command_id TEXT, recorded_at TEXT NOT NULL, business_date TEXT, "
        "business_date_field TEXT, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_history_mid_id ON rm_history (mid_id, position)",
        "CREATE INDEX IF NOT EXISTS rm_history_round_id ON rm_history (round_id, position)",
        "CREATE INDEX IF NOT EXISTS rm_history_institution ON rm_history (institution, position)",
        # What each aggregate is about, from its creation event: later events do not repeat it.
        "CREATE TABLE IF NOT EXISTS rm_history_subjects ("
        "aggregate_id TEXT PRIMARY KEY, aggregate_type TEXT NOT NULL, mid_id TEXT, round_id TEXT, "
        "institution TEXT)",
        # Whose MID-ID it is, for billing-number and old-FANC-number events that name only the MID-ID.
        "CREATE TABLE IF NOT EXISTS rm_history_holders (mid_id TEXT PRIMARY KEY, institution TEXT NOT NULL, "
        "position BIGINT NOT NULL)",
        # The person who entered a command, where one did: every event the command caused shows them.
        "CREATE TABLE IF NOT EXISTS rm_history_people ("
        "source TEXT NOT NULL, command_id TEXT NOT NULL, person TEXT NOT NULL, "
        "PRIMARY KEY (source, command_id))",
    )

    def __init__(self) -> None:
        # What an aggregate is about and whose a MID-ID is never change once recorded, so they
        # may be remembered here: a rolled-back batch records them again, with the same values.
        self._subjects: dict[str, dict[str, Any]] = {}
        self._holders: dict[str, tuple[int, str]] = {}

    def wants(self, event_type: str) -> bool:
        return True

    def apply(self, tx: Batch, event: Any, position: int) -> None:
        event_type = type(event).__qualname__
        if event_type in NOT_HISTORY:
            person = getattr(event, "person", None)
            if person:
                tx.append(
                    "rm_history_people",
                    {"source": event.sender, "command_id": event.command_id, "person": person},
                )
            return
        aggregate_type = event_type.rsplit(".", 1)[0]
        aggregate_id = str(event.originator_id)
        if event.originator_version == 1:
            subject = self._remember(tx, event, aggregate_type, aggregate_id, position)
        else:
            subject = self._subject(tx, aggregate_id)
        mid_id = _text(getattr(event, "mid_id", None)) or subject.get("mid_id")
        number_taken = event_type == "MidIdSequence.NumberTaken"
        if mid_id is None and number_taken:
            mid_id = str(MidId(event.number))
        round_id = _text(getattr(event, "round_id", None)) or subject.get("round_id")
        # A device's events are its holder's, even a supplier's notice naming another institution;
        # a billing number's or an old FANC number's are the holder's of the MID-ID they name.
        institution = subject.get("institution") if aggregate_type in HELD_BY_SUBJECT else None
        institution = (
            institution
            # A number just taken has no holder yet: its MID-ID is issued by a later event.
            or (mid_id and not number_taken and self._holder(tx, mid_id, position))
            or subject.get("institution")
            or _text(getattr(event, "institution", None))
        )
        data = {k: v for k, v in event.__dict__.items() if k not in ENVELOPE}
        field = next((name for name in BUSINESS_DATES if data.get(name) is not None), None)
        business_date = None if field is None else _json_default(data[field])
        tx.append(
            "rm_history",
            {
                "position": position,
                "aggregate_type": aggregate_type,
                "aggregate_id": aggregate_id,
                "version": event.originator_version,
                "event_type": event_type,
                "mid_id": mid_id,
                "round_id": round_id,
                "institution": institution or None,
                "source": _text(data.get("source")),
                "command_id": _text(data.get("command_id")),
                "recorded_at": event.timestamp.isoformat(),
                "business_date": business_date,
                "business_date_field": field,
                "data": json.dumps(data, default=_json_default, sort_keys=True),
            },
        )

    def _remember(
        self, tx: Batch, event: Any, aggregate_type: str, aggregate_id: str, position: int
    ) -> dict[str, Any]:
        subject = {
            "mid_id": _text(getattr(event, "mid_id", None)),
            "round_id": _text(getattr(event, "round_id", None)),
            "institution": _text(getattr(event, "institution", None)),
        }
        tx.append(
            "rm_history_subjects", {"aggregate_id": aggregate_id, "aggregate_type": aggregate_type, **subject}
        )
        if aggregate_type == "MidIdRecord" and subject["mid_id"] and subject["institution"]:
            tx.append(
                "rm_history_holders",
                {"mid_id": subject["mid_id"], "institution": subject["institution"], "position": position},
            )
            self._remembered(self._holders, subject["mid_id"], (position, subject["institution"]))
        self._remembered(self._subjects, aggregate_id, subject)
        return subject

    def _subject(self, tx: Transaction, aggregate_id: str) -> dict[str, Any]:
        subject = self._subjects.get(aggregate_id)
        if subject is None:
            subject = tx.execute(
                "SELECT mid_id, round_id, institution FROM rm_history_subjects WHERE aggregate_id = ?",
                (aggregate_id,),
            ).one()
            if subject is None:
                return {}  # its creation event was never seen: nothing known about it
            self._remembered(self._subjects, aggregate_id, subject)
        return subject

    def _holder(self, tx: Transaction, mid_id: str, position: int) -> str | None:
        # Only what the log said before this event: a rebuild replays events that came before
        # the MID-ID's issue (its number being taken), which must not learn its holder early.
        known = self._holders.get(mid_id)
        if known is not None and known[0] < position:
            return known[1]
        holder = holder_of(tx, mid_id)
        if holder is not None:
            self._remembered(self._holders, mid_id, (position, holder))
        return holder

    @staticmethod
    def _remembered(memory: dict[str, Any], key: str, value: Any) -> None:
        if len(memory) >= REMEMBERED:
            # Dicts keep insertion order: the first keys are the longest remembered.
            for forgotten in list(islice(memory, REMEMBERED // 2)):
                del memory[forgotten]
        memory[key] = value


def history(
    tx: Transaction,
    key: str,
    value: str,
    scope: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Events about one MID-ID, round or institution, in log order.

    `scope`: the asking hospital, which sees no event about another institution (a round's
    other applications, for one).
    """
    assert key in ("mid_id", "round_id", "institution")
    clauses, params = [f"{key} = ?"], [value]
    if scope is not None and key != "institution":
        clauses.append("(institution IS NULL OR institution = ?)")
        params.append(scope)
    rows = tx.execute(
        f"SELECT {', '.join(COLUMNS)} FROM rm_history WHERE {' AND '.join(clauses)} "
        "ORDER BY position LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).all()
    people = people_of(tx, [(r["source"], r["command_id"]) for r in rows if r["source"] and r["command_id"]])
    for row in rows:
        row["data"] = json.loads(row["data"])
        row["person"] = people.get((row["source"], row["command_id"]))
    return rows


def people_of(tx: Transaction, commands: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The person who entered each of these (source, command id), where one did."""
    found: dict[tuple[str, str], str] = {}
    for source, command_id in set(commands):
        person = tx.execute(
            "SELECT person FROM rm_history_people WHERE source = ? AND command_id = ?", (source, command_id)
        ).scalar()
        if person is not None:
            found[(source, command_id)] = str(person)
    return found


def holder_of(tx: Transaction, mid_id: str) -> str | None:
    """The institution a MID-ID was issued to, as its history knows it."""
    found = tx.execute("SELECT institution FROM rm_history_holders WHERE mid_id = ?", (mid_id,)).scalar()
    return None if found is None else str(found)


def knows_round(tx: Transaction, round_id: str) -> bool:
    return tx.execute("SELECT 1 FROM rm_history WHERE round_id = ? LIMIT 1", (round_id,)).scalar() is not None
