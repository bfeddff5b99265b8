"""The read-only HTTP API against a running kadaster: the same answers as NATS, a hospital's own only."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.bootstrap import Running
from adapters.http.api import create_app, run_http
from adapters.http.auth import Guard
from adapters.nats.client import KadasterClient
from adapters.nats.server import free_port
from projections.queries import QUERIES
from tests.integration.conftest import asgi_client, bearer, make_guard


@pytest.fixture
def app(kadaster: Running, guard: Guard) -> FastAPI:
    assert kadaster.queries is not None
    return create_app(kadaster.queries, guard)


@pytest.fixture
async def http(app: FastAPI, guard: Guard) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the FOD's, which reads nationally; hospital routes are read with their own tokens."""
    async with asgi_client(app, headers=bearer(guard, "fod")) as client:
        yield client


def error_codes(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors"}, body
    assert all(set(error) == {"code", "message", "field"} for error in body["errors"])
    return [error["code"] for error in body["errors"]]


async def test_a_hospitals_mid_ids_over_http_are_the_same_as_over_nats(
    http: httpx.AsyncClient, h001: KadasterClient
) -> None:
    for modality in ("CT", "MRI", "PET-CT"):
        assert (await h001.issue_mid_id(modality))["status"] == "accepted"
    over_nats = await h001.query("midids")
    response = await http.get("/hospitals/H001/queries/midids")
    assert response.status_code == 200
    assert response.json() == over_nats
    assert len(over_nats["items"]) == 3


async def test_filters_work_alike_as_query_parameters_a_json_body_and_a_shortcut(
    http: httpx.AsyncClient, h001: KadasterClient
) -> None:
    for modality in ("CT", "MRI"):
        await h001.issue_mid_id(modality)
    by_get = (await http.get("/queries/midids", params={"modality": "MRI"})).json()
    by_post = (await http.post("/queries/midids", json={"modality": "MRI"})).json()
    by_shortcut = (await http.get("/midids", params={"modality": "MRI"})).json()
    assert by_get == by_post == by_shortcut
    assert [item["modality"] for item in by_get["items"]] == ["MRI"]


async def test_a_hospitals_route_never_shows_another_hospitals_mid_ids(
    http: httpx.AsyncClient, h001: KadasterClient, h002: KadasterClient
) -> None:
    own = (await h001.issue_mid_id("CT"))["result"]["mid_id"]
    other = (await h002.issue_mid_id("PET"))["result"]["mid_id"]
    listed = (await http.get("/hospitals/H001/queries/midids")).json()
    assert [item["mid_id"] for item in listed["items"]] == [own]
    assert other not in (await http.get("/hospitals/H001/midids")).text
    everyone = (await http.get("/midids")).json()
    assert {item["mid_id"] for item in everyone["items"]} == {own, other}


async def test_asking_for_another_institution_on_a_hospitals_route_is_forbidden(
    http: httpx.AsyncClient, h001: KadasterClient
) -> None:
    await h001.issue_mid_id("CT")
    by_get = await http.get("/hospitals/H001/queries/midids", params={"institution": "H002"})
    by_post = await http.post("/hospitals/H001/queries/midids", json={"institution": "H002"})
    assert (by_get.status_code, by_post.status_code) == (403, 403)
    assert error_codes(by_get) == error_codes(by_post) == ["forbidden"]


async def test_an_unknown_filter_is_a_bad_request_in_the_contracts_words(http: httpx.AsyncClient) -> None:
    response = await http.get("/queries/midids", params={"colour": "blue"})
    assert response.status_code == 400
    assert error_codes(response) == ["schema"]
    assert response.json()["errors"][0]["field"] == "colour"


async def test_malformed_input_is_a_bad_request_never_a_server_error(http: httpx.AsyncClient) -> None:
    not_json = await http.post(
        "/queries/midids", content=b"{not json", headers={"content-type": "application/json"}
    )
    not_an_object = await http.post("/queries/midids", json=[1, 2])
    bad_page = await http.get("/queries/midids", params={"limit": "lots"})
    twice = await http.get("/queries/midids?modality=CT&modality=MRI")
    bad_institution = await http.get("/hospitals/H 001!/queries/midids")
    assert [r.status_code for r in (not_json, not_an_object, bad_page, twice, bad_institution)] == [400] * 5
    assert error_codes(not_json) == ["malformed"]
    assert error_codes(not_an_object) == error_codes(bad_page) == error_codes(twice) == ["schema"]


async def test_an_unknown_query_or_path_is_not_found(http: httpx.AsyncClient) -> None:
    unknown_query = await http.get("/queries/no-such-query")
    unknown_for_hospital = await http.post("/hospitals/H001/queries/no-such-query", json={})
    unknown_path = await http.get("/nowhere")
    assert [r.status_code for r in (unknown_query, unknown_for_hospital, unknown_path)] == [404] * 3
    assert error_codes(unknown_query) == error_codes(unknown_for_hospital) == ["unknown_type"]
    assert error_codes(unknown_path) == ["not_found"]


async def test_the_outcome_of_a_command_is_found_by_its_id_and_an_unknown_id_is_not(
    http: httpx.AsyncClient, h001: KadasterClient
) -> None:
    outcome = await h001.issue_mid_id("CT", command_id="order-77")
    assert (await http.get("/hospitals/H001/outcomes/order-77")).json() == outcome
    assert (await http.get("/outcomes/order-77")).json()["result"] == outcome["result"]
    missing = await http.get("/outcomes/never-sent")
    assert missing.status_code == 404
    assert error_codes(missing) == ["not_found"]


async def test_the_openapi_document_lists_every_query_with_its_summary_and_filters(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for spec in QUERIES:
        operation = paths[f"/queries/{spec.name}"]["get"]
        assert operation["summary"] == spec.summary
        documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert set(spec.filters) <= documented
        assert "requestBody" in paths[f"/queries/{spec.name}"]["post"]
        if spec.hospital_scoped:
            hospital = paths[f"/hospitals/{{institution}}/queries/{spec.name}"]["get"]
            assert {"name": "institution", "in": "path"}.items() <= hospital["parameters"][0].items()
    assert {"/midids", "/outcomes/{command_id}", "/healthz", "/readyz", "/queries/{name}"} <= set(paths)
    assert not any("422" in operation["responses"] for path in paths.values() for operation in path.values())


async def test_the_service_is_alive_and_ready_once_its_read_models_caught_up(
    http: httpx.AsyncClient, h001: KadasterClient
) -> None:
    await h001.issue_mid_id("CT")
    assert (await http.get("/healthz")).json() == {"status": "alive"}
    for _ in range(100):
        ready = await http.get("/readyz")
        if ready.json()["behind"] == 0:
            break
        await asyncio.sleep(0.05)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["event_store_position"] > 0


async def test_read_models_too_far_behind_make_the_service_not_ready(
    kadaster: Running, h001: KadasterClient
) -> None:
    assert kadaster.queries is not None
    await h001.issue_mid_id("CT")
    # No read model can be less than zero notifications behind: this app is never ready.
    strict = create_app(
        kadaster.queries, make_guard(kadaster.register, kadaster.settings.data_dir), ready_lag=-1
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strict), base_url="http://kadaster"
    ) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"


async def test_run_http_serves_on_a_real_socket_until_stopped(app: FastAPI) -> None:
    port, stop = free_port(), asyncio.Event()
    serving = asyncio.create_task(run_http(app, "127.0.0.1", port, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    response = await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert response.json() == {"status": "alive"}
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get("/healthz")


async def test_a_port_already_taken_is_an_error_of_the_http_task_not_an_exit_of_the_process(
    app: FastAPI,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="cannot listen"):
            await run_http(app, "127.0.0.1", taken.getsockname()[1], asyncio.Event())


async def test_port_zero_means_the_http_api_is_off(app: FastAPI) -> None:
    await asyncio.wait_for(run_http(app, "127.0.0.1", 0, asyncio.Event()), timeout=1)


async def test_a_body_over_1_mib_is_refused_with_413_without_being_read_whole(
    http: httpx.AsyncClient,
) -> None:
    declared = await http.post("/queries/midids", content=b"{" + b" " * (1024 * 1024) + b"}")
    assert declared.status_code == 413 and error_codes(declared) == ["too_large"]
    sent = 0

    async def two_hundred_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(200 * 16):
            sent += 1
            yield b" " * 65536

    streamed = await http.post("/queries/midids", content=two_hundred_megabytes())
    assert streamed.status_code == 413 and error_codes(streamed) == ["too_large"]
    assert sent < 32, f"{sent} chunks of 64 KiB were read"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/queries/devices?offset=99999999999999999999999", None, "offset"),
        ("/queries/devices?offset=-1", None, "offset"),
        ("/queries/devices?limit=1000000", None, "limit"),
        ("/queries/devices?as_of=0001-01-01T00:00:00%2B14:00", None, "as_of"),
        ("/queries/devices?as_of=9999-12-31T23:59:59-14:00", None, "as_of"),
        ("/queries/devices", b"[" * 200_000 + b"]" * 200_000, None),
    ],
)
async def test_odd_values_are_answered_with_a_4xx_and_a_contract_code(
    http: httpx.AsyncClient, path: str, body: bytes | None, field: str | None
) -> None:
    response = await (http.get(path) if body is None else http.post(path, content=body))
    assert 400 <= response.status_code < 500, response.text
    assert error_codes(response)[0] in ("schema", "malformed")
    if field is not None:
        assert response.json()["errors"][0]["field"] == field
