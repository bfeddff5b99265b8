"""What every page shares: who reads it, the queries in their scope, forms sent as commands exactly once."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adapters.fair_share import RateLimited
from adapters.http.api import CommandSender
from adapters.http.auth import Forbidden, Guard, Principal
from adapters.http.portal.render import render
from domain.access import WHOLE_REGISTER
from projections.queries import Queries, QueryError

log = structlog.get_logger("kadaster.portal")

MAX_ENVELOPE_ID = 128


class SignIn(Protocol):
    """The sign-in's sessions, as the web application's sign-in keeps them."""

    def session_of(self, request: Request) -> dict[str, Any] | None: ...

    def with_session(self, response: Response, session: dict[str, Any]) -> Response: ...


@dataclass(frozen=True)
class Viewer:
    """The signed-in person reading a page, for one party, with the roles in force right now."""

    principal: Principal
    session: dict[str, Any]

    @property
    def person(self) -> str:
        assert self.principal.person is not None
        return self.principal.person

    @property
    def party(self) -> str:
        return self.principal.party

    @property
    def roles(self) -> frozenset[str]:
        return self.principal.roles

    @property
    def institution(self) -> str | None:
        """The hospital this person acts for (None for authorities and auditors)."""
        kind, _, institution = self.party.partition("/")
        return institution if kind == "hospital" else None

    @property
    def kind(self) -> str:
        return "auditor" if self.party == WHOLE_REGISTER else self.principal.kind

    @property
    def scope(self) -> str | None:
        """Queries run as the hospital when a hospital's person asks; nationally otherwise."""
        return None if self.principal.reads_nationally else self.institution

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


def navigation(viewer: Viewer) -> list[tuple[str, str]]:
    """The pages this person may open, as (path, English label)."""
    if viewer.kind == "hospital":
        items = [("/", "MID-IDs"), ("/app/devices", "Devices")]
        if viewer.has("reporter"):
            items.append(("/app/report", "Report a device"))
        items += [("/app/discrepancies", "Discrepancies"), ("/app/export.xlsx", "Download (XLSX)")]
        if viewer.has("local-admin"):
            items.append(("/app/people", "People"))
        return items
    if viewer.kind == "auditor":
        return [
            ("/app/timeline", "Timeline"),
            ("/app/as-of", "Register as of"),
            ("/app/ledger", "Ledger"),
            ("/app/kadaster", "Kadaster"),
            ("/app/rounds", "Rounds"),
        ]
    items = [("/app/kadaster", "Kadaster")]
    if viewer.kind == "fod":
        items += [
            ("/app/worklist", "Work list"),
            ("/app/discrepancies", "Discrepancies"),
            ("/app/institutions", "Institutions"),
            ("/app/people", "People"),
        ]
    items += [("/app/capacity", "Capacity"), ("/app/rounds", "Rounds")]
    return items


class Portal:
    """The pages' shared services; every rule stays with the guard, the queries and the commands."""

    def __init__(
        self, signin: SignIn, guard: Guard, queries: Queries, commands: CommandSender | None
    ) -> None:
        self.signin = signin
        self.guard = guard
        self.queries = queries
        self.commands = commands

    async def viewer(self, request: Request) -> Viewer | None:
        session = self.signin.session_of(request)
        if session is None:
            return None
        roles = await run_in_threadpool(self.guard.roles_of, session["person"], session["party"])
        return Viewer(Principal(session["party"], session["person"], roles, session["csrf"]), session)

    def page(
        self, request: Request, viewer: Viewer, template: str, status: int = 200, **context: Any
    ) -> Response:
        html = render(
            template,
            viewer=viewer,
            csrf=viewer.principal.csrf,
            navigation=navigation(viewer),
            path=request.url.path,
            request_args=request.query_params,
            here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            envelope=lambda: str(uuid.uuid4()),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return self.signin.with_session(response, viewer.session)

    async def query(self, viewer: Viewer, name: str, filters: dict[str, Any] | None = None) -> Any:
        """A query in the viewer's scope: a hospital's person sees only their hospital's data."""
        try:
            viewer.principal.check_reads(viewer.scope)
        except Forbidden as error:
            raise QueryError("forbidden", str(error)) from None
        self.guard.fair_share.queries.take(viewer.party)
        return await run_in_threadpool(self.queries.run, name, filters or {}, viewer.scope)

    async def send(self, viewer: Viewer, form: Any, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """Sends a form as a command of the viewer's party carrying the person, under the form's envelope
        id: a form sent twice is one command. Refusals come back as a rejected outcome."""
        if self.commands is None:
            return refused("forbidden", "this server takes no commands")
        if not secrets.compare_digest(str(viewer.principal.csrf), str(form.get("csrf", ""))):
            return refused("forbidden", "the form expired: reload the page")
        envelope = str(form.get("envelope") or "").strip()
        if not 0 < len(envelope) <= MAX_ENVELOPE_ID:
            envelope = str(uuid.uuid4())
        try:
            await run_in_threadpool(self.guard.check_person_sends, viewer.principal, type_)
            self.guard.fair_share.commands.take(viewer.party)
        except Forbidden as error:
            return refused("forbidden", str(error))
        except RateLimited as error:
            return refused("rate_limited", str(error))
        outcome = await self.commands.send(viewer.party, viewer.person, type_, data, envelope)
        log.info("web_command", type=type_, person=viewer.person, status=outcome.get("status"))
        return outcome


def page_number(request: Request) -> int:
    """The `page` asked for in the query string: 1 when absent, not a number or below 1."""
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def refused(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """An outcome the page itself gives, in the pipeline's shape, for a form that cannot be sent."""
    return {"status": "rejected", "errors": [{"code": code, "message": message, "field": field}]}


def by_field(outcome: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """An outcome's errors by the form field they concern ("" for the form as a whole)."""
    shown: dict[str, list[dict[str, Any]]] = {}
    for error in (outcome or {}).get("errors") or []:
        field = str(error.get("field") or "")
        for prefix in ("data.changes.", "data."):
            field = field.removeprefix(prefix)
        shown.setdefault(field, []).append(error)
    return shown


Handler = Callable[[Request, Viewer], Awaitable[Response]]


def signed_in(portal: Portal, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in people: others go to the sign-in; no failure shows more than its code."""

    async def endpoint(request: Request) -> Response:
        began = time.perf_counter()
        response = await answer(request)
        # How long the page took on the server, for the browser's tools and the benchmark.
        response.headers["Server-Timing"] = f"page;dur={(time.perf_counter() - began) * 1000:.2f}"
        return response

    async def answer(request: Request) -> Response:
        viewer = await portal.viewer(request)
        if viewer is None:
            return RedirectResponse("/signin", status_code=303)
        try:
            if not viewer.roles:
                raise QueryError("forbidden", f"{viewer.person} holds no role of {viewer.party} in force")
            return await handler(request, viewer)
        except QueryError as error:
            status = 403 if error.detail.code == "forbidden" else 400
            return portal.page(request, viewer, "problem.html", status, code=error.detail.code)
        except RateLimited:
            return portal.page(request, viewer, "problem.html", 429, code="rate_limited")
        except Exception:
            log.exception("web_page_failed", path=request.url.path)
            return portal.page(request, viewer, "problem.html", 500, code="internal_error")

    return endpoint
