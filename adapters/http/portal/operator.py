"""The FOD's pages: the national kadaster view, the work list of reported devices, discrepancies, capacity."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adapters.http.portal.base import Portal, Viewer, by_field, page_number
from adapters.http.portal.chart import capacity_chart
from domain.device_events import STATUSES
from domain.identifiers import Modality
from domain.reference import (
    POPULATION_SOURCE,
    POPULATION_YEAR,
    PROVINCE_POPULATION,
    per_100k,
    province_named,
    province_population,
)
from projections import kadaster_view
from projections.queries import QueryError

PAGE = 50
FILTERS = ("institution", "modality", "province", "status", "campus")
MODALITIES = [modality.value for modality in Modality]


def _national(viewer: Viewer) -> None:
    if viewer.scope is not None:
        raise QueryError("forbidden", f"{viewer.party} reads only its own data")


class OperatorPages:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def kadaster(self, request: Request, viewer: Viewer) -> Response:
        _national(viewer)
        chosen = {name: request.query_params.get(name, "").strip() for name in FILTERS}
        filters: dict[str, Any] = {name: value for name, value in chosen.items() if value}
        number = page_number(request)
        answer = await self.portal.query(
            viewer, "devices", {**filters, "limit": str(PAGE), "offset": str((number - 1) * PAGE)}
        )
        pages = max(1, -(-answer["total"] // PAGE))

        def link(to: int) -> str:
            return "/app/kadaster?" + urlencode({**filters, "page": to})

        return self.portal.page(
            request,
            viewer,
            "kadaster.html",
            devices=answer["items"],
            total=answer["total"],
            chosen=chosen,
            modalities=MODALITIES,
            statuses=STATUSES,
            number=number,
            pages=pages,
            previous=link(number - 1) if number > 1 else None,
            next=link(number + 1) if number < pages else None,
        )

    async def worklist(self, request: Request, viewer: Viewer, **shown: Any) -> Response:
        """Devices reported by their hospital and not yet linked by the FOD, oldest first."""
        _national(viewer)
        number = page_number(request)
        answer = await self.portal.query(
            viewer,
            "devices",
            {
                "status": "reported",
                "sort": "registered_on",
                "limit": str(PAGE),
                "offset": str((number - 1) * PAGE),
            },
        )
        pages = max(1, -(-answer["total"] // PAGE))
        return self.portal.page(
            request,
            viewer,
            "worklist.html",
            status=shown.pop("http_status", 200),
            devices=answer["items"],
            total=answer["total"],
            number=number,
            pages=pages,
            previous=f"/app/worklist?page={number - 1}" if number > 1 else None,
            next=f"/app/worklist?page={number + 1}" if number < pages else None,
            may_link=viewer.kind == "fod" and viewer.has("operator", "admin"),
            **shown,
        )

    async def link(self, request: Request, viewer: Viewer) -> Response:
        _national(viewer)
        form = await request.form()
        mid_id = str(form.get("mid_id", ""))
        outcome = await self.portal.send(viewer, form, "midid.link", {"mid_id": mid_id})
        if outcome.get("status") == "accepted":
            return RedirectResponse(f"/app/worklist?linked={mid_id}", status_code=303)
        return await self.worklist(
            request, viewer, outcome=outcome, errors=by_field(outcome), failed=mid_id, http_status=400
        )

    async def discrepancies(self, request: Request, viewer: Viewer) -> Response:
        state = request.query_params.get("status") or "open"
        answer = await self.portal.query(viewer, "discrepancies", {"status": state, "limit": "500"})
        return self.portal.page(
            request, viewer, "discrepancies.html", items=answer["items"], state=state, today=answer["today"]
        )

    async def capacity(self, request: Request, viewer: Viewer) -> Response:
        modality = request.query_params.get("modality") or "MRI"
        if modality not in MODALITIES:
            raise QueryError("schema", f"{modality!r} is not a modality", "modality")
        answer = await self.portal.query(viewer, "capacity", {"modality": modality})
        rows = []
        for row in answer.get("items", []):
            population = row.get("population") or province_population(row.get("province"))
            rows.append({**row, "population": population, "per_100k": per_100k(row["devices"], population)})
        # Every province has a figure, even where no institution of it is registered yet.
        present = {province_named(row["province"]) for row in rows if row.get("province")}
        for province, population in PROVINCE_POPULATION.items():
            if province not in present:
                rows.append(
                    {
                        "province": province,
                        "devices": 0,
                        "linked": 0,
                        "population": population,
                        "per_100k": 0.0,
                    }
                )
        rows.sort(key=lambda row: (row["province"] is None, str(row["province"])))
        return self.portal.page(
            request,
            viewer,
            "capacity.html",
            rows=rows,
            modality=modality,
            modalities=MODALITIES,
            chart=capacity_chart(rows, modality),
            source=POPULATION_SOURCE,
            year=POPULATION_YEAR,
        )

    async def institutions(self, request: Request, viewer: Viewer) -> Response:
        """The institutions the FOD registered, with their campuses and their devices by status."""
        _national(viewer)
        self.portal.guard.fair_share.queries.take(viewer.party)
        queries = self.portal.queries

        def read() -> list[dict[str, Any]]:
            queries.catch_up()
            with queries.store.reading() as tx:
                return kadaster_view.list_institutions(tx)

        found = await run_in_threadpool(read)
        return self.portal.page(request, viewer, "institutions.html", institutions=found, statuses=STATUSES)
