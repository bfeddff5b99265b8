"""What a sender cannot do by lying about its time, or by reusing another party's envelope id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from adapters.client import KadasterClient
from adapters.nats_server import NatsServer
from adapters.runtime import Running
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
    assert published["command_id"] == "flood-1"


async def test_a_message_that_cannot_be_settled_is_rejected_recorded_and_acked_after_a_few_deliveries(
    nats_server: NatsServer, register: Register
) -> None:
    import nats

    from adapters.gateway import CommandGateway
    from adapters.ingest import run_ingest
    from adapters.streams import (
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
    ingest = asyncio.create_task(run_ingest(js, gateway, stop))
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
