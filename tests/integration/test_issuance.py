"""Real-time MID-ID issuance over NATS: RPC, the command stream, idempotency and the hospital's list."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from adapters.bootstrap import Running
from adapters.nats.client import KadasterClient, QueryFailed


async def test_a_hospital_gets_a_mid_id_in_real_time(h001: KadasterClient) -> None:
    outcome = await h001.issue_mid_id("CT")
    assert outcome["status"] == "accepted"
    assert outcome["result"]["mid_id"] == "MID-0000001-95"
    assert outcome["source"] == "hospital/H001"


async def test_the_same_request_returns_the_same_mid_id_by_rpc_and_by_stream(h001: KadasterClient) -> None:
    first = await h001.issue_mid_id("PET-CT", command_id="tender-2024-17")
    again_by_rpc = await h001.issue_mid_id("PET-CT", command_id="tender-2024-17")
    again_by_stream = await h001.send("midid.issue", {"modality": "PET-CT"}, command_id="tender-2024-17")
    assert first == again_by_rpc == again_by_stream
    assert (await h001.issue_mid_id("CT"))["result"]["mid_id"] == "MID-0000002-92"


async def test_a_command_on_the_stream_gets_its_outcome_on_the_outcome_stream(
    kadaster: Running, h001: KadasterClient
) -> None:
    outcome = await h001.send("midid.issue", {"modality": "MRI"}, command_id="stream-1")
    assert outcome["status"] == "accepted"
    sub = await kadaster.js.subscribe("kadaster.outcome.hospital.H001", ordered_consumer=True)
    message = await sub.next_msg(timeout=5)
    event = json.loads(message.data)
    assert (event["type"], event["subject"]) == ("kadaster.outcome", "hospital/H001:stream-1")
    assert event["data"]["command_id"] == "stream-1"
    await sub.unsubscribe()


async def test_a_stream_command_with_a_wrong_source_is_rejected_and_kept(kadaster: Running) -> None:
    client = await KadasterClient.connect(kadaster.nats_url, "hospital/H001")
    forged = client.envelope("midid.issue", {"modality": "CT"}, command_id="forged-1")
    forged["source"] = "hospital/H002"
    await kadaster.js.publish(
        "kadaster.cmd.hospital.H001.midid.issue",
        json.dumps(forged).encode(),
        headers={"Nats-Msg-Id": "hospital/H001:forged-1"},
    )
    outcome = await client.outcome_eventually("forged-1")
    assert outcome["status"] == "rejected"
    assert outcome["errors"][0]["code"] == "source_mismatch"
    kept = await client.query("commands", {"status": "rejected"}, as_operator=True)
    assert [c["command_id"] for c in kept["items"]] == ["forged-1"]
    await client.close()


async def test_broken_messages_on_the_stream_get_contract_codes(
    kadaster: Running, h001: KadasterClient
) -> None:
    await kadaster.js.publish(
        "kadaster.cmd.hospital.H001.midid.issue",
        b"\x00not json",
        headers={"Nats-Msg-Id": "hospital/H001:broken-1"},
    )
    cancelled = await h001.send("midid.cancel", {"mid_id": "MID-0000043-66", "reason": "x"})
    assert cancelled["errors"][0]["code"] == "midid_unknown"
    typo = await h001.send("midid.cancel", {"mid_id": "MID-0000043-67", "reason": "x"})
    assert typo["errors"][0]["code"] == "midid_checksum"
    unknown = await h001.send("midid.teleport", {})
    assert unknown["errors"][0]["code"] == "unknown_type"
    schema = await h001.send("midid.issue", {"modality": 7})
    assert schema["errors"][0]["code"] == "schema"
    kept = await h001.query("commands", {"status": "rejected"})
    assert len(kept["items"]) == 5


async def test_cancel_rules_hold_over_nats(h001: KadasterClient, h002: KadasterClient) -> None:
    mid_id = (await h001.issue_mid_id("CT"))["result"]["mid_id"]
    refused = await h002.send("midid.cancel", {"mid_id": mid_id, "reason": "not ours"})
    assert refused["errors"][0]["code"] == "midid_not_yours"
    cancelled = await h001.send(
        "midid.cancel", {"mid_id": mid_id.replace("-", "").lower(), "reason": "no order"}
    )
    assert cancelled["result"]["status"] == "cancelled"
    again = await h001.send("midid.cancel", {"mid_id": mid_id, "reason": "again"})
    assert again["errors"][0]["code"] == "midid_cancelled"


async def test_a_hospital_sees_only_its_own_mid_ids(h001: KadasterClient, h002: KadasterClient) -> None:
    own = [(await h001.issue_mid_id(m))["result"]["mid_id"] for m in ("CT", "MRI")]
    other = (await h002.issue_mid_id("PET"))["result"]["mid_id"]
    listed = await h001.query("midids")
    assert [(m["mid_id"], m["modality"], m["status"]) for m in listed["items"]] == [
        (own[0], "CT", "issued"),
        (own[1], "MRI", "issued"),
    ]
    assert other not in json.dumps(listed)
    with pytest.raises(QueryFailed) as refused:
        await h001.query("midids", {"institution": "H002"})
    assert refused.value.errors[0]["code"] == "forbidden"


async def test_the_service_answers_its_micro_service_ping(kadaster: Running) -> None:
    nc = await nats.connect(kadaster.nats_url)
    reply = await nc.request("$SRV.PING.kadaster", b"", timeout=5)
    assert json.loads(reply.data)["name"] == "kadaster"
    await nc.close()


async def test_many_concurrent_requests_each_get_one_distinct_mid_id(h001: KadasterClient) -> None:
    outcomes = await asyncio.gather(*(h001.issue_mid_id("CT", command_id=f"burst-{i}") for i in range(200)))
    numbers = [o["result"]["mid_id"] for o in outcomes]
    assert len(set(numbers)) == 200
    repeated = await asyncio.gather(*(h001.issue_mid_id("CT", command_id=f"burst-{i}") for i in range(200)))
    assert [o["result"]["mid_id"] for o in repeated] == numbers


async def test_metrics_count_commands_by_type_and_status(kadaster: Running, h001: KadasterClient) -> None:
    from adapters.metrics import exposition

    await h001.issue_mid_id("CT")
    await h001.issue_mid_id("x-ray")
    text = exposition().decode()
    assert 'kadaster_commands_total{channel="rpc",code="",status="accepted",type="midid.issue"}' in text
    assert 'code="modality_not_in_scope",status="rejected"' in text
    assert "kadaster_rpc_seconds_count" in text
