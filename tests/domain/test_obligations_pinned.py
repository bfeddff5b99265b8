"""Deadlines and licence coverage pinned day by day, and event classes found by name."""

from __future__ import annotations

from datetime import date

import pytest

from domain.events import event_class, event_classes
from domain.mid_id import MidIdRecord, MidIdSequence
from domain.obligations import (
    DEADLINES,
    after_months,
    licensed_on,
    link_overdue_on,
    uncovered,
    unused_overdue_on,
)


@pytest.mark.parametrize(
    ("day", "months", "later"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 3, 15), 12, date(2025, 3, 15)),
        (date(2024, 11, 30), 2, date(2025, 1, 30)),
        (date(2024, 12, 1), 1, date(2025, 1, 1)),
        (date(2024, 5, 31), 0, date(2024, 5, 31)),
    ],
)
def test_months_later_is_the_same_day_or_the_months_last(day: date, months: int, later: date) -> None:
    assert after_months(day, months) == later


def test_a_device_is_overdue_for_linking_on_the_thirty_first_day_after_its_report() -> None:
    assert link_overdue_on(date(2024, 1, 1)) == date(2024, 2, 1)


def test_a_mid_id_is_overdue_for_use_the_day_after_twelve_months() -> None:
    assert unused_overdue_on(date(2024, 2, 29)) == date(2025, 3, 1)
    assert unused_overdue_on(date(2024, 1, 15)) == date(2025, 1, 16)


def test_the_deadlines_are_stated_as_the_console_shows_them() -> None:
    assert DEADLINES == (
        "reported but not linked for more than 30 days (not_linked), "
        "MID-ID unused for more than 12 months (midid_unlinked)"
    )


D = date


@pytest.mark.parametrize(
    ("start", "end", "covers", "gaps"),
    [
        (D(2024, 1, 1), D(2024, 12, 31), [], [(D(2024, 1, 1), D(2024, 12, 31))]),
        (D(2024, 1, 1), None, [], [(D(2024, 1, 1), None)]),
        (D(2024, 1, 1), D(2024, 12, 31), [(D(2024, 1, 1), None)], []),
        (D(2024, 1, 1), None, [(D(2023, 1, 1), None)], []),
        (D(2024, 1, 1), D(2024, 12, 31), [(D(2024, 1, 1), D(2024, 12, 31))], []),
        (D(2024, 1, 1), D(2024, 12, 31), [(D(2024, 1, 2), None)], [(D(2024, 1, 1), D(2024, 1, 1))]),
        (D(2024, 1, 1), None, [(D(2024, 3, 1), None)], [(D(2024, 1, 1), D(2024, 2, 29))]),
        (
            D(2024, 1, 1),
            D(2024, 12, 31),
            [(D(2024, 1, 1), D(2024, 12, 30))],
            [(D(2024, 12, 31), D(2024, 12, 31))],
        ),
        (D(2024, 1, 1), None, [(D(2024, 1, 1), D(2024, 6, 30))], [(D(2024, 7, 1), None)]),
        (
            D(2024, 1, 1),
            D(2024, 12, 31),
            [(D(2024, 7, 1), None), (D(2024, 1, 1), D(2024, 3, 31))],
            [(D(2024, 4, 1), D(2024, 6, 30))],
        ),
        (
            D(2024, 1, 1),
            D(2024, 12, 31),
            [(D(2023, 1, 1), D(2023, 12, 31))],
            [(D(2024, 1, 1), D(2024, 12, 31))],
        ),
        (D(2024, 1, 1), D(2024, 1, 31), [(D(2024, 3, 1), None)], [(D(2024, 1, 1), D(2024, 1, 31))]),
        (
            D(2024, 1, 1),
            D(2024, 12, 31),
            [(D(2024, 1, 1), D(2024, 5, 31)), (D(2024, 3, 1), D(2024, 4, 30)), (D(2024, 6, 1), None)],
            [],
        ),
        (D(2024, 1, 1), D(2024, 1, 1), [(D(2024, 1, 1), D(2024, 1, 1))], []),
        (D(2024, 1, 2), D(2024, 1, 2), [(D(2024, 1, 1), D(2024, 1, 1))], [(D(2024, 1, 2), D(2024, 1, 2))]),
    ],
)
def test_the_days_no_licence_covers_are_the_gaps(
    start: date,
    end: date | None,
    covers: list[tuple[date, date | None]],
    gaps: list[tuple[date, date | None]],
) -> None:
    assert uncovered(start, end, covers) == gaps


def test_a_day_is_licensed_when_a_licence_covers_it_from_its_first_to_its_last_day() -> None:
    covers = [(D(2024, 5, 1), D(2024, 5, 1))]
    assert [licensed_on(covers, D(2024, 5, d)) for d in (1, 2)] == [True, False]
    assert not licensed_on(covers, D(2024, 4, 30))
    assert not licensed_on(covers, None)
    assert licensed_on([*covers, (D(2025, 1, 1), None)], None)
    assert not licensed_on([], D(2024, 5, 1))


def test_an_event_class_is_found_by_its_name_and_a_missing_one_fails_at_once() -> None:
    issued = event_class(MidIdRecord, "Issued")
    assert issued.__qualname__ == "MidIdRecord.Issued"
    with pytest.raises(LookupError) as missing:
        event_class(MidIdRecord, "Reissued")
    assert str(missing.value) == "MidIdRecord records no event 'Reissued'"
    with pytest.raises(LookupError):
        event_class(MidIdRecord, "issue")


def test_an_aggregates_event_classes_are_its_own_leaves_without_the_librarys_default_created() -> None:
    names = [cls.__name__ for cls in event_classes(MidIdRecord)]
    assert sorted(names) == ["Cancelled", "Issued", "Linked"]
    assert sorted(cls.__name__ for cls in event_classes(MidIdSequence)) == ["NumberTaken", "Started"]


def test_licences_starting_the_same_day_are_taken_in_the_order_given_and_an_open_one_ends_the_search() -> (
    None
):
    assert uncovered(D(2024, 1, 1), None, [(D(2024, 1, 1), None), (D(2024, 1, 1), D(2024, 6, 30))]) == []
    assert uncovered(D(2024, 1, 1), None, [(D(2024, 1, 1), None), (D(2025, 1, 1), None)]) == []
