"""Read models dispatch by event class: each event an aggregate records reaches every read model of it."""

from __future__ import annotations

import pytest
from eventsourcing.domain import Aggregate

from domain.device import Device
from domain.events import event_class, event_classes
from projections.access import AccessGrants
from projections.audit_history import NOT_HISTORY, AuditHistory
from projections.capacity import Capacity
from projections.command_log import CommandLog
from projections.discrepancies import Discrepancies
from projections.kadaster_view import KadasterView
from projections.mid_id_register import MidIdRegister
from projections.projector import Projection

DISPATCHING = [KadasterView(), MidIdRegister(), Discrepancies(), Capacity(), CommandLog(), AccessGrants()]


def aggregates_read_by(projection: Projection) -> set[type[Aggregate]]:
    found = set()
    for cls in projection.handlers():
        owner = next(base for base in Aggregate.__subclasses__() if cls in event_classes(base))
        found.add(owner)
    return found


@pytest.mark.parametrize("projection", DISPATCHING, ids=lambda p: p.name)
def test_every_event_of_an_aggregate_a_read_model_reads_is_handled_or_set_aside_on_purpose(
    projection: Projection,
) -> None:
    handled = {cls.__qualname__ for cls in projection.handlers()}
    recorded = {cls.__qualname__ for a in aggregates_read_by(projection) for cls in event_classes(a)}
    if isinstance(projection, KadasterView):
        handled.add("Device.LicenceRecorded")  # applied in the log's order, outside the table
    assert recorded - handled == set(projection.ignored)


@pytest.mark.parametrize("projection", DISPATCHING, ids=lambda p: p.name)
def test_a_read_model_dispatches_on_the_event_classes_themselves(projection: Projection) -> None:
    for cls in projection.handlers():
        assert isinstance(cls, type) and issubclass(cls, Aggregate.Event)
        assert projection.wants(cls.__qualname__)


def test_a_renamed_event_fails_as_soon_as_a_read_model_asks_for_it() -> None:
    with pytest.raises(LookupError, match="Device records no event 'Reportd'"):
        event_class(Device, "Reportd")


def test_what_the_audit_history_leaves_out_are_real_events() -> None:
    every = {cls.__qualname__ for a in Aggregate.__subclasses__() for cls in event_classes(a)}
    assert set(NOT_HISTORY) <= every
    # Read, but only to learn the person who entered each command: never a row of the history.
    assert AuditHistory().wants(NOT_HISTORY[0])
    assert AuditHistory().wants("Device.Reported")
