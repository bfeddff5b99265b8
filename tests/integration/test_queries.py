"""The read side against a running kadaster: NATS, HTTP and the CLI agree; a hospital sees its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog

from adapters.bootstrap import Running
from adapters.cli.main import build_parser
from adapters.http.api import create_app
from adapters.nats.client import KadasterClient, QueryFailed
from tests.integration.conftest import bearer, make_guard
from tests.projections import scenario
from tests.projections.scenario import BACKFILLED_H001, CT_H001, CT_H002, PETCT_H002, ROUND


@pytest.fixture
async def register(kadaster: Running) -> AsyncIterator[Running]:
    """The running kadaster, after the scripted register went in over NATS."""
    clients: dict[str, KadasterClient] = {}
    try:
        for step in scenario.LIFECYCLE:
            if step.source not in clients:
                clients[step.source] = await KadasterClient.connect(kadaster.nats_url, step.source)
            outcome = await clients[step.source].send(step.type, step.data, command_id=step.command_id)
            assert outcome["status"] == "accepted", outcome
        yield kadaster
    finally:
        for client in clients.values():
            await client.close()


@pytest.fixture
async def http(register: Running) -> AsyncIterator[httpx.AsyncClient]:
    assert register.queries is not None
    guard = make_guard(register.register, register.settings.data_dir)
    transport = httpx.ASGITransport(app=create_app(register.queries, guard))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://kadaster", headers=bearer(guard, "fod")
    ) as client:
        yield client
    guard.credentials.close()


@pytest.fixture
async def operator(register: Running) -> AsyncIterator[KadasterClient]:
    client = await KadasterClient.connect(register.nats_url, "fod")
    yield client
    await client.close()


async def cli_text(capsys: pytest.CaptureFixture[str], nats_url: str, *argv: str) -> str:
    """Runs a `kadaster` read command in this process and returns what it printed."""
    args = build_parser().parse_args([*argv, "--nats-url", nats_url])
    capsys.readouterr()
    # The service logs in this process too: its lines must not mix with what the command prints.
    with structlog.testing.capture_logs():
        assert await asyncio.to_thread(args.func, args) == 0
        return capsys.readouterr().out


async def cli(capsys: pytest.CaptureFixture[str], nats_url: str, *argv: str) -> Any:
    """The same, as a script would run it (`--json`)."""
    return json.loads(await cli_text(capsys, nats_url, *argv, "--json"))


async def test_nats_http_and_the_cli_answer_each_question_with_the_same_data(
    register: Running, operator: KadasterClient, http: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    url = register.nats_url
    asked = [
        # (query, filters, HTTP path, CLI arguments)
        (
            "devices",
            {"province": "Limburg"},
            "/devices?province=Limburg",
            ["devices", "list", "--province", "Limburg"],
        ),
        (
            "devices",
            {"institution": "H001", "sort": "-mid_id"},
            "/devices?institution=H001&sort=-mid_id",
            ["devices", "list", "--institution", "H001", "--sort=-mid_id"],
        ),
        ("device", {"mid_id": CT_H001}, f"/devices/{CT_H001.lower()}", ["device", CT_H001.replace("-", "")]),
        ("history", {"mid_id": CT_H001}, f"/history/{CT_H001}", ["history", CT_H001]),
        ("history", {"round_id": ROUND}, f"/history/{ROUND}", ["history", "--round", ROUND]),
        (
            "history",
            {"institution": "H002"},
            "/queries/history?institution=H002",
            ["history", "--institution", "H002"],
        ),
        (
            "discrepancies",
            {"status": "all"},
            "/discrepancies?status=all",
            ["discrepancies", "--status", "all"],
        ),
        (
            "capacity",
            {"modality": "MRI"},
            "/queries/capacity?modality=MRI",
            ["capacity", "--modality", "MRI"],
        ),
    ]
    for name, filters, path, argv in asked:
        over_nats = await operator.query(name, filters)
        over_http = await http.get(path)
        assert over_http.status_code == 200, over_http.text
        assert over_http.json() == over_nats, path
        assert await cli(capsys, url, *argv) == over_nats, argv
    devices = await operator.query("devices")
    assert [d["mid_id"] for d in devices["items"]] == [CT_H001, PETCT_H002, CT_H002, BACKFILLED_H001]


async def test_a_hospitals_subject_never_returns_another_hospitals_rows(
    register: Running, http: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    h001 = await KadasterClient.connect(register.nats_url, "hospital/H001")
    try:
        devices = await h001.query("devices")
        assert {d["institution"] for d in devices["items"]} == {"H001"}
        assert devices["total"] == 2
        assert (await h001.query("device", {"mid_id": CT_H001}))["institution"] == "H001"
        for query, filters in (("device", {"mid_id": PETCT_H002}), ("history", {"mid_id": CT_H002})):
            with pytest.raises(QueryFailed) as refused:
                await h001.query(query, filters)
            assert [e["code"] for e in refused.value.errors] == ["midid_not_yours"]
        with pytest.raises(QueryFailed) as forbidden:
            await h001.query("devices", {"institution": "H002"})
        assert [e["code"] for e in forbidden.value.errors] == ["forbidden"]
        own = await h001.query("history", {})
        assert own["institution"] == "H001" and {i["institution"] for i in own["items"]} == {"H001"}
        round_history = await h001.query("history", {"round_id": ROUND})
        assert {i["institution"] for i in round_history["items"]} == {None, "H001"}
        discrepancies = await h001.query("discrepancies", {"status": "all", "today": "2099-01-01"})
        assert discrepancies["items"] and {d["institution"] for d in discrepancies["items"]} == {"H001"}
        # The same over HTTP and the CLI.
        scoped = await http.get("/hospitals/H001/devices")
        assert scoped.json() == devices
        assert await cli(capsys, register.nats_url, "devices", "list", "--hospital", "H001") == devices
        assert (await http.get(f"/hospitals/H001/devices/{PETCT_H002}")).json()["errors"][0][
            "code"
        ] == "midid_not_yours"
    finally:
        await h001.close()


async def test_a_mid_ids_register_over_nats_shows_its_device_and_whether_it_is_still_free(
    register: Running,
) -> None:
    h001 = await KadasterClient.connect(register.nats_url, "hospital/H001")
    try:
        mid_ids = {item["mid_id"]: item for item in (await h001.query("midids"))["items"]}
    finally:
        await h001.close()
    assert [(m, item["free"]) for m, item in mid_ids.items()] == [
        (CT_H001, False),
        (scenario.MRI_H001, True),
        (BACKFILLED_H001, False),
    ]
    assert mid_ids[BACKFILLED_H001]["legacy_ref"] == "CT1"


async def test_on_a_terminal_the_cli_prints_tables_of_devices_and_who_said_each_field(
    register: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = (await cli_text(capsys, register.nats_url, "devices", "list", "--modality", "CT")).splitlines()
    assert listing[0].split()[:4] == ["MID_ID", "INSTITUTION", "PROVINCE", "CAMPUS"]
    assert [line.split()[0] for line in listing[1:4]] == [CT_H001, CT_H002, BACKFILLED_H001]
    assert listing[-1] == "1-3 of 3 devices"
    shown = await cli_text(capsys, register.nats_url, "device", CT_H001)
    assert "serial_number        SN-1001" in shown
    assert "who said what:" in shown and "s11-move" in shown and "statement_mismatch" in shown


async def test_as_of_is_answered_alike_over_nats_http_and_the_cli_and_for_a_hospital_only_its_own(
    register: Running, operator: KadasterClient, http: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    await asyncio.sleep(0.01)
    before = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    # Later the H001 PET device is reported and linked; as of `before` it was not there.
    clients = {s.source: await KadasterClient.connect(register.nats_url, s.source) for s in scenario.MORE}
    try:
        for step in scenario.MORE:
            outcome = await clients[step.source].send(step.type, step.data, command_id=step.command_id)
            assert outcome["status"] == "accepted", outcome
    finally:
        for client in clients.values():
            await client.close()
    now = await operator.query("devices", {"institution": "H001"})
    then = await operator.query("devices", {"institution": "H001", "as_of": before})
    assert then["as_of"] == before
    assert now["total"] == then["total"] + 1
    over_http = await http.get("/devices", params={"institution": "H001", "as_of": before})
    assert over_http.status_code == 200, over_http.text
    assert over_http.json() == then
    assert (
        await cli(capsys, register.nats_url, "devices", "list", "--institution", "H001", "--as-of", before)
        == then
    )
    h001 = await KadasterClient.connect(register.nats_url, "hospital/H001")
    try:
        assert await h001.query("devices", {"as_of": before}) == then
        with pytest.raises(QueryFailed) as refused:
            await h001.query("device", {"mid_id": PETCT_H002, "as_of": before})
        assert [e["code"] for e in refused.value.errors] == ["midid_not_yours"]
    finally:
        await h001.close()


async def test_a_filter_that_is_not_text_is_refused_over_nats_rather_than_failing_the_query(
    operator: KadasterClient,
) -> None:
    # Found by the HTTP fuzzing campaign: the same bodies failed over NATS with `internal_error`.
    for filters in ({"institution": []}, {"institution": False, "limit": True}, {"modality": "C\x00T"}):
        with pytest.raises(QueryFailed) as refused:
            await operator.query("midids", filters)
        assert [e["code"] for e in refused.value.errors] == ["schema"], filters
    assert len((await operator.query("midids", {"limit": 2}))["items"]) == 2
