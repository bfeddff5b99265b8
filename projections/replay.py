"""The register replayed from its events up to a moment: for an auditor's own recomputation.

A moment T is cut between the store's transactions: every transaction recorded at or before T,
nothing of a later one (see `services.recordings`). The read models built from those events, in log
order, are what the register said at T; `audit replay` writes them into a database of their own,
and tests hold the bitemporal read models' answers against them. Queries never replay: they read
the versions the live read models keep (`projections.versions`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as day_time
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, project_aggregate

from projections.projector import Projection, Projector
from projections.store import ReadModelStore

log = structlog.get_logger("kadaster.projections")

Progress = Callable[[int, int], None]


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 moment; without a zone it is UTC, and a bare date means the end of that day (UTC)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), day_time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or date-time, e.g. 2024-04-23T10:00:00Z"
        ) from None
    try:
        return utc(moment)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range: a moment between the years 1 and 9999 in UTC") from None


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Replayed:
    """What a replay did: events applied, the last log position read, and how long it took."""

    until: datetime | None
    events: int
    position: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "until": None if self.until is None else self.until.isoformat(),
            "events": self.events,
            "position": self.position,
            "seconds": round(self.seconds, 3),
        }


def replay(
    register: Any,
    store: ReadModelStore,
    projections: Sequence[Projection],
    until: datetime | None = None,
    progress: Progress | None = None,
    batch_size: int = 500,
    through: int | None = None,
) -> Replayed:
    """Builds `projections` in an empty `store` from the events recorded up to `until` (all: None),
    or up to position `through`."""
    began = time.monotonic()
    projector = Projector(register, store, projections)
    moment = None if until is None else utc(until)
    head = projector.head()
    if through is not None:
        head = min(head, through)
    elif moment is not None:
        head = min(head, register.recordings.cut(moment))
    position, applied = 0, 0
    done = {projection.name: 0 for projection in projector.projections}
    while position < head:
        notifications = projector.read(position, batch_size, stop=head)
        if not notifications:
            break
        events = [(n.id, register.mapper.to_domain_event(n)) for n in notifications]
        last = notifications[-1].id
        with store.transaction() as tx:
            projector.apply(tx, projector.recorded(position, events), done)
            for projection in projector.projections:
                projector.track(tx, projection, last)
        applied += len(events)
        position = last
        if progress is not None:
            progress(position, head)
    projector.refresh_statistics(fresh=True)
    return Replayed(moment, applied, position, time.monotonic() - began)


class AsOfRegister:
    """The register's aggregates as they stood at a cut (a store transaction's last position, see
    `Recordings.cut`), for answers read from aggregates: every event of the transactions recorded up
    to the cut, none of a later one, whatever the events' own timestamps say."""

    def __init__(self, register: Any, cut: int) -> None:
        self.register = register
        self.cut = int(cut)
        self.repository = self
        self.recorder = register.recorder

    def get(self, aggregate_id: UUID, version: int | None = None) -> Any:
        last = self.register.versions_at([aggregate_id], self.cut).get(aggregate_id)
        if last is None:
            raise AggregateNotFoundError(aggregate_id)
        if version is not None:
            last = min(last, version)
        aggregate = project_aggregate(None, self.register.events.get(aggregate_id, lte=last))
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        return aggregate

    def created(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any]:
        """The creation events of those aggregates that existed at the cut."""
        found = self.register.created(aggregate_ids)
        existed = self.register.versions_at(list(found), self.cut)
        return {key: event for key, event in found.items() if key in existed}

    def position(self) -> int:
        return self.cut
