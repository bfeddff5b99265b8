"""Fair share between parties: a rate per party for commands and queries, a bound on expensive queries."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

BURST = 5.0
"""A party may spend this many seconds' (commands: minutes') worth of its rate at once."""


def is_expensive(name: str, filters: dict[str, Any]) -> bool:
    """As-of reads (of row versions), long histories and whole institutions' histories cost more
    than a page."""
    if filters.get("as_of"):
        return True
    if name == "history":
        try:
            return int(filters.get("limit", 100)) > 100 or not (
                filters.get("mid_id") or filters.get("round_id")
            )
        except (TypeError, ValueError):
            return False
    return False


class RateLimited(Exception):
    """A party is over its quota; `retry_after` says in how many seconds it may try again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class TokenBuckets:
    """One bucket per party, refilled at `rate` per second up to `capacity`."""

    rate: float
    capacity: float
    what: str
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, party: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(party)
        if bucket is None:
            bucket = self._buckets[party] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            raise RateLimited(
                f"{party} is over its quota of {self.what}; try again later", (1 - bucket.tokens) / self.rate
            )
        bucket.tokens -= 1


class FairShare:
    """What the HTTP API lets each party have, so that no party holds up another."""

    def __init__(
        self,
        commands_per_minute: float = 60.0,
        queries_per_second: float = 20.0,
        expensive_per_party: int = 2,
        expensive_total: int = 2,
    ) -> None:
        self.commands = TokenBuckets(
            commands_per_minute / 60,
            commands_per_minute * BURST,
            f"{commands_per_minute:g} commands a minute",
        )
        self.queries = TokenBuckets(
            queries_per_second, queries_per_second * BURST, f"{queries_per_second:g} queries a second"
        )
        self.expensive_per_party = expensive_per_party
        self._running: dict[str, int] = {}
        self._total = asyncio.Semaphore(expensive_total)
        self.expensive_total = expensive_total

    @contextlib.asynccontextmanager
    async def expensive(self, party: str) -> AsyncIterator[None]:
        """Holds one of the party's places for an expensive query; none free: refused at once.

        A party over its bound is refused rather than queued, so a flood from one party never
        builds a queue in front of another's; the shared bound queues briefly, in arrival order.
        """
        running = self._running.get(party, 0)
        if running >= self.expensive_per_party:
            raise RateLimited(
                f"{party} already runs {running} expensive queries (as-of, exports, long histories); "
                "wait for one to finish",
                1,
            )
        self._running[party] = running + 1
        try:
            try:
                await asyncio.wait_for(self._total.acquire(), timeout=10)
            except TimeoutError:
                raise RateLimited("the register is busy with expensive queries; try again later", 5) from None
            try:
                yield
            finally:
                self._total.release()
        finally:
            self._running[party] -= 1
            if not self._running[party]:
                del self._running[party]
