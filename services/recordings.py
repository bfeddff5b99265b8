"""Recording time at transaction granularity: each store transaction's moment and the positions it covers.

Every transaction that records events also records one row in `kadaster_recordings` (written by the
register's recorders, `services.recorders`): its first and last position in the notification log
and the moment it was recorded (the clock at commit, never earlier than the previous transaction's
moment, so moments rise with positions). "As of T" means every transaction recorded at or before T,
and nothing of a later one: a question is only ever cut between transactions, never inside one.

Stores written before this table existed are migrated when the register opens, in one go: the
events of one command (with the bookkeeping before them) form one transaction, its moment the
latest of their timestamps, made monotonic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.recorders import RecordsTransactions, moment_text


@dataclass(frozen=True)
class Recording:
    """One store transaction: positions `first`..`last`, recorded at `moment`."""

    first: int
    last: int
    moment: str


class Recordings:
    """The transactions of a register's store, read through its recorder."""

    def __init__(self, recorder: RecordsTransactions) -> None:
        self.recorder = recorder

    def between(self, after: int, through: int) -> list[Recording]:
        """The transactions that recorded any position in (`after`, `through`], in log order."""
        return [Recording(*row) for row in self.recorder.select_recordings(after, through)]

    def cut(self, moment: datetime) -> int:
        """The last position of the last transaction recorded at or before `moment` (0: none)."""
        return self.recorder.select_cut(moment_text(moment))

    def migrate(
        self, head: int, select: Callable[..., Any], decode: Callable[[Any], Any], page: int = 5000
    ) -> int:
        """Writes the transactions of the events recorded before the table existed; returns how many."""
        first = self.recorder.select_first_recorded()
        until = head if first is None else first - 1
        if until <= 0:
            return 0
        rows: list[tuple[int, int, str]] = []
        group: list[tuple[int, str]] = []
        floor = ""
        command: str | None = None
        # Bookkeeping without a command id (a number taken) goes with the command that follows it.
        unclaimed: list[tuple[int, str]] = []
        start = 0
        while start < until:
            notifications = select(start=start, limit=page, stop=until, inclusive_of_start=False)
            if not notifications:
                break
            for notification in notifications:
                event = decode(notification)
                entry = (notification.id, moment_text(event.timestamp))
                key = getattr(event, "command_id", None)
                if not key:
                    unclaimed.append(entry)
                    continue
                if group and key != command:
                    floor = _close(group, floor, rows)
                command = key
                group.extend(unclaimed)
                unclaimed.clear()
                group.append(entry)
            start = notifications[-1].id
        group.extend(unclaimed)
        if group:
            _close(group, floor, rows)
        self.recorder.insert_recordings(rows)
        return len(rows)


def _close(group: list[tuple[int, str]], floor: str, out: list[tuple[int, int, str]]) -> str:
    moment = max(floor, *(at for _, at in group))
    out.append((group[0][0], group[-1][0], moment))
    group.clear()
    return moment
