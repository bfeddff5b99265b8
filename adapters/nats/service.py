"""The NATS micro service `kadaster`: real-time MID-ID issuance and the contract's queries."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.micro.service import Service, ServiceConfig

from adapters import metrics
from adapters.fair_share import FairShare, RateLimited, is_expensive
from adapters.nats.gateway import CommandGateway
from domain.identifiers import AUTHORITIES
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


PARTY_INBOX_KINDS = ("hospital-", "supplier-")


def reply_allowed(reply: str, asker: str | None) -> bool:
    """Whether an answer may go to `reply`: under `_INBOX.`, and never into another party's inbox.

    `asker` is the NATS user name of the party the subject speaks for (`hospital-H001`), or None for
    operators' subjects, which no hospital or supplier may ask on. An inbox that names no party
    (`_INBOX.<random>`) is a client of a deployment without per-party users.
    """
    tokens = reply.split(".")
    if len(tokens) < 3 or tokens[0] != "_INBOX":
        return False
    owner = tokens[1]
    names_a_party = owner.startswith(PARTY_INBOX_KINDS) or owner in (*AUTHORITIES, "auditor")
    if not names_a_party:
        return True
    if asker is None:
        return not owner.startswith(PARTY_INBOX_KINDS)
    return owner == asker


def asker_of(subject: str) -> str | None:
    """`kadaster.rpc.hospital.H001...` and `kadaster.query.hospital.H001...` speak for `hospital-H001`."""
    parts = subject.split(".")
    if len(parts) >= 4 and parts[2] == "hospital":
        return f"hospital-{parts[3]}"
    return None


STOP_GRACE_SECONDS = 10.0
"""How long `stop` lets requests in flight finish before it cancels them."""


class KadasterService:
    """Owns background tasks so replies never wait behind one another."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        gateway: CommandGateway | None,
        queries: Queries | None,
        fair_share: FairShare | None = None,
    ) -> None:
        """`fair_share`: bounds each party's expensive queries (the operators' subject is one party)."""
        self.fair_share = fair_share
        self.nc = nc
        self.js = js
        self.gateway = gateway
        self.queries = queries
        self.service: Service | None = None
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribes every endpoint first and answers `$SRV.PING.kadaster` only then: whoever waits
        for the ping can send a request at once and never meet "no responders"."""
        self.service = Service(
            self.nc,
            ServiceConfig(
                name=SERVICE_NAME,
                version=SERVICE_VERSION,
                description="Belgian register of heavy medical imaging devices",
            ),
        )
        # The endpoints are plain queue subscriptions: the handler must see the reply subject (which
        # the micro library's request keeps to itself) to refuse one that is another party's inbox.
        if self.gateway is not None:
            self._subscriptions.append(
                await self.nc.subscribe(RPC_SUBJECT, queue="kadaster-rpc", cb=self._spawn(self.issue))
            )
        if self.queries is not None:
            self._subscriptions.append(
                await self.nc.subscribe(QUERY_SUBJECT, queue="kadaster-query", cb=self._spawn(self.query))
            )
        await self.nc.flush()
        await self.service.start()

    def _spawn(self, handler: Any) -> Any:
        async def spawn(request: Msg) -> None:
            reply = request.reply or ""
            if not reply_allowed(reply, asker_of(request.subject)):
                # Never answered, never handled: the answer would land in another party's inbox.
                log.warning("reply_refused", code="forbidden", subject=request.subject, reply=reply[:200])
                metrics.REPLIES_REFUSED.inc()
                return
            task = asyncio.create_task(handler(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return spawn

    async def issue(self, request: Msg) -> None:
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

    async def query(self, request: Msg) -> None:
        assert self.queries is not None
        try:
            name, institution = parse_query_subject(request.subject)
            filters = json.loads(request.data) if request.data.strip() else {}
            if not isinstance(filters, dict):
                raise QueryError("schema", "a query's body is a JSON object of filters")
            run = functools.partial(self.queries.run, name, filters, institution)
            if self.fair_share is not None and is_expensive(name, filters):
                party = f"hospital/{institution}" if institution else "operators"
                async with self.fair_share.expensive(party):
                    answer = await asyncio.get_running_loop().run_in_executor(None, run)
            else:
                answer = await asyncio.get_running_loop().run_in_executor(None, run)
            failed = False
        except RateLimited as error:
            answer, failed = QueryError("rate_limited", str(error)).as_reply(), True
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

    async def _respond(self, request: Msg, answer: Any, failed: bool) -> None:
        """Replies with JSON; an error reply also carries the micro error headers."""
        payload = json.dumps(answer, default=str).encode()
        headers = None
        if failed:
            code, description = micro_status(answer.get("errors") or [])
            headers = {"Nats-Service-Error": description, "Nats-Service-Error-Code": code}
        await self.nc.publish(request.reply, payload, headers=headers)

    async def stop(self) -> None:
        """Stops answering; safe to call again."""
        service, self.service = self.service, None
        if service is not None:
            await service.stop()
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        in_flight = list(self._tasks)
        if in_flight:
            # A request's thread reads the read models until it returns, and whoever stops the
            # service closes them next: those in flight finish first (a query waits for fresh read
            # models at most its freshness timeout), and only the ones still running are cancelled.
            _, still = await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
            for task in still:
                task.cancel()
