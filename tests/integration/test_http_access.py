"""Who may call the HTTP API: tokens per party, 401 without credentials, 403 for another party's data."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.bootstrap import Running
from adapters.http.api import CommandSender, create_app
from adapters.http.auth import Guard
from adapters.nats.client import KadasterClient
from tests.integration.conftest import asgi_client, bearer, gateway_of

OPEN = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.fixture
def app(kadaster: Running, guard: Guard) -> FastAPI:
    assert kadaster.queries is not None
    return create_app(kadaster.queries, guard, CommandSender(gateway_of(kadaster)))


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def codes(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    return [error["code"] for error in body["errors"]]


def concrete(path: str) -> str:
    return re.sub(
        r"{(\w+)}", lambda m: {"institution": "H001", "mid_id": "MID-0000001-95"}.get(m[1], "x"), path
    )


async def test_anonymous_calls_get_401_on_every_data_route_of_the_openapi_document(
    http: httpx.AsyncClient,
) -> None:
    document = (await http.get("/openapi.json")).json()
    walked = 0
    for path, operations in document["paths"].items():
        for method in operations:
            response = await http.request(
                method.upper(), concrete(path), json={} if method == "post" else None
            )
            if path in OPEN:
                assert response.status_code == 200, (method, path)
                continue
            assert response.status_code == 401, (method, path, response.text)
            assert codes(response) == ["unauthorized"]
            assert response.headers["www-authenticate"] == "Bearer"
            walked += 1
    assert walked > 20
    assert "security" not in document["paths"]["/healthz"]["get"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "session"}
    assert document["paths"]["/queries/midids"]["get"]["security"] == [{"bearer": []}, {"session": []}]


async def test_metrics_are_not_served_on_the_http_port(http: httpx.AsyncClient, guard: Guard) -> None:
    assert (await http.get("/metrics", headers=bearer(guard, "fod"))).status_code == 404


async def test_a_wrong_scheme_or_an_unknown_token_is_unauthorized(http: httpx.AsyncClient) -> None:
    for header in ("Basic Zm9kOmZvZA==", "Bearer ", "Bearer kdt_000000000000_guessed", "Bearer nonsense"):
        response = await http.get("/queries/midids", headers={"Authorization": header})
        assert (response.status_code, codes(response)) == (401, ["unauthorized"]), header


async def test_an_h001_token_reading_h002s_data_is_forbidden(
    http: httpx.AsyncClient, guard: Guard, h001: KadasterClient, h002: KadasterClient
) -> None:
    await h001.issue_mid_id("CT")
    other = (await h002.issue_mid_id("MRI"))["result"]["mid_id"]
    h001_token = bearer(guard, "hospital/H001")
    own = await http.get("/hospitals/H001/midids", headers=h001_token)
    assert own.status_code == 200 and len(own.json()["items"]) == 1
    for path in (
        "/hospitals/H002/midids",
        "/hospitals/H002/queries/midids",
        f"/hospitals/H002/devices/{other}",
    ):
        response = await http.get(path, headers=h001_token)
        assert (response.status_code, codes(response)) == (403, ["forbidden"]), path
    # National routes are the authorities' and auditors': a hospital reads under its own path only.
    national = await http.get("/midids", headers=h001_token)
    assert (national.status_code, codes(national)) == (403, ["forbidden"])
    assert other not in national.text


async def test_an_expired_or_revoked_token_is_refused_at_once(http: httpx.AsyncClient, guard: Guard) -> None:
    expired = bearer(guard, "fod", "already expired", expires_days=1e-9)
    assert (await http.get("/queries/midids", headers=expired)).status_code == 401
    token, secret = guard.credentials.issue_token("fod", "to be revoked", None)
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await http.get("/queries/midids", headers=headers)).status_code == 200
    assert guard.credentials.revoke_token(token.id)
    refused = await http.get("/queries/midids", headers=headers)
    assert (refused.status_code, codes(refused)) == (401, ["unauthorized"])


async def test_the_auditor_reads_everything_as_of_included_and_sends_nothing(
    http: httpx.AsyncClient, guard: Guard, h001: KadasterClient
) -> None:
    mid_id = (await h001.issue_mid_id("CT"))["result"]["mid_id"]
    auditor = bearer(guard, "*", "court auditor")
    assert (await http.get("/midids", headers=auditor)).status_code == 200
    assert (await http.get(f"/history/{mid_id}", headers=auditor)).status_code == 200
    past = await http.get("/hospitals/H001/midids", params={"as_of": "2020-01-01T00:00:00Z"}, headers=auditor)
    assert past.status_code == 200 and past.json()["items"] == []
    sent = await http.post("/commands/midid.issue", json={"modality": "CT"}, headers=auditor)
    assert (sent.status_code, codes(sent)) == (403, ["forbidden"])


async def test_a_hospitals_token_sends_its_commands_over_http_and_gets_the_outcome(
    http: httpx.AsyncClient, guard: Guard
) -> None:
    h001 = bearer(guard, "hospital/H001")
    headers = {**h001, "Idempotency-Key": "order-2024-7"}
    first = await http.post("/commands/midid.issue", json={"modality": "PET-CT"}, headers=headers)
    again = await http.post("/commands/midid.issue", json={"modality": "PET-CT"}, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    assert again.json()["result"] == first.json()["result"]
    wrong = await http.post("/commands/midid.cancel", json={"mid_id": "MID-0000001-96"}, headers=h001)
    assert wrong.status_code == 400 and codes(wrong)[0] in ("midid_checksum", "schema")
    too_large = await http.post("/commands/midid.issue", content=b" " * (1024 * 1024 + 1), headers=h001)
    assert (too_large.status_code, codes(too_large)) == (413, ["too_large"])


async def test_the_whole_command_log_is_the_fods_and_the_auditors_as_over_nats(
    http: httpx.AsyncClient, guard: Guard
) -> None:
    for party, status in (("fod", 200), ("*", 200), ("fanc", 403), ("riziv", 403), ("supplier/S1", 403)):
        response = await http.get("/queries/commands", headers=bearer(guard, party))
        assert response.status_code == status, party
    assert (await http.get("/queries/devices", headers=bearer(guard, "fanc"))).status_code == 200
    own = await http.get("/hospitals/H001/queries/commands", headers=bearer(guard, "hospital/H001"))
    assert own.status_code == 200
