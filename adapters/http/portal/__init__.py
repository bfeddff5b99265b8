"""The web application's pages for hospitals, the FOD, the VAZG and auditors, in Dutch, French and English."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http.api import CommandSender
from adapters.http.auth import Guard
from adapters.http.portal.auditor import AuditorPages, LedgerState
from adapters.http.portal.base import Portal, SignIn, signed_in
from adapters.http.portal.hospital import HospitalPages
from adapters.http.portal.i18n import LANGUAGES, choose
from adapters.http.portal.operator import OperatorPages
from adapters.http.portal.people import PeoplePages
from adapters.http.portal.render import language
from adapters.http.portal.rounds import RoundPages
from projections.queries import Queries

LANGUAGE_COOKIE = "kadaster_language"
YEAR = 365 * 24 * 3600


class LanguageMiddleware:
    """Every request is answered in the language switched to, else the browser's, else English."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:
            cookies = SimpleCookie()
        switched = cookies[LANGUAGE_COOKIE].value if LANGUAGE_COOKIE in cookies else None
        token = language.set(choose(switched, headers.get("accept-language")))
        try:
            await self.app(scope, receive, send)
        finally:
            language.reset(token)


def _local(path: str | None) -> str:
    """Only a path on this site is a place to go back to."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


async def switch_language(request: Request) -> Response:
    chosen = str(request.path_params["code"])
    response = RedirectResponse(_local(request.query_params.get("back")), status_code=303)
    if chosen in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=YEAR, samesite="lax", httponly=True, path="/")
    return response


def add_portal_routes(
    app: FastAPI,
    signin: SignIn,
    guard: Guard,
    queries: Queries,
    commands: CommandSender | None,
    ledger: LedgerState | None = None,
) -> Portal:
    """The pages, registered before the sign-in's own routes so the start page and `/midid` are these."""
    portal = Portal(signin, guard, queries, commands)
    hospital = HospitalPages(portal)
    operator = OperatorPages(portal)
    rounds = RoundPages(portal)
    auditor = AuditorPages(portal, ledger)
    people = PeoplePages(portal)

    def route(path: str, handler: Callable[..., Awaitable[Response]], method: str = "GET") -> None:
        app.add_api_route(
            path,
            signed_in(portal, handler),
            methods=[method],
            include_in_schema=False,
            response_model=None,
        )

    pages: list[tuple[str, Any, str]] = [
        ("/", hospital.start, "GET"),
        ("/midid", hospital.request_mid_id, "POST"),
        ("/app/midid/cancel", hospital.cancel, "POST"),
        ("/app/devices", hospital.devices, "GET"),
        ("/app/devices/{mid_id}", hospital.device, "GET"),
        ("/app/devices/{mid_id}/change", hospital.change, "POST"),
        ("/app/devices/{mid_id}/decommission", hospital.decommission, "POST"),
        ("/app/report", hospital.report_form, "GET"),
        ("/app/report", hospital.report, "POST"),
        ("/app/export.xlsx", hospital.export, "GET"),
        ("/app/discrepancies", operator.discrepancies, "GET"),
        ("/app/kadaster", operator.kadaster, "GET"),
        ("/app/worklist", operator.worklist, "GET"),
        ("/app/worklist/link", operator.link, "POST"),
        ("/app/capacity", operator.capacity, "GET"),
        ("/app/institutions", operator.institutions, "GET"),
        ("/app/people", people.people, "GET"),
        ("/app/people/grant", people.grant, "POST"),
        ("/app/people/revoke", people.revoke, "POST"),
        ("/app/rounds", rounds.rounds, "GET"),
        ("/app/rounds/{round_id}", rounds.round, "GET"),
        ("/app/timeline", auditor.timeline, "GET"),
        ("/app/as-of", auditor.as_of, "GET"),
        ("/app/ledger", auditor.ledger_page, "GET"),
    ]
    for path, handler, method in pages:
        route(path, handler, method)
    app.add_api_route(
        "/language/{code}", switch_language, methods=["GET"], include_in_schema=False, response_model=None
    )
    app.mount("/static", StaticFiles(packages=[("adapters.http.portal", "static")]), name="static")
    app.add_middleware(LanguageMiddleware)
    return portal
