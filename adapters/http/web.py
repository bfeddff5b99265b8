"""The web application's sign-in: local accounts or OpenID Connect, signed sessions, CSRF on every form."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from adapters.config import Settings
from adapters.http.api import CommandSender
from adapters.http.auth import SESSION_COOKIE, Guard
from adapters.http.oidc import OidcClient, OidcError
from adapters.http.portal import add_portal_routes
from adapters.http.portal.render import render
from adapters.ledger.runner import open_ledger
from projections.queries import Queries

log = structlog.get_logger("kadaster.web")

SIGNIN_COOKIE = "kadaster_signin"
OIDC_COOKIE = "kadaster_oidc"
FORM_SECONDS = 600
"""How long a sign-in form, or a trip to the identity provider, stays valid."""


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the reader's language, from the web application's templates."""
    return HTMLResponse(render(name, **context), status_code=status)


@dataclass
class SignInThrottle:
    """After `attempts` failures of one account or one address, sign-in pauses for `pause` seconds."""

    attempts: int
    pause: float
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def wait(self, keys: list[str], now: float | None = None) -> float:
        """Seconds to wait before another attempt (0: go ahead)."""
        now = time.monotonic() if now is None else now
        longest = 0.0
        for key in keys:
            recent = [t for t in self._failures.get(key, []) if now - t < self.pause]
            self._failures[key] = recent
            if len(recent) >= self.attempts:
                longest = max(longest, self.pause - (now - recent[-self.attempts]))
        return longest

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


class WebApplication:
    """The sign-in pages; the pages behind them are the portal's, every rule stays with the guard."""

    def __init__(
        self,
        guard: Guard,
        queries: Queries,
        commands: CommandSender | None,
        settings: Settings,
        oidc: OidcClient | None,
    ) -> None:
        self.guard = guard
        self.queries = queries
        self.commands = commands
        self.oidc = oidc
        self.sessions = guard.sessions
        self.forms = URLSafeTimedSerializer(guard.sessions.secret, salt="kadaster-signin")
        self.trips = URLSafeTimedSerializer(guard.sessions.secret, salt="kadaster-oidc")
        self.throttle = SignInThrottle(settings.signin_attempts, settings.signin_pause_seconds)

    # sessions

    def session_of(self, request: Request) -> dict[str, Any] | None:
        return self.sessions.decode(request.cookies.get(SESSION_COOKIE))

    def with_session(self, response: Response, session: dict[str, Any]) -> Response:
        session = {**session, "seen": time.time()}
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.encode(session),
            max_age=int(self.sessions.absolute_seconds),
            **self.sessions.cookie_options(),
        )
        return response

    async def start_session(self, person: str, party: str) -> Response:
        roles = await run_in_threadpool(self.guard.roles_of, person, party)
        if not roles:
            return await self.signin_page(problem="no_role", status=403)
        log.info("signed_in", person=person, party=party)
        return self.with_session(RedirectResponse("/", status_code=303), self.sessions.new(person, party))

    # pages

    async def signin_page(self, problem: str | None = None, status: int = 200, **extra: Any) -> Response:
        csrf = secrets.token_urlsafe(24)
        response = page(
            "signin.html", status, csrf=csrf, problem=problem, oidc=self.oidc is not None, **extra
        )
        response.set_cookie(
            SIGNIN_COOKIE, self.forms.dumps(csrf), max_age=FORM_SECONDS, **self.sessions.cookie_options()
        )
        return response

    # forms

    def form_csrf_ok(self, request: Request, form: Any) -> bool:
        try:
            expected = self.forms.loads(request.cookies.get(SIGNIN_COOKIE, ""), max_age=FORM_SECONDS)
        except BadSignature:
            return False
        return isinstance(expected, str) and secrets.compare_digest(expected, str(form.get("csrf", "")))

    async def sign_in(self, request: Request) -> Response:
        form = await request.form()
        if not self.form_csrf_ok(request, form):
            return await self.signin_page(problem="expired", status=403)
        login = str(form.get("login", "")).strip()
        address = request.client.host if request.client else "unknown"
        keys = [f"login:{login}", f"address:{address}"]
        wait = self.throttle.wait(keys)
        if wait > 0:
            response = await self.signin_page(problem="throttled", status=429, retry_after=int(wait) + 1)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        account = await run_in_threadpool(
            self.guard.credentials.check_password, login, str(form.get("password", ""))
        )
        if account is None:
            self.throttle.failed(keys)
            log.info("signin_failed", login=login[:200], address=address)
            return await self.signin_page(problem="wrong", status=401)
        self.throttle.succeeded(keys[0])
        return await self.start_session(account.login, account.party)

    async def sign_out(self, request: Request) -> Response:
        session = self.session_of(request)
        form = await request.form()
        if session is not None and not secrets.compare_digest(session["csrf"], str(form.get("csrf", ""))):
            return RedirectResponse("/", status_code=303)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # OpenID Connect

    async def oidc_login(self, request: Request) -> Response:
        assert self.oidc is not None
        try:
            url, trip = await self.oidc.authorization_url()
        except OidcError as error:
            log.warning("oidc_unavailable", error=str(error))
            return await self.signin_page(problem="provider", status=502)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            OIDC_COOKIE, self.trips.dumps(trip), max_age=FORM_SECONDS, **self.sessions.cookie_options()
        )
        return response

    async def oidc_callback(self, request: Request) -> Response:
        assert self.oidc is not None
        try:
            trip = self.trips.loads(request.cookies.get(OIDC_COOKIE, ""), max_age=FORM_SECONDS)
            person = await self.oidc.person(trip, dict(request.query_params))
        except (BadSignature, OidcError) as error:
            log.info("oidc_signin_failed", error=str(error)[:300])
            return await self.signin_page(problem="provider", status=401)
        party = await run_in_threadpool(self.party_of, person)
        if party is None:
            return await self.signin_page(problem="no_role", status=403)
        response = await self.start_session(person, party)
        response.delete_cookie(OIDC_COOKIE, path="/")
        return response

    def party_of(self, person: str) -> str | None:
        """The party a person signed in through the provider acts for: the first they hold a role of."""
        items = self.queries.run("access", {"person": person, "status": "current"})["items"]
        return str(items[0]["party"]) if items else None


def add_web_routes(
    app: FastAPI,
    guard: Guard,
    queries: Queries,
    commands: CommandSender | None,
    settings: Settings,
    public_url: str,
) -> WebApplication:
    oidc = None
    if settings.oidc_issuer:
        oidc = OidcClient(
            settings.oidc_issuer,
            settings.oidc_client_id or "",
            settings.oidc_client_secret or "",
            f"{public_url.rstrip('/')}/auth/callback",
        )
    web = WebApplication(guard, queries, commands, settings, oidc)

    def html(path: str, endpoint: Callable[..., Any], method: str) -> None:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False, response_model=None)

    def ledger_state() -> dict[str, Any]:
        """The ledger verified against the event store (signatures are checked by `audit verify`)."""
        report: dict[str, Any] = open_ledger(guard.register, settings, signing=False).verify().as_dict()
        return report

    add_portal_routes(app, web, guard, queries, commands, ledger_state)

    async def signin(request: Request) -> Response:
        return await web.signin_page()

    html("/signin", signin, "GET")
    html("/signin", web.sign_in, "POST")
    html("/signout", web.sign_out, "POST")
    if oidc is not None:
        html("/auth/login", web.oidc_login, "GET")
        html("/auth/callback", web.oidc_callback, "GET")
    return web
