"""The allocation rounds' pages: rounds, applications, the ranking, each decision with its sentence."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapters.http.portal.base import Portal, Viewer
from services.rounds import verify_rounds


def tables(ranking: Any) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    """A ranking's lists of records as (name, columns, rows), whatever the programme's policy."""
    found: list[tuple[str, list[str], list[dict[str, Any]]]] = []
    if not isinstance(ranking, dict):
        return found
    for name, value in ranking.items():
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            columns = list(dict.fromkeys(key for row in value for key in row))
            found.append((name, columns, value))
    return found


class RoundPages:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def rounds(self, request: Request, viewer: Viewer) -> Response:
        answer = await self.portal.query(viewer, "rounds", {})
        return self.portal.page(request, viewer, "rounds.html", rounds=answer["items"])

    async def round(self, request: Request, viewer: Viewer) -> Response:
        round_id = str(request.path_params["round_id"])
        shown = await self.portal.query(viewer, "rounds", {"round_id": round_id})
        verification = None
        if viewer.kind in ("vazg", "auditor", "fod"):
            reports = await run_in_threadpool(verify_rounds, self.portal.queries.register, round_id)
            verification = reports[0] if reports else None
        listed = tables({"applications": shown.get("applications")})
        applications = (listed[0][1], listed[0][2]) if listed else None
        return self.portal.page(
            request,
            viewer,
            "round.html",
            round=shown,
            ranking=tables(shown.get("ranking")),
            applications=applications,
            verification=verification,
        )
