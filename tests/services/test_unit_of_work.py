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


def working_copy(work: UnitOfWork, sequence: MidIdSequence) -> MidIdSequence:
    copy = work.get(MidIdSequence, sequence.id)
    assert copy is not None
    return copy


def test_a_command_works_on_a_copy_that_starts_with_no_pending_events(register: Register) -> None:
    sequence = stored_sequence(register)

    copy = working_copy(UnitOfWork(register), sequence)

    assert copy.pending_events == []
    assert (copy.id, copy.version, copy.last_number) == (sequence.id, sequence.version, 1)


def test_a_rolled_back_command_leaves_the_batch_as_it_was(register: Register) -> None:
    sequence = stored_sequence(register)
    work = UnitOfWork(register)
    working_copy(work, sequence).take_next("c1")
    assert len(work.commit_command()) == 1
    working_copy(work, sequence).take_next("c2")

    work.rollback_command()

    again = working_copy(work, sequence)
    assert (again.last_number, again.pending_events) == (2, [])
    assert [a.pending_events for a in work.aggregates] == [[]]
    assert [e.originator_version for e in work.events] == [3]


def test_events_pending_on_one_copy_never_show_on_the_next(register: Register) -> None:
    sequence = stored_sequence(register)
    work = UnitOfWork(register)
    first = working_copy(work, sequence)
    first.take_next("c1")

    work.rollback_command()

    second = working_copy(work, sequence)
    assert second is not first
    assert (second.last_number, second.pending_events) == (1, [])
