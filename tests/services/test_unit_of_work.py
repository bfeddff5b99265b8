"""A batch's unit of work: each command changes its own copies, and a failed one leaves no trace."""

from __future__ import annotations

from domain.mid_id import MidIdSequence
from services.register import Register
from services.unit_of_work import UnitOfWork


def stored_sequence(register: Register) -> MidIdSequence:
    sequence = MidIdSequence()
    sequence.take_next("c0")
    register.save(sequence)
    return sequence


def test_a_command_works_on_a_copy_that_starts_with_no_pending_events(register: Register) -> None:
    sequence = stored_sequence(register)
    work = UnitOfWork(register)

    copy = work.get(MidIdSequence, sequence.id)

    assert copy is not None
    assert copy.pending_events == []
    assert (copy.id, copy.version, copy.last_number) == (sequence.id, sequence.version, 1)


def test_a_rolled_back_command_leaves_the_batch_as_it_was(register: Register) -> None:
    sequence = stored_sequence(register)
    work = UnitOfWork(register)
    first = work.get(MidIdSequence, sequence.id)
    assert first is not None
    first.take_next("c1")
    assert len(work.commit_command()) == 1

    second = work.get(MidIdSequence, sequence.id)
    assert second is not None
    second.take_next("c2")
    work.rollback_command()

    again = work.get(MidIdSequence, sequence.id)
    assert again is not None
    assert again.last_number == 2
    assert again.pending_events == []
    assert [a.pending_events for a in work.aggregates] == [[]]
    assert [e.originator_version for e in work.events] == [3]


def test_events_pending_on_one_copy_never_show_on_the_next(register: Register) -> None:
    sequence = stored_sequence(register)
    work = UnitOfWork(register)
    first = work.get(MidIdSequence, sequence.id)
    assert first is not None
    first.take_next("c1")
    work.rollback_command()

    second = work.get(MidIdSequence, sequence.id)

    assert second is not None
    assert second is not first
    assert second.pending_events == []
    assert second.last_number == 1
