"""Over a real nats-server: what a whole life publishes, binary mode in, micro error headers out."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import nats
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.bootstrap import Running
from adapters.ledger.publisher import CHECKPOINT_SUBJECT
from adapters.nats.client import KadasterClient
from adapters.nats.streams import CMD_STREAM, EVT_STREAM, OUTCOME_STREAM
from services.published_events import PUBLISHED, public_event
from tests.published.checks import read_cloudevent, schema_problems
from tests.published.scenario import FULL_LIFE

PUBLIC_TYPES = {public.type for public in PUBLISHED.values()}


async def stream_messages(js: JetStreamContext, stream: str) -> list[tuple[str, bytes]]:
    total = int((await js.stream_info(stream)).state.messages)
    if not total:
        return []
    sub = await js.subscribe(
        ">", stream=stream, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        return [(m.subject, m.data) for m in [await sub.next_msg(timeout=30) for _ in range(total)]]
    finally:
        await sub.unsubscribe()


def ce_headers(source: str, type_: str, command_id: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": command_id,
        "ce-source": source,
        "ce-type": type_,
        "ce-time": "2024-04-23T10:00:00Z",
        "ce-person": "jan.peeters",
        "Content-Type": "application/json; charset=utf-8",
        "Nats-Msg-Id": f"{source}:{command_id}",
    }


async def until(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the register did not publish everything in time")


async def test_everything_a_whole_life_publishes_is_a_cloudevent_the_sdk_reads_and_the_asyncapi_describes(
    register_service: Running,
) -> None:
    running = register_service
    js = running.js
    clients: dict[str, KadasterClient] = {}
    try:
        # The whole life through the stream, as each party's own system sends it.
        for step in FULL_LIFE:
            if step.source not in clients:
                clients[step.source] = await KadasterClient.connect(running.nats_url, step.source)
            outcome = await clients[step.source].send(step.type, step.data, step.command_id)
            assert outcome["status"] == "accepted", (step.command_id, outcome)
        # A command in binary mode and one whose media type has a charset parameter.
        h001 = clients["hospital/H001"]
        await js.publish(
            "kadaster.cmd.hospital.H001.midid.issue",
            b'{"modality": "PET"}',
            headers=ce_headers("hospital/H001", "midid.issue", "binary-1"),
        )
        assert (await h001.outcome_eventually("binary-1"))["status"] == "accepted"
        envelope = h001.envelope("midid.issue", {"modality": "SPECT-CT"}, "charset-1")
        envelope["datacontenttype"] = "application/json; charset=utf-8"
        assert (await h001.send_envelope(envelope))["status"] == "accepted"
        # Something that is not JSON at all still gets its outcome.
        await js.publish("kadaster.cmd.hospital.H001.midid.issue", b"\xff not json")
    finally:
        for client in clients.values():
            await client.close()

    commands = len(FULL_LIFE) + 3
    notifications = running.register.recorder.select_notifications(start=None, limit=10**6)
    public = [n for n in notifications if public_event(n.topic) is not None]
    head = running.register.position()

    async def everything_out() -> bool:
        events = await stream_messages(js, EVT_STREAM)
        domain = [s for s, _ in events if s != CHECKPOINT_SUBJECT]
        checkpoints = [json.loads(b)["data"]["tree_size"] for s, b in events if s == CHECKPOINT_SUBJECT]
        outcomes = int((await js.stream_info(OUTCOME_STREAM)).state.messages)
        return len(domain) >= len(public) and max(checkpoints, default=0) >= head and outcomes >= commands

    await until(everything_out)

    # Every message on both streams: the SDK reads it, it fits its channel's schema in the document.
    events = await stream_messages(js, EVT_STREAM)
    outcomes = await stream_messages(js, OUTCOME_STREAM)
    for subject, body in events + outcomes:
        read_cloudevent(body)
        assert schema_problems(subject, body) == [], (subject, body[:300])
    domain = [json.loads(b) for s, b in events if s != CHECKPOINT_SUBJECT]
    # Every public event once, in the log's order, nothing internal; on a fresh stream, sequence 1, 2, 3...
    assert [int(e["id"]) for e in domain] == [n.id for n in public]
    assert {e["type"] for e in domain} == PUBLIC_TYPES
    assert [e["sequence"] for e in domain] == list(range(1, len(domain) + 1))
    # One outcome per command message, named after the command; the unreadable one after its place.
    told = [json.loads(b) for _, b in outcomes]
    assert len(told) == commands and {o["type"] for o in told} == {"kadaster.outcome"}
    assert {o["subject"] for o in told} >= {f"{s.source}:{s.command_id}" for s in FULL_LIFE}
    unreadable = [o for o in told if o["data"]["status"] == "rejected"]
    assert [o["data"]["errors"][0]["code"] for o in unreadable] == ["malformed"]
    sequence = (await js.stream_info(CMD_STREAM)).state.last_seq
    assert unreadable[0]["subject"] == f"hospital/H001:stream-seq:{sequence}"


async def test_a_binary_mode_request_gets_the_bare_outcome_and_errors_carry_the_micro_headers(
    register_service: Running,
) -> None:
    nc = await nats.connect(register_service.nats_url)
    try:
        rpc = "kadaster.rpc.hospital.H001.midid.issue"
        command_id = uuid.uuid4().hex
        reply = await nc.request(
            rpc,
            b'{"modality": "CT"}',
            timeout=10,
            headers=ce_headers("hospital/H001", "midid.issue", command_id),
        )
        outcome = json.loads(reply.data)
        assert outcome["status"] == "accepted" and outcome["command_id"] == command_id
        assert "Nats-Service-Error-Code" not in (reply.headers or {})

        # A rejected request: the outcome as ever, and the headers of a caller's error.
        reply = await nc.request(
            rpc,
            b'{"modality": "X-ray"}',
            timeout=10,
            headers=ce_headers("hospital/H001", "midid.issue", "xray"),
        )
        assert json.loads(reply.data)["errors"][0]["code"] == "modality_not_in_scope"
        assert reply.headers is not None and reply.headers["Nats-Service-Error-Code"] == "400"
        assert reply.headers["Nats-Service-Error"].startswith("modality_not_in_scope: ")

        async def query(subject: str, filters: object) -> tuple[object, dict[str, str]]:
            answer = await nc.request(subject, json.dumps(filters).encode(), timeout=10)
            return json.loads(answer.data), dict(answer.headers or {})

        answer, headers = await query("kadaster.query.outcome", {"command_id": "never-sent", "source": "fod"})
        assert headers["Nats-Service-Error-Code"] == "404" and answer["errors"][0]["code"] == "not_found"  # type: ignore[index]
        answer, headers = await query("kadaster.query.hospital.H001.midids", {"institution": "H002"})
        assert headers["Nats-Service-Error-Code"] == "403" and answer["errors"][0]["code"] == "forbidden"  # type: ignore[index]
        answer, headers = await query("kadaster.query.devices", {"limit": "lots"})
        assert headers["Nats-Service-Error-Code"] == "400" and answer["errors"][0]["code"] == "schema"  # type: ignore[index]
        answer, headers = await query("kadaster.query.midids", {"institution": "H001"})
        assert "Nats-Service-Error-Code" not in headers and "errors" not in answer  # type: ignore[operator]
        # The outcome of a rejected command is an answer, not an error of the query.
        answer, headers = await query(
            "kadaster.query.outcome", {"command_id": "xray", "source": "hospital/H001"}
        )
        assert answer["status"] == "rejected" and "Nats-Service-Error-Code" not in headers  # type: ignore[index]
    finally:
        await nc.close()
