"""What a sender cannot do by lying about its time, or by reusing another party's envelope id."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from adapters.client import KadasterClient
from adapters.runtime import Running
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
