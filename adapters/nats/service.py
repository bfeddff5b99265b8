"""The NATS micro service `kadaster`: real-time MID-ID issuance and the contract's queries."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from adapters import metrics
from adapters.nats.gateway import CommandGateway
from projections.queries import Queries, QueryError
from services.processor import RPC, Inbound

log = structlog.get_logger("kadaster.service")

SERVICE_NAME = "kadaster"
SERVICE_VERSION = "1.0.0"
RPC_SUBJECT = "kadaster.rpc.hospital.*.midid.issue"
QUERY_SUBJECT = "kadaster.query.>"
MICRO_STATUS = {"forbidden": "403", "not_found": "404", "rate_limited": "429", "internal_error": "500"}
"""`Nats-Service-Error-Code` by the first error's code; every other contract code is the caller's: 400."""


def micro_status(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """`Nats-Service-Error-Code` and `Nats-Service-Error` of an error reply."""
    first = errors[0] if errors else {"code": "internal_error", "message": "failed"}
    # A header value is one line; the whole explanation is in the body.
    description = " ".join(f"{first.get('code')}: {first.get('message')}".split())[:240]
    return MICRO_STATUS.get(str(first.get("code")), "400"), description


def parse_query_subject(subject: str) -> tuple[str, str | None]:
    """`kadaster.query.<name>` (operators) or `kadaster.query.hospital.<institution>.<name>`."""
    parts = subject.split(".")
    if len(parts) == 5 and parts[2] == "hospital":
        return parts[4], parts[3]
    if len(parts) == 3:
        return parts[2], None
    raise QueryError("unknown_type", f"{subject} is not a query subject")


class KadasterService:
    """Owns background tasks so replies never wait behind one another."""

    def __init__(
        self, nc: NATS, js: JetStreamContext, gateway: CommandGateway | None, queries: Queries | None
    ) -> None:
        self.nc = nc
        self.js = js
        self.gateway = gateway
        self.queries = queries
        self.service: Service | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.service = await add_service(
            self.nc,
            name=SERVICE_NAME,
            version=SERVICE_VERSION,
            description="Belgian register of heavy medical imaging devices",
        )
        if self.gateway is not None:
            await self.service.add_endpoint(
                name="midid-issue",
                subject=RPC_SUBJECT,
                handler=self._spawn(self.issue),
                queue_group="kadaster-rpc",
                metadata={"description": "Issue a MID-ID in real time; body: CloudEvents envelope"},
            )
        if self.queries is not None:
            await self.service.add_endpoint(
                name="query",
                subject=QUERY_SUBJECT,
                handler=self._spawn(self.query),
                queue_group="kadaster-query",
                metadata={"description": "The contract's queries; body: JSON object of filters"},
            )

    def _spawn(self, handler: Any) -> Any:
        async def spawn(request: Request) -> None:
            task = asyncio.create_task(handler(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return spawn

    async def issue(self, request: Request) -> None:
        assert self.gateway is not None
        headers = request.headers or {}
        inbound = Inbound(
            body=request.data,
            subject=request.subject,
            channel=RPC,
            msg_id=headers.get("Nats-Msg-Id"),
            headers=dict(headers),
        )
        began = time.perf_counter()
        try:
            handled = await self.gateway.submit(inbound)
        except Exception:
            log.exception("rpc_failed", subject=request.subject)
            failed = QueryError(
                "internal_error", "the register could not record the request; retry with the same id"
            )
            await self._respond(request, failed.as_reply(), failed=True)
            return
        # The reply is the outcome; it is also kept in the event store (query `outcome`).
        await self._respond(request, handled.outcome, failed=handled.outcome["status"] == "rejected")
        metrics.RPC_SECONDS.observe(time.perf_counter() - began)
        metrics.count([handled])

    async def query(self, request: Request) -> None:
        assert self.queries is not None
        try:
            name, institution = parse_query_subject(request.subject)
            filters = json.loads(request.data) if request.data.strip() else {}
            if not isinstance(filters, dict):
                raise QueryError("schema", "a query's body is a JSON object of filters")
            answer = await asyncio.get_running_loop().run_in_executor(
                None, self.queries.run, name, filters, institution
            )
            failed = False
        except QueryError as error:
            answer, failed = error.as_reply(), True
        except ValueError as error:
            failed = True
            answer = QueryError("malformed", f"not JSON: {error}").as_reply()
        except RecursionError:
            failed = True
            answer = QueryError("malformed", "JSON nested too deeply").as_reply()
        except Exception:
            log.exception("query_failed", subject=request.subject)
            failed = True
            answer = QueryError("internal_error", "the query failed").as_reply()
        await self._respond(request, answer, failed)

    @staticmethod
    async def _respond(request: Request, answer: Any, failed: bool) -> None:
        """Replies with JSON; an error reply also carries the micro error headers."""
        payload = json.dumps(answer, default=str).encode()
        if failed:
            code, description = micro_status(answer.get("errors") or [])
            await request.respond_error(code, description, data=payload)
        else:
            await request.respond(payload)

    async def stop(self) -> None:
        """Stops answering; safe to call again."""
        service, self.service = self.service, None
        if service is not None:
            await service.stop()
        for task in list(self._tasks):
            task.cancel()
