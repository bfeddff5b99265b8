"""A hospital's pages: its MID-IDs, its devices with where each field came from, reports and changes."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adapters.files.exports import write_kadaster_xlsx
from adapters.http.portal.base import Portal, Viewer, by_field, navigation, page_number, refused
from domain.identifiers import Modality
from projections.queries import MAX_PAGE, QueryError

DEVICE_FIELDS = ("manufacturer", "model", "serial_number", "campus", "installed_on", "use")
"""The fields a hospital states about a device, in the order its forms ask them."""
USES = ("clinical", "research", "mixed")
PAGE = 100
"""MID-IDs on one page of a hospital's start page."""
MODALITIES = [modality.value for modality in Modality]


def _hospital(viewer: Viewer) -> str:
    if viewer.institution is None:
        raise QueryError("forbidden", f"{viewer.party} is not a hospital")
    return viewer.institution


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class HospitalPages:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def start(self, request: Request, viewer: Viewer, **shown: Any) -> Response:
        """A hospital's person starts at its MID-IDs; everybody else at their first page."""
        if viewer.kind != "hospital":
            return RedirectResponse(navigation(viewer)[0][0], status_code=303)
        _hospital(viewer)
        status = request.query_params.get("status") or None
        chosen = {"status": status} if status else {}
        number = page_number(request)
        page = {"limit": str(PAGE + 1), "offset": str((number - 1) * PAGE)}
        midids = await self.portal.query(viewer, "midids", {**page, **chosen})
        more = len(midids["items"]) > PAGE

        def link(to: int) -> str:
            return "/?" + urlencode({**chosen, "page": to})

        return self.portal.page(
            request,
            viewer,
            "hospital_midids.html",
            status=shown.pop("http_status", 200),
            midids=midids["items"][:PAGE],
            shown_status=status,
            number=number,
            pages=number + 1 if more else number,
            previous=link(number - 1) if number > 1 else None,
            next=link(number + 1) if more else None,
            modalities=MODALITIES,
            may_request=viewer.has("requester"),
            may_report=viewer.has("reporter"),
            **shown,
        )

    async def request_mid_id(self, request: Request, viewer: Viewer) -> Response:
        _hospital(viewer)
        form = await request.form()
        modality = str(form.get("modality", ""))
        outcome = await self.portal.send(viewer, form, "midid.issue", {"modality": modality})
        if outcome.get("status") == "accepted":
            return await self.start(request, viewer, mid_id=outcome["result"]["mid_id"])
        return await self.start(request, viewer, outcome=outcome, errors=by_field(outcome), http_status=400)

    async def cancel(self, request: Request, viewer: Viewer) -> Response:
        _hospital(viewer)
        form = await request.form()
        data = {"mid_id": str(form.get("mid_id", "")), "reason": str(form.get("reason", "")).strip()}
        outcome = await self.portal.send(viewer, form, "midid.cancel", data)
        if outcome.get("status") == "accepted":
            return await self.start(request, viewer, cancelled=data["mid_id"])
        return await self.start(request, viewer, outcome=outcome, errors=by_field(outcome), http_status=400)

    # devices

    async def devices(self, request: Request, viewer: Viewer) -> Response:
        _hospital(viewer)
        devices = await self.portal.query(viewer, "devices", {"limit": "500"})
        return self.portal.page(request, viewer, "hospital_devices.html", devices=devices["items"])

    async def device(self, request: Request, viewer: Viewer, **shown: Any) -> Response:
        mid_id = str(request.path_params["mid_id"])
        device = await self.portal.query(viewer, "device", {"mid_id": mid_id})
        history = await self.portal.query(
            viewer, "history", {"mid_id": device["mid_id"], "limit": str(MAX_PAGE)}
        )
        people = {item["command_id"]: item["person"] for item in history["items"] if item.get("person")}
        for said in device["provenance"].values():
            if isinstance(said, dict) and said.get("command_id") in people:
                said["person"] = people[said["command_id"]]
        return self.portal.page(
            request,
            viewer,
            "device.html",
            status=shown.pop("http_status", 200),
            device=device,
            fields=DEVICE_FIELDS,
            uses=USES,
            today=_today(),
            may_report=viewer.has("reporter") and viewer.institution == device["institution"],
            **shown,
        )

    async def report_form(self, request: Request, viewer: Viewer, **shown: Any) -> Response:
        _hospital(viewer)
        midids = await self.portal.query(viewer, "midids", {"status": "issued", "limit": "500"})
        free = [item for item in midids["items"] if item["free"]]
        chosen = shown.pop("values", None) or {"mid_id": request.query_params.get("mid_id", "")}
        return self.portal.page(
            request,
            viewer,
            "report.html",
            status=shown.pop("http_status", 200),
            free=free,
            values=chosen,
            uses=USES,
            today=_today(),
            **shown,
        )

    async def report(self, request: Request, viewer: Viewer) -> Response:
        _hospital(viewer)
        form = await request.form()
        values = {name: str(form.get(name, "")).strip() for name in ("mid_id", *DEVICE_FIELDS)}
        midids = await self.portal.query(viewer, "midids", {"limit": str(MAX_PAGE)})
        modality = next((m["modality"] for m in midids["items"] if m["mid_id"] == values["mid_id"]), None)
        data: dict[str, Any] = {**values, "modality": modality or ""}
        outcome = await self.portal.send(viewer, form, "device.report", data)
        if outcome.get("status") == "accepted":
            return RedirectResponse(f"/app/devices/{values['mid_id']}?reported=1", status_code=303)
        return await self.report_form(
            request, viewer, values=values, outcome=outcome, errors=by_field(outcome), http_status=400
        )

    async def change(self, request: Request, viewer: Viewer) -> Response:
        """Only the fields whose value differs from what the form was filled with are sent."""
        _hospital(viewer)
        mid_id = str(request.path_params["mid_id"])
        form = await request.form()
        changes: dict[str, Any] = {}
        for name in DEVICE_FIELDS:
            now, was = str(form.get(name, "")).strip(), str(form.get(f"was_{name}", "")).strip()
            if now != was:
                changes[name] = now or None
        if not changes:
            outcome = refused("nothing_changed", "no field differs from the register", "changes")
        else:
            data = {"mid_id": mid_id, "changes": changes, "effective_on": str(form.get("effective_on", ""))}
            outcome = await self.portal.send(viewer, form, "device.change", data)
        if outcome.get("status") == "accepted":
            return RedirectResponse(f"/app/devices/{mid_id}?changed=1", status_code=303)
        return await self.device(request, viewer, outcome=outcome, errors=by_field(outcome), http_status=400)

    async def decommission(self, request: Request, viewer: Viewer) -> Response:
        _hospital(viewer)
        mid_id = str(request.path_params["mid_id"])
        form = await request.form()
        data = {
            "mid_id": mid_id,
            "effective_on": str(form.get("effective_on", "")),
            "reason": str(form.get("reason", "")).strip(),
        }
        outcome = await self.portal.send(viewer, form, "device.decommission", data)
        if outcome.get("status") == "accepted":
            return RedirectResponse(f"/app/devices/{mid_id}?decommissioned=1", status_code=303)
        return await self.device(
            request, viewer, outcome=outcome, decommission_errors=by_field(outcome), http_status=400
        )

    async def export(self, request: Request, viewer: Viewer) -> Response:
        institution = _hospital(viewer)
        rows: list[dict[str, Any]] = []
        while True:
            page = await self.portal.query(
                viewer, "devices", {"limit": str(MAX_PAGE), "offset": str(len(rows))}
            )
            rows += page["items"]
            if len(rows) >= page["total"] or not page["items"]:
                break
        out = io.BytesIO()
        await run_in_threadpool(write_kadaster_xlsx, rows, out)
        return Response(
            out.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="kadaster-{institution}.xlsx"'},
        )
