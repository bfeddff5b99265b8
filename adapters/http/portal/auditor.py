"""The auditors' pages: a MID-ID's or round's timeline, the register as of a moment, the ledger's state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapters.http.portal.base import Portal, Viewer
from projections.queries import QueryError

PAGE = 50


LedgerState = Callable[[], dict[str, Any]]
"""Blocking: the ledger verified against the event store, with its newest signed checkpoint."""


class AuditorPages:
    def __init__(self, portal: Portal, ledger: LedgerState | None) -> None:
        self.portal = portal
        self.ledger = ledger

    async def timeline(self, request: Request, viewer: Viewer) -> Response:
        key = request.query_params.get("key", "").strip()
        answer: dict[str, Any] | None = None
        if key:
            field = "mid_id" if key.upper().replace("-", "").startswith("MID") else "round_id"
            answer = await self.portal.query(viewer, "history", {field: key, "limit": "1000"})
        return self.portal.page(request, viewer, "timeline.html", key=key, answer=answer)

    async def as_of(self, request: Request, viewer: Viewer) -> Response:
        if viewer.scope is not None:
            raise QueryError("forbidden", f"{viewer.party} reads only its own data")
        moment = request.query_params.get("moment", "").strip()
        answer = None
        if moment:
            async with self.portal.guard.fair_share.expensive(viewer.party):
                answer = await self.portal.query(viewer, "devices", {"as_of": moment, "limit": str(PAGE)})
        return self.portal.page(request, viewer, "as_of.html", moment=moment, answer=answer)

    async def ledger_page(self, request: Request, viewer: Viewer) -> Response:
        if viewer.kind not in ("auditor", "fod"):
            raise QueryError("forbidden", f"{viewer.party} does not read the ledger")
        state = None
        if self.ledger is not None:
            async with self.portal.guard.fair_share.expensive(viewer.party):
                state = await run_in_threadpool(self.ledger)
        return self.portal.page(request, viewer, "ledger.html", state=state)
