"""What a device's holders owe the register and by when: the reporting deadlines and licence coverage."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, timedelta

DAYS_TO_LINK = 30
"""A reported device is linked by the FOD within this many days of its report."""

MONTHS_UNLINKED = 12
"""A MID-ID is used (linked) or cancelled within this many months of being issued."""

DAY = timedelta(days=1)

Interval = tuple[date, date | None]
"""From and until, both inclusive; no end: still running."""

DEADLINES = (
    f"reported but not linked for more than {DAYS_TO_LINK} days (not_linked), "
    f"MID-ID unused for more than {MONTHS_UNLINKED} months (midid_unlinked)"
)
"""The deadlines as the console's help states them."""


def after_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has no such day)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def link_overdue_on(reported_on: date) -> date:
    """The first day a device reported that day is overdue for linking."""
    return reported_on + timedelta(days=DAYS_TO_LINK + 1)


def unused_overdue_on(issued_on: date) -> date:
    """The first day a MID-ID issued that day is overdue for use."""
    return after_months(issued_on, MONTHS_UNLINKED) + DAY


def uncovered(start: date, end: date | None, covers: Iterable[Interval]) -> list[Interval]:
    """The parts of [start, end] (inclusive; None: open) that no licence in `covers` covers."""
    gaps: list[Interval] = []
    cursor: date | None = start
    for cover_from, cover_until in sorted(covers, key=lambda c: c[0]):
        if cursor is None or (end is not None and cursor > end):
            break
        if cover_until is not None and cover_until < cursor:
            continue
        if cover_from > cursor:
            gap_end = cover_from - DAY if end is None else min(cover_from - DAY, end)
            gaps.append((cursor, gap_end))
        cursor = None if cover_until is None else max(cursor, cover_until + DAY)
    if cursor is not None and (end is None or cursor <= end):
        gaps.append((cursor, end))
    return gaps


def licensed_on(covers: Iterable[Interval], day: date | None) -> bool:
    """Some licence covers that day; without a day, some licence runs without an end."""
    if day is None:
        return any(until is None for _, until in covers)
    return not uncovered(day, day, covers)
