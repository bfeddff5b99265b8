"""Managing people: a hospital's local administrator grants and revokes its people's roles, the FOD any."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from adapters.http.portal.base import Portal, Viewer, by_field
from domain.access import GRANTED_BY_A_HOSPITAL, GRANTED_BY_THE_FOD, HOSPITAL_ROLES
from projections.queries import QueryError

DONE_PAGE = 200
"""Events of the hospital looked through on one page of "who did what"."""


def _manager(viewer: Viewer) -> None:
    if not (viewer.has("local-admin") and viewer.kind == "hospital") and not (
        viewer.kind == "fod" and viewer.has("admin", "operator")
    ):
        raise QueryError("forbidden", f"{viewer.person} does not manage people of {viewer.party}")


class PeoplePages:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def people(self, request: Request, viewer: Viewer, **shown: Any) -> Response:
        _manager(viewer)
        state = request.query_params.get("status") or "current"
        filters = {"status": state, "limit": "500"}
        if viewer.kind == "hospital":
            filters["party"] = viewer.party
        grants = await self.portal.query(viewer, "access", filters)
        done, number, more = None, 1, False
        if viewer.institution is not None:
            # The hospital's events in the order recorded, a page at a time; those a person entered.
            try:
                number = max(1, int(request.query_params.get("done", "1")))
            except ValueError:
                number = 1
            page = {"limit": str(DONE_PAGE + 1), "offset": str((number - 1) * DONE_PAGE)}
            history = await self.portal.query(viewer, "history", {"institution": viewer.institution, **page})
            more = len(history["items"]) > DONE_PAGE
            done = [item for item in history["items"][:DONE_PAGE] if item.get("person")]
        roles = GRANTED_BY_A_HOSPITAL if viewer.kind == "hospital" else (*GRANTED_BY_THE_FOD, *HOSPITAL_ROLES)
        return self.portal.page(
            request,
            viewer,
            "people.html",
            status=shown.pop("http_status", 200),
            grants=grants["items"],
            state=state,
            roles=sorted(set(roles)),
            done=done,
            number=number,
            pages=number + 1 if more else number,
            previous=f"/app/people?done={number - 1}" if number > 1 else None,
            next=f"/app/people?done={number + 1}" if more else None,
            fixed_party=viewer.party if viewer.kind == "hospital" else None,
            **shown,
        )

    async def grant(self, request: Request, viewer: Viewer) -> Response:
        _manager(viewer)
        form = await request.form()
        data: dict[str, Any] = {
            name: str(form.get(name, "")).strip() for name in ("person", "name", "party", "role")
        }
        if viewer.kind == "hospital":
            data["party"] = viewer.party
        until = str(form.get("until", "")).strip()
        if until:
            data["until"] = until
        outcome = await self.portal.send(viewer, form, "access.grant", data)
        if outcome.get("status") == "accepted":
            return RedirectResponse("/app/people?granted=1", status_code=303)
        return await self.people(
            request, viewer, outcome=outcome, errors=by_field(outcome), values=data, http_status=400
        )

    async def revoke(self, request: Request, viewer: Viewer) -> Response:
        _manager(viewer)
        form = await request.form()
        data = {name: str(form.get(name, "")).strip() for name in ("person", "party", "role", "reason")}
        outcome = await self.portal.send(viewer, form, "access.revoke", data)
        if outcome.get("status") == "accepted":
            return RedirectResponse("/app/people?revoked=1", status_code=303)
        return await self.people(
            request, viewer, outcome=outcome, revoke_errors=by_field(outcome), http_status=400
        )
