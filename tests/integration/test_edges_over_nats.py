"""What a sender cannot do by lying about its time, or by reusing another party's envelope id."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.bootstrap import Running
from adapters.nats.client import KadasterClient, QueryFailed
from adapters.nats.server import NatsServer
from services.register import Register
from tests.domain.test_allocation_policies import PROVINCES_2023, REFERENCE_2024


def nmr_round(round_id: str, deadline: datetime) -> dict[str, object]:
    return {
        "round_id": round_id,
        "programme": "nmr",
        "period": "2023",
        "capacity": 2,
        "deadline": deadline.isoformat(),
        "provinces": PROVINCES_2023,
        "reference_activity": REFERENCE_2024,
        "top_share": 0.15,
        "new_services_only": False,
    }


def application(round_id: str) -> dict[str, object]:
    return {
        "round_id": round_id,
        "campus": "Campus Noord",
        "province": "Antwerpen",
        "region": "flemish",
        "justified_activity_per_device": 5000,
        "has_service_on_other_campus": False,
    }


async def test_a_late_application_backdated_by_its_sender_is_refused_as_round_closed(
    kadaster: Running, h001: KadasterClient, h002: KadasterClient
) -> None:
    async with await KadasterClient.connect(kadaster.nats_url, "vazg") as vazg:
        deadline = datetime.now(UTC) + timedelta(seconds=2)
        opened = await vazg.send("round.open", nmr_round("nmr-edge", deadline))
        assert opened["status"] == "accepted", opened
    # H002 applies in time; H001 waits past the deadline, then claims to have sent it a day earlier.
    on_time = await h002.send(
        "round.apply", application("nmr-edge") | {"campus": "Genk", "province": "Limburg"}
    )
    assert on_time["status"] == "accepted", on_time
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.5)
    backdated = h001.envelope("round.apply", application("nmr-edge"))
    backdated["time"] = (deadline - timedelta(days=1)).isoformat()
    late = await h001.send_envelope(backdated)
    assert late["status"] == "rejected"
    assert late["errors"][0]["code"] == "round_closed"
    assert "received at" in late["errors"][0]["message"]


async def test_the_same_envelope_id_from_two_hospitals_gives_two_mid_ids(
    h001: KadasterClient, h002: KadasterClient
) -> None:
    first = await h001.send("midid.issue", {"modality": "CT"}, command_id="order-2024-0001")
    second = await h002.send("midid.issue", {"modality": "CT"}, command_id="order-2024-0001")
    assert first["status"] == second["status"] == "accepted", (first, second)
    assert first["result"]["mid_id"] != second["result"]["mid_id"]
    assert (await h001.outcome("order-2024-0001"))["result"] == first["result"]
    assert (await h002.outcome("order-2024-0001"))["result"] == second["result"]


async def test_a_malformed_message_can_be_looked_up_by_its_senders_id_or_its_stream_sequence(
    kadaster: Running, h001: KadasterClient
) -> None:
    subject = "kadaster.cmd.hospital.H001.midid.issue"
    await kadaster.js.publish(subject, b"{not json", headers={"Nats-Msg-Id": "hospital/H001:broken-7"})
    by_id = await h001.outcome_eventually("broken-7")
    assert by_id["status"] == "rejected" and by_id["errors"][0]["code"] == "malformed"
    assert by_id["command_id"] == "broken-7" and by_id["keyed_by"] == "nats_msg_id"
    # Without a `<source>:<id>` header, the outcome is filed under the message's place in the stream.
    ack = await kadaster.js.publish(subject, json.dumps({"specversion": "0.3"}).encode())
    by_sequence = await h001.outcome_eventually(f"stream-seq:{ack.seq}")
    assert by_sequence["command_id"] == f"stream-seq:{ack.seq}"
    assert by_sequence["keyed_by"] == "stream_sequence" and by_sequence["stream_sequence"] == ack.seq


async def test_an_oversized_rejection_does_not_hold_up_another_hospitals_outcome(
    kadaster: Running, h001: KadasterClient, h002: KadasterClient
) -> None:
    from tests.services.test_limits import flood_of_unknown_fields

    body = flood_of_unknown_fields()
    await kadaster.js.publish(
        "kadaster.cmd.hospital.H001.midid.issue", body, headers={"Nats-Msg-Id": "hospital/H001:flood-1"}
    )
    began = asyncio.get_running_loop().time()
    other = await h002.send("midid.issue", {"modality": "CT"}, timeout=10)
    assert other["status"] == "accepted", other
    assert asyncio.get_running_loop().time() - began < 5
    flood = await h001.outcome_eventually("flood-1")
    assert flood["status"] == "rejected" and flood["errors"][-1]["message"].endswith(
        "more error(s) not listed"
    )
    sub = await kadaster.js.subscribe("kadaster.outcome.hospital.H001", ordered_consumer=True)
    published = json.loads((await sub.next_msg(timeout=10)).data)
    await sub.unsubscribe()
    assert published["data"]["command_id"] == "flood-1"
    assert len(json.dumps(published)) < 1024 * 1024


async def test_a_message_that_cannot_be_settled_is_rejected_recorded_and_acked_after_a_few_deliveries(
    nats_server: NatsServer, register: Register
) -> None:
    import nats

    from adapters.nats.gateway import CommandGateway
    from adapters.nats.ingest import run_ingest
    from adapters.nats.outcomes import OutcomePublisher
    from adapters.nats.streams import (
        CMD_STREAM,
        INGEST_CONSUMER,
        SETTLE_AFTER,
        ensure_ingest_consumer,
        ensure_streams,
    )
    from domain.command_record import command_record_id
    from services.processor import CommandProcessor, Handled, Inbound

    class FailsOnPoison(CommandProcessor):
        """The pipeline, failing outright on one message as a defect would."""

        def process(self, batch: Sequence[Inbound]) -> list[Handled]:
            if any(b"poison" in inbound.body for inbound in batch):
                raise RuntimeError("a defect")
            return super().process(batch)

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js, 1)
    await ensure_ingest_consumer(js, ack_wait=1.0)
    gateway = CommandGateway(FailsOnPoison(register))
    stop = asyncio.Event()
    ingest = asyncio.create_task(run_ingest(js, OutcomePublisher(nc, js), gateway, stop))
    try:
        async with KadasterClient(nc, "hospital/H001") as h001:
            poison = h001.envelope("midid.issue", {"modality": "CT", "note": "poison"}, command_id="poison-1")
            outcome = await h001.send_envelope(poison, timeout=60, attempts=1)
        assert outcome["status"] == "rejected" and outcome["errors"][0]["code"] == "internal_error"
        assert f"after {SETTLE_AFTER} deliveries" in outcome["errors"][0]["message"]
        assert register.created([command_record_id("hospital/H001", "poison-1")])
        for _ in range(50):  # the ack follows the outcome
            info = await js.consumer_info(CMD_STREAM, INGEST_CONSUMER)
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.1)
        assert info.num_ack_pending == 0 and info.num_pending == 0
    finally:
        stop.set()
        await ingest
        await gateway.close()
        await nc.close()


async def test_the_service_answers_ping_only_once_every_endpoint_answers_50_starts_in_a_row(
    nats_server: NatsServer, register: Register, tmp_path: Path
) -> None:
    import nats
    import nats.errors

    from adapters.bootstrap import open_read_side
    from adapters.nats.gateway import CommandGateway
    from adapters.nats.service import KadasterService
    from services.processor import CommandProcessor
    from tests.integration.conftest import service_settings

    settings = service_settings(nats_server.url, "sqlite:///unused.db", tmp_path / "data")
    settings = settings.model_copy(update={"readmodel_url": f"sqlite:///{tmp_path / 'rm.db'}"})
    store, _projector, queries = open_read_side(settings, register)
    gateway = CommandGateway(CommandProcessor(register))
    asker = await nats.connect(nats_server.url)
    missed: list[str] = []
    try:
        for attempt in range(50):
            nc = await nats.connect(nats_server.url)
            service = KadasterService(nc, nc.jetstream(), gateway, queries)

            async def ping_then_ask(attempt: int = attempt) -> None:
                while True:
                    try:
                        await asker.request("$SRV.PING.kadaster", b"", timeout=0.2)
                        break
                    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                        await asyncio.sleep(0)
                envelope = {
                    "specversion": "1.0",
                    "id": f"ready-{attempt}",
                    "source": "hospital/H001",
                    "type": "midid.issue",
                    "data": {"modality": "CT"},
                }
                try:
                    await asker.request(
                        "kadaster.rpc.hospital.H001.midid.issue", json.dumps(envelope).encode(), timeout=10
                    )
                    # A query may wait for read models nobody advances here: only its subscription counts.
                    with contextlib.suppress(nats.errors.TimeoutError):
                        await asker.request("kadaster.query.midids", b"{}", timeout=0.2)
                except nats.errors.NoRespondersError:
                    missed.append(f"attempt {attempt}")

            asking = asyncio.create_task(ping_then_ask())
            await service.start()
            await asyncio.wait_for(asking, timeout=30)
            await service.stop()
            await nc.close()
    finally:
        await asker.close()
        await gateway.close()
        store.close()
    assert missed == []


async def test_an_answer_is_never_steered_into_another_partys_inbox(
    kadaster: Running, h001: KadasterClient
) -> None:
    import nats

    victim = await nats.connect(kadaster.nats_url, inbox_prefix="_INBOX.hospital-H001")
    attacker = await nats.connect(kadaster.nats_url)
    try:
        landed = await victim.subscribe("_INBOX.hospital-H001.>")
        steered = h001.envelope("midid.issue", {"modality": "CT"}, command_id="steered-1")
        steered["source"] = "hospital/H002"
        await attacker.publish(
            "kadaster.rpc.hospital.H002.midid.issue",
            json.dumps(steered).encode(),
            reply="_INBOX.hospital-H001.stolen",
        )
        await attacker.publish("kadaster.query.midids", b"{}", reply="_INBOX.hospital-H001.stolen")
        await attacker.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await landed.next_msg(timeout=1.0)
        # Not answered, and not handled either.
        with pytest.raises(QueryFailed):
            await h001.query(
                "outcome", {"command_id": "steered-1", "source": "hospital/H002"}, as_operator=True
            )
        # The party's own inbox is answered as always.
        own = await victim.request(
            "kadaster.rpc.hospital.H001.midid.issue",
            json.dumps(h001.envelope("midid.issue", {"modality": "CT"})).encode(),
            timeout=5,
        )
        assert json.loads(own.data)["status"] == "accepted"
    finally:
        await victim.close()
        await attacker.close()
