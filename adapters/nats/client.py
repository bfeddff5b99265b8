"""A client for integrating systems and the CLI: envelopes, safe retries, waiting for outcomes.

async with await KadasterClient.connect("nats://127.0.0.1:4322", "hospital/H001") as client:
    outcome = await client.issue_mid_id("CT")
    outcome = await client.send("device.report", {...})
    mids = await client.query("midids")
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from domain.identifiers import Source


class KadasterError(Exception):
    """The register could not be reached or did not answer in time; retrying with the same id is safe."""


class QueryFailed(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors))
        self.errors = errors


def outcome_of(message: Any) -> dict[str, Any]:
    """The outcome object of a message on KADASTER_OUTCOME: a `kadaster.outcome` CloudEvent's `data`."""
    if not isinstance(message, dict):
        raise ValueError("an outcome is a JSON object")
    inner = message.get("data") if "specversion" in message else message
    if not isinstance(inner, dict):
        raise ValueError("an outcome is a JSON object")
    return inner


def command_envelope(
    source: str, type_: str, data: dict[str, Any], command_id: str, person: str | None = None
) -> dict[str, Any]:
    """A command as the contract's CloudEvents envelope, sent now; `person` is the extension naming
    who entered it, where a person did."""
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": command_id,
        "source": source,
        "type": type_,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }
    if person is not None:
        envelope["person"] = person
    return envelope


class KadasterClient:
    """Speaks for one source. Every retry reuses the envelope id, so nothing happens twice."""

    def __init__(self, nc: NATS, source: str, owns_connection: bool = False) -> None:
        self.nc = nc
        self.source = Source.parse(source)
        self.js = nc.jetstream()
        self._owns_connection = owns_connection

    @classmethod
    async def connect(cls, url: str | list[str], source: str, **options: Any) -> KadasterClient:
        """`url`: one server, several comma-separated, or a list."""
        servers = url.split(",") if isinstance(url, str) else url
        nc = await nats.connect(servers, name=f"kadaster-client {source}", **options)
        return cls(nc, source, owns_connection=True)

    async def __aenter__(self) -> KadasterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_connection:
            await self.nc.drain()

    def envelope(
        self, type_: str, data: dict[str, Any], command_id: str | None = None, person: str | None = None
    ) -> dict[str, Any]:
        """`person`: the CloudEvents extension naming who entered the command, where a person did."""
        return command_envelope(str(self.source), type_, data, command_id or str(uuid.uuid4()), person)

    def command_subject(self, type_: str) -> str:
        return f"{self.source.command_subject_prefix}.{type_}"

    async def issue_mid_id(
        self,
        modality: str,
        note: str | None = None,
        command_id: str | None = None,
        timeout: float = 5.0,
        attempts: int = 5,
    ) -> dict[str, Any]:
        """Real-time issuance over request-reply; returns the outcome object."""
        if self.source.kind != "hospital":
            raise ValueError("only a hospital requests MID-IDs")
        data: dict[str, Any] = {"modality": modality}
        if note:
            data["note"] = note
        envelope = self.envelope("midid.issue", data, command_id)
        subject = f"kadaster.rpc.hospital.{self.source.party}.midid.issue"
        body = json.dumps(envelope).encode()
        delay = 0.2
        for attempt in range(attempts):
            try:
                reply = await self.nc.request(
                    subject,
                    body,
                    timeout=timeout,
                    headers={"Nats-Msg-Id": self.source.message_id(envelope["id"])},
                )
                answer: dict[str, Any] = json.loads(reply.data or b"{}")
                # An error reply without an outcome: the register could not record it; try again.
                headers = reply.headers or {}
                if headers.get("Nats-Service-Error-Code") and "status" not in answer:
                    raise KadasterError(headers.get("Nats-Service-Error", "service error"))
                return answer
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, KadasterError):
                if attempt == attempts - 1:
                    raise KadasterError(
                        f"no answer for MID-ID request {envelope['id']} after {attempts} tries"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def send(
        self,
        type_: str,
        data: dict[str, Any],
        command_id: str | None = None,
        timeout: float = 10.0,
        attempts: int = 5,
        person: str | None = None,
    ) -> dict[str, Any]:
        """Publishes a command on KADASTER_CMD and waits for its outcome."""
        envelope = self.envelope(type_, data, command_id, person)
        return await self.send_envelope(envelope, timeout=timeout, attempts=attempts)

    async def send_envelope(
        self, envelope: dict[str, Any], timeout: float = 10.0, attempts: int = 5
    ) -> dict[str, Any]:
        command_id = envelope["id"]
        arrived: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def on_outcome(msg: Msg) -> None:
            try:
                outcome = outcome_of(json.loads(msg.data))
            except ValueError:
                return
            if outcome.get("command_id") == command_id and not arrived.done():
                arrived.set_result(outcome)

        subscription = await self.nc.subscribe(self.source.outcome_subject, cb=on_outcome)
        try:
            body = json.dumps(envelope).encode()
            for attempt in range(attempts):
                try:
                    ack = await self.js.publish(
                        self.command_subject(envelope["type"]),
                        body,
                        headers={"Nats-Msg-Id": self.source.message_id(command_id)},
                        timeout=timeout,
                    )
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    await asyncio.sleep(0.2 * 2**attempt)
                    continue
                if ack.duplicate:
                    # The stream already holds this command: its outcome is (or soon will be) recorded.
                    return await self.outcome_eventually(command_id, timeout=timeout)
                try:
                    return await asyncio.wait_for(asyncio.shield(arrived), timeout=timeout / 2)
                except TimeoutError:
                    pass
                # Already handled earlier (a re-send), or the outcome went by before we listened.
                try:
                    return await self.outcome(command_id)
                except QueryFailed:
                    pass
                try:
                    return await asyncio.wait_for(asyncio.shield(arrived), timeout=timeout / 2)
                except TimeoutError:
                    continue
            raise KadasterError(f"no outcome for command {command_id} after {attempts} tries")
        finally:
            await subscription.unsubscribe()

    async def outcome(self, command_id: str) -> dict[str, Any]:
        return dict(await self.query("outcome", {"command_id": command_id, **self._own_source_filter()}))

    async def outcome_eventually(self, command_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Polls for the outcome of a command published by other means."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                return await self.outcome(command_id)
            except QueryFailed:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def _own_source_filter(self) -> dict[str, str]:
        return {} if self.source.kind == "hospital" else {"source": str(self.source)}

    async def query(
        self,
        name: str,
        filters: dict[str, Any] | None = None,
        timeout: float = 10.0,
        as_operator: bool = False,
    ) -> Any:
        """A hospital's client asks on its own subject unless `as_operator`."""
        if self.source.kind == "hospital" and not as_operator:
            subject = f"kadaster.query.hospital.{self.source.party}.{name}"
        else:
            subject = f"kadaster.query.{name}"
        try:
            reply = await self.nc.request(subject, json.dumps(filters or {}).encode(), timeout=timeout)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as error:
            raise KadasterError(f"query {name} got no answer: {type(error).__name__}") from None
        answer = json.loads(reply.data)
        if isinstance(answer, dict) and set(answer) == {"errors"}:
            raise QueryFailed(answer["errors"])
        return answer
