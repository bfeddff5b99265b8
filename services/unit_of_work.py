"""A batch's view of the aggregates it changes, with per-command rollback."""

from __future__ import annotations

import copy
from datetime import date, datetime
from enum import Enum
from typing import TypeVar, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol, Snapshot

from services.register import Register

A = TypeVar("A", bound=Aggregate)

_IMMUTABLE = (str, int, float, bool, bytes, type(None), UUID, datetime, date, Enum)


def _copy(aggregate: Aggregate | None) -> Aggregate | None:
    """A copy a command may change; one of immutable values only (a sequence, a MID-ID) shares them.

    The shared copy is made the library's public way, through a snapshot of the aggregate's state,
    which starts the copy with no pending events of its own.
    """
    if aggregate is None:
        return None
    if aggregate.pending_events:
        return copy.deepcopy(aggregate)
    snapshot = Snapshot.take(aggregate)
    if not all(isinstance(value, _IMMUTABLE) for value in snapshot.state.values()):
        return copy.deepcopy(aggregate)
    return cast(Aggregate, snapshot.mutate(None))


class UnitOfWork:
    """Aggregates loaded once per batch; each command works on copies.

    A command that fails leaves no trace: its copies are dropped. A command that succeeds
    hands its pending events to the batch, which records them all in one transaction.
    """

    def __init__(self, register: Register) -> None:
        self.register = register
        self._committed: dict[UUID, Aggregate | None] = {}
        self._working: dict[UUID, Aggregate | None] = {}
        self.events: list[DomainEventProtocol[UUID]] = []

    def get(self, kind: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self._working:
            if aggregate_id not in self._committed:
                self._committed[aggregate_id] = self.register.load(kind, aggregate_id)
            self._working[aggregate_id] = _copy(self._committed[aggregate_id])
        found = self._working[aggregate_id]
        if found is not None and not isinstance(found, kind):
            raise TypeError(f"aggregate {aggregate_id} is a {type(found).__name__}, not {kind.__name__}")
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._working[aggregate.id] = aggregate

    def commit_command(self) -> list[DomainEventProtocol[UUID]]:
        """Keeps the command's changes for the batch; returns the events it caused."""
        caused: list[DomainEventProtocol[UUID]] = []
        for aggregate_id, aggregate in self._working.items():
            if aggregate is None:
                continue
            caused.extend(aggregate.collect_events())
            self._committed[aggregate_id] = aggregate
        self._working.clear()
        self.events.extend(caused)
        return caused

    def rollback_command(self) -> None:
        self._working.clear()

    @property
    def aggregates(self) -> list[Aggregate]:
        return [a for a in self._committed.values() if a is not None]
