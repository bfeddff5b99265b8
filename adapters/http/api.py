"""The HTTP API: the contract's queries, answered like their NATS subjects, and commands over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.contract.docs import COMMON_QUERY_FILTERS, CONTRACT_VERSION, QueryErrors, query_filters_schema
from adapters.fair_share import RateLimited, is_expensive
from adapters.http.auth import Forbidden, Guard, Principal, Unauthorized
from adapters.nats.client import command_envelope
from adapters.nats.gateway import CommandGateway
from domain.errors import DomainError
from domain.identifiers import Source
from projections.queries import Queries, QueryError, QuerySpec
from services.processor import Inbound

log = structlog.get_logger("kadaster.http")

STATUS_BY_CODE = {
    "unauthorized": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "too_large": 413,
    "not_found": 404,
    "unknown_type": 404,
    "midid_unknown": 404,
    "device_unknown": 404,
    "round_unknown": 404,
    "conflict": 409,
}
MAX_BODY_BYTES = 1024 * 1024
"""The contract's limit on a request body; a larger one is refused before it is read."""
DEFAULT_READY_LAG = 1000

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token of one party (`kadaster tokens issue`)",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "kadaster_session",
        "description": "The web application's session of a signed-in person",
    },
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": QueryErrors, "description": "Malformed request, unknown filter or a filter's bad value"},
    401: {"model": QueryErrors, "description": "No valid credentials (`unauthorized`)"},
    403: {
        "model": QueryErrors,
        "description": "Another party's data, a hospital asking for national data, or no role in force",
    },
    413: {"model": QueryErrors, "description": "A body over 1 MiB (`too_large`)"},
    429: {
        "model": QueryErrors,
        "description": "The party is over its quota (`rate_limited`); `Retry-After` says when to try again",
    },
    404: {
        "model": QueryErrors,
        "description": "No such query, or the MID-ID, device, round or command asked about is unknown",
    },
}


@dataclass(frozen=True)
class Shortcut:
    """A readable route for one query; its path parameters become that query's filters."""

    path: str
    query: str

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


SHORTCUTS = (
    Shortcut("/midids", "midids"),
    Shortcut("/outcomes/{command_id}", "outcome"),
    Shortcut("/devices", "devices"),
    Shortcut("/devices/{mid_id}", "device"),
    Shortcut("/history/{key}", "history"),
    Shortcut("/discrepancies", "discrepancies"),
    Shortcut("/rounds", "rounds"),
    Shortcut("/rounds/{round_id}/ranking", "ranking"),
)
PATH_PARAMETER_TEXT = {
    "institution": "the asking hospital's institution id: it sees only its own data",
    "name": "the query's name",
    "key": "a MID-ID, a device or a round",
}
# `/history/{key}` names a MID-ID, a device or a round; without a `key` filter, the first of these it has.
HISTORY_KEYS = ("mid_id", "device_id", "round_id")


def _filter_for(spec: QuerySpec, parameter: str, value: str) -> str:
    """Which of the query's filters a path parameter fills."""
    if parameter in spec.filters or parameter != "key":
        return parameter
    looks_like_mid_id = value.strip().upper().startswith("MID")
    offered = [f for f in HISTORY_KEYS if f in spec.filters and (f == "mid_id") == looks_like_mid_id]
    return offered[0] if offered else next(f for f in HISTORY_KEYS if f in spec.filters)


def _routable(spec: QuerySpec, shortcut: Shortcut) -> bool:
    return all(
        p in spec.filters or (p == "key" and any(f in spec.filters for f in HISTORY_KEYS))
        for p in shortcut.path_parameters
    )


# answering


def error_response(error: QueryError) -> JSONResponse:
    status = STATUS_BY_CODE.get(error.detail.code, 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error.as_reply(), status_code=status, headers=headers)


def rate_limited(error: RateLimited) -> JSONResponse:
    return JSONResponse(
        QueryError("rate_limited", str(error)).as_reply(),
        status_code=429,
        headers={"Retry-After": str(error.retry_after)},
    )


def check(rule: Callable[..., None], *args: Any) -> None:
    """Runs an access rule; a refusal becomes the contract's `forbidden`."""
    try:
        rule(*args)
    except Forbidden as error:
        raise QueryError("forbidden", str(error)) from None


def _merge(filters: dict[str, Any], more: dict[str, Any], where: str) -> None:
    for name, value in more.items():
        if name in filters:
            raise QueryError("schema", f"filter {name} is given twice (also in the {where})", name)
        filters[name] = value


def _query_string(request: Request) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        _merge(filters, {name: value}, "query string")
    return filters


async def _read_bounded(request: Request) -> bytes:
    """The body, refused with `too_large` as soon as it is known to pass the limit (never read whole)."""
    too_large = QueryError("too_large", f"the request body is over {MAX_BODY_BYTES} bytes (1 MiB)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: Request) -> dict[str, Any]:
    raw = await _read_bounded(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise QueryError("malformed", f"the body is not JSON: {error}") from None
    except RecursionError:
        raise QueryError("malformed", "the body's JSON is nested too deeply") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise QueryError("schema", "a query's body is a JSON object of filters")
    return body


def _institution(request: Request) -> str | None:
    institution = request.path_params.get("institution")
    if institution is None:
        return None
    try:
        Source.hospital(institution)
    except DomainError as error:
        raise QueryError("schema", str(error), "institution") from None
    return str(institution)


Endpoint = Callable[[Request], Awaitable[Response]]


async def caller(guard: Guard, request: Request) -> Principal:
    """The principal of the request; raises QueryError `unauthorized` without valid credentials."""
    try:
        return await run_in_threadpool(guard.principal, request)
    except Unauthorized as error:
        raise QueryError("unauthorized", str(error)) from None


def _endpoint(
    queries: Queries, guard: Guard, query: str | None, shortcut: Shortcut | None, with_body: bool
) -> Endpoint:
    """`query` None: the query's name is the path's `{name}`."""

    async def answer(request: Request) -> Response:
        try:
            principal = await caller(guard, request)
            institution = _institution(request)
            check(principal.check_reads, institution)
            guard.fair_share.queries.take(principal.party)
            filters = _query_string(request)
            if with_body:
                _merge(filters, await _body(request), "body")
            name = query or str(request.path_params["name"])
            check(principal.check_asks, name, institution)
            if shortcut is not None:
                spec = queries.specs[name]
                for parameter in shortcut.path_parameters:
                    value = str(request.path_params[parameter])
                    _merge(filters, {_filter_for(spec, parameter, value): value}, "path")
            # Queries block on the database and on the projector catching up: never on the event loop.
            if is_expensive(name, filters):
                async with guard.fair_share.expensive(principal.party):
                    result = await run_in_threadpool(queries.run, name, filters, institution)
            else:
                result = await run_in_threadpool(queries.run, name, filters, institution)
        except QueryError as error:
            return error_response(error)
        except RateLimited as error:
            return rate_limited(error)
        except Exception:
            log.exception("http_query_failed", path=request.url.path)
            return JSONResponse(QueryError("internal_error", "the query failed").as_reply(), status_code=500)
        # Serialised as the NATS service does, so both answer byte for byte the same.
        return Response(json.dumps(result, default=str), media_type="application/json")

    return answer


# commands


HTTP = "http"
"""The channel of commands entered over HTTP: handled at once, like RPC, and answered in the response."""


class CommandSender:
    """Runs a command entered over HTTP through the command pipeline as its party, at receipt.

    As for RPC, the outcome is the answer and is kept in the event store (query `outcome`): the api
    role's NATS user publishes nothing but replies, so the command does not travel over the stream.
    """

    def __init__(self, gateway: CommandGateway) -> None:
        self.gateway = gateway

    async def send(
        self, party: str, person: str | None, type_: str, data: dict[str, Any], command_id: str
    ) -> dict[str, Any]:
        source = Source.parse(party)
        envelope = command_envelope(party, type_, data, command_id, person)
        inbound = Inbound(
            json.dumps(envelope).encode(),
            f"{source.command_subject_prefix}.{type_}",
            channel=HTTP,
            msg_id=f"{party}:{command_id}",
        )
        handled = await self.gateway.submit(inbound)
        return handled.outcome


def add_command_route(app: FastAPI, guard: Guard, commands: CommandSender) -> None:
    async def enter(request: Request) -> Response:
        type_ = str(request.path_params["type"])
        try:
            principal = await caller(guard, request)
            check(principal.check_sends)
            if principal.person is not None:
                # A person's session: the form or script must echo the session's CSRF token.
                if request.headers.get("x-csrf-token") != principal.csrf:
                    raise QueryError("forbidden", "a command from a session needs its X-CSRF-Token header")
                await run_in_threadpool(check, guard.check_person_sends, principal, type_)
            guard.fair_share.commands.take(principal.party)
            data = await _body(request)
            command_id = request.headers.get("idempotency-key") or str(uuid.uuid4())
            outcome = await commands.send(principal.party, principal.person, type_, data, command_id)
        except QueryError as error:
            return error_response(error)
        except RateLimited as error:
            return rate_limited(error)
        except Exception:
            log.exception("http_command_failed", type=type_)
            return JSONResponse(
                QueryError("internal_error", "the command failed").as_reply(), status_code=500
            )
        errors = outcome.get("errors") or []
        status = 200 if outcome.get("status") == "accepted" else STATUS_BY_CODE.get(errors[0]["code"], 400)
        return JSONResponse(outcome, status_code=status)

    app.add_api_route(
        "/commands/{type}",
        enter,
        methods=["POST"],
        summary="Send a command of the contract as the caller's party, and get its outcome",
        description="The body is the command's `data`; `Idempotency-Key` sets the envelope id (sending "
        "the same key again never has a second effect). A signed-in person's command carries the "
        "person and is checked against their roles at receipt; a session also needs `X-CSRF-Token`.",
        tags=["commands"],
        operation_id="post_commands_type",
        responses={200: {"description": "The accepted command's outcome"}, **ERROR_RESPONSES},
        response_model=None,
        openapi_extra={
            "parameters": [
                {"name": "type", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "security": SECURITY,
        },
    )


# documenting


def _parameters(
    spec: QuerySpec | None, path_parameters: Iterable[str], scoped: bool, in_query: bool
) -> list[Any]:
    documented: list[Any] = []
    for name in path_parameters:
        text = PATH_PARAMETER_TEXT.get(name) or (spec.filters.get(name) if spec else None) or name
        documented.append(
            {"name": name, "in": "path", "required": True, "description": text, "schema": {"type": "string"}}
        )
    if spec is None or not in_query:
        return documented
    taken = set(path_parameters)
    filters = {**spec.filters, **{k: v for k, v in COMMON_QUERY_FILTERS.items() if k not in spec.filters}}
    for name, text in filters.items():
        if name in taken or (scoped and name == "institution") or (name == "key" and "key" in taken):
            continue
        documented.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
        )
    return documented


def _extra(spec: QuerySpec | None, path: str, scoped: bool, with_body: bool) -> dict[str, Any]:
    path_parameters = re.findall(r"{(\w+)}", path)
    extra: dict[str, Any] = {
        "parameters": _parameters(spec, path_parameters, scoped, in_query=not with_body),
        "security": SECURITY,
    }
    if with_body:
        schema = query_filters_schema(spec, scoped) if spec else {"type": "object", "description": "filters"}
        extra["requestBody"] = {"required": False, "content": {"application/json": {"schema": schema}}}
    return extra


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less its 422 responses: every request reaches the query, which answers 400."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = document
    return app.openapi_schema


def _operation_id(*parts: str) -> str:
    return re.sub(r"\W+", "_", "_".join(parts)).strip("_")


# the application


def create_app(
    queries: Queries,
    guard: Guard,
    commands: CommandSender | None = None,
    ready_lag: int = DEFAULT_READY_LAG,
) -> FastAPI:
    """Routes for every query known now; `ready_lag`: notifications the read models may trail and be ready.

    `commands`: where commands entered over HTTP go (None: the HTTP API takes no commands).
    """
    app = FastAPI(
        title="kadaster",
        version=CONTRACT_VERSION,
        description="HTTP API of the register of Belgium's heavy medical imaging devices: the "
        "contract's queries, answered from the same read models as `kadaster.query.<name>` over NATS. "
        'Errors are `{"errors": [{"code", "message", "field"}]}` as in an outcome. Every data route '
        "needs an API token (`Authorization: Bearer ...`) or a signed-in session; `/healthz` and "
        "`/readyz` are open.",
    )

    specs = dict(sorted(queries.specs.items()))

    def route(
        path: str,
        query: str | None,
        spec: QuerySpec | None,
        summary: str,
        tag: str,
        shortcut: Shortcut | None = None,
        methods: tuple[str, ...] = ("GET",),
    ) -> None:
        scoped = path.startswith("/hospitals/")
        for method in methods:
            with_body = method == "POST"
            app.add_api_route(
                path,
                _endpoint(queries, guard, query, shortcut, with_body),
                methods=[method],
                summary=summary,
                description=_description(spec, scoped, with_body, known=list(specs)),
                tags=[tag],
                operation_id=_operation_id(method.lower(), path.lstrip("/")),
                responses={200: {"description": "The query's answer (JSON)"}, **ERROR_RESPONSES},
                response_model=None,
                openapi_extra=_extra(spec, path, scoped, with_body),
            )

    for name, spec in specs.items():
        route(f"/queries/{name}", name, spec, spec.summary, "queries", methods=("GET", "POST"))
        if spec.hospital_scoped:
            route(
                f"/hospitals/{{institution}}/queries/{name}",
                name,
                spec,
                f"{spec.summary}: one hospital's own",
                "hospital queries",
                methods=("GET", "POST"),
            )
    for shortcut in SHORTCUTS:
        target = specs.get(shortcut.query)
        if target is None or not _routable(target, shortcut):
            continue
        route(shortcut.path, shortcut.query, target, target.summary, "shortcuts", shortcut)
        if target.hospital_scoped and "institution" not in shortcut.path_parameters:
            route(
                f"/hospitals/{{institution}}{shortcut.path}",
                shortcut.query,
                target,
                f"{target.summary}: one hospital's own",
                "shortcuts",
                shortcut,
            )
    # Catch-alls last: queries added after start-up, and unknown names answered in the contract's words.
    route("/queries/{name}", None, None, "Any query by name", "queries", methods=("GET", "POST"))
    route(
        "/hospitals/{institution}/queries/{name}",
        None,
        None,
        "Any query by name, as one hospital",
        "hospital queries",
        methods=("GET", "POST"),
    )

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The event store answers and the read models are caught up",
        responses={503: {"description": "Not ready: the body says why"}},
    )
    async def readyz() -> JSONResponse:
        ready, details = await run_in_threadpool(_readiness, queries, ready_lag)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **details}, status_code=200 if ready else 503
        )

    if commands is not None:
        add_command_route(app, guard, commands)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _description(spec: QuerySpec | None, scoped: bool, with_body: bool, known: list[str]) -> str:
    if spec is None:
        return (
            "Runs the query named in the path with the filters given as query parameters (GET) or as a "
            f"JSON object (POST). Known now: {', '.join(known)}. An unknown name answers 404 `unknown_type`."
        )
    subject = (
        f"kadaster.query.hospital.<institution>.{spec.name}" if scoped else f"kadaster.query.{spec.name}"
    )
    how = "a JSON object of filters as the body" if with_body else "filters as query parameters"
    return f"{spec.summary}. Takes {how}; the same answer as NATS `{subject}`."


async def _http_error(request: Request, error: Exception) -> Response:
    """Unknown paths and methods answer in the contract's error shape too."""
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    code = "not_found" if status == 404 else "malformed"
    message = f"{request.method} {request.url.path}: {getattr(error, 'detail', 'failed')}"
    return JSONResponse(QueryError(code, message).as_reply(), status_code=status)


def _readiness(queries: Queries, ready_lag: int) -> tuple[bool, dict[str, Any]]:
    try:
        head = int(queries.register.position())
    except Exception as error:
        return False, {"event_store": f"does not answer: {type(error).__name__}"}
    details: dict[str, Any] = {"event_store_position": head}
    projector = queries.projector
    if projector is None:
        return True, details
    try:
        positions = [projector.position(projection.name) for projection in projector.projections]
    except Exception as error:
        return False, {**details, "read_models": f"do not answer: {type(error).__name__}"}
    behind = head - min(positions, default=head)
    details.update(read_model_position=min(positions, default=head), behind=behind, ready_lag=ready_lag)
    return behind <= ready_lag, details


# serving


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's own event loop: signals stay with the service, which stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def install_signal_handlers(self) -> None:
        """uvicorn releases before 0.29 install handlers through this hook instead."""


async def run_http(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    """Serves until `stop` is set; port 0 means the HTTP API is off."""
    if port == 0 or stop.is_set():
        return
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = EmbeddedServer(config)

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_asked())
    try:
        log.info("http_api_starting", host=host, port=port)
        await server.serve()
    except SystemExit:
        # uvicorn exits the process when it cannot listen; here that is an error of this task only.
        raise OSError(f"the HTTP API cannot listen on {host}:{port}") from None
    finally:
        watcher.cancel()
    log.info("http_api_stopped")
