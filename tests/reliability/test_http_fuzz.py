"""Schemathesis against the HTTP API's own OpenAPI document: no 5xx, every error in the contract's shape."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.schemas import APIOperation

from adapters.bootstrap import open_read_side
from adapters.http.api import create_app
from services.register import Register, event_store_env
from tests.conftest import POSTGRES_DSN, Sender
from tests.integration.conftest import bearer, make_guard, service_settings
from tests.projections import scenario
from tests.reliability.fuzzing import CONTRACT_CODES, tally

# Codes a query answers with besides the contract's command codes (`not_found`: no such thing to show).
QUERY_CODES = CONTRACT_CODES | {"not_found"}
# The document describes every filter as text: a filter's value is judged by the query (a date that
# is not one answers 400 `schema`), and an empty or `null` body means no filters.
LOOSER_THAN_THE_DOCUMENT = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]
FULL = os.environ.get("KADASTER_RELIABILITY") == "full"
EXAMPLES_PER_OPERATION = 100 if FULL else 8


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The event store and read models on a SQLite file, or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('http-fuzz') / 'kadaster.db'}"
        return
    import psycopg

    schema = f"kadaster_http_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES_DSN}{'&' if '?' in POSTGRES_DSN else '?'}schema={schema}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def populated_app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The HTTP API as `kadaster api` wires it, over the scripted register and its read models."""
    settings = service_settings("nats://127.0.0.1:1", database_url, tmp_path_factory.mktemp("data"))
    register = Register(env=event_store_env(settings.event_store_url))
    sender = Sender(register)
    scenario.run(sender.send, [*scenario.LIFECYCLE, *scenario.MORE])
    store, projector, queries = open_read_side(settings, register)
    projector.catch_up()
    # The auditor reads everything; quotas high enough for the generated flood of requests.
    guard = make_guard(register, tmp_path_factory.mktemp("credentials"), queries_per_second=1e6)
    app = create_app(queries, guard)
    app.state.auditor = bearer(guard, "*", "fuzzing")
    try:
        yield app
    finally:
        guard.credentials.close()
        store.close()
        register.close()


def contract_error_codes(body: Any) -> list[str]:
    """The codes of an error reply, which must be `{"errors": [{"code", "message", "field"}, ...]}`."""
    assert isinstance(body, dict) and set(body) == {"errors"}, body
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"code", "message", "field"}, error
        assert isinstance(error["message"], str) and error["message"], error
        assert error["field"] is None or isinstance(error["field"], str), error
    return [error["code"] for error in body["errors"]]


def operations(app: FastAPI) -> list[APIOperation]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def exercise(operation: APIOperation, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Requests generated from one operation's documentation: valid ones, or nearly valid ones."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=not FULL,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_without_failing(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        tally("http requests")
        label = f"{case.method} {case.formatted_path} ({mode.value})"
        if response.status_code >= 500:
            tally("http 5xx")
        assert response.status_code < 500, (label, case.query, case.body, response.text[:500])
        if response.status_code >= 400:
            codes = contract_error_codes(response.json())
            assert set(codes) <= QUERY_CODES, (label, response.text[:500])
        # And everything the document promises: documented status codes, content types, response shapes.
        case.validate_response(response, excluded_checks=LOOSER_THAN_THE_DOCUMENT)

    try:
        answers_without_failing()
    except Unsatisfiable:
        # Parameters that are plain text, which any string satisfies, leave no nearly valid request.
        if mode is not GenerationMode.NEGATIVE:
            raise
        tally("http operations without invalid requests")


def test_no_request_the_openapi_document_allows_or_almost_allows_makes_the_http_api_fail(
    populated_app: FastAPI,
) -> None:
    found = operations(populated_app)
    assert len(found) > 40  # every query, its hospital's own, the shortcuts and the health routes
    for operation in found:
        exercise(operation, GenerationMode.POSITIVE, populated_app.state.auditor)
        exercise(operation, GenerationMode.NEGATIVE, populated_app.state.auditor)


async def test_a_filter_that_is_not_text_is_a_bad_request_not_a_server_error(populated_app: FastAPI) -> None:
    # Found by schemathesis: a JSON body's list reached the read model's SQL as a parameter (500).
    transport = httpx.ASGITransport(app=populated_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://kadaster", headers=populated_app.state.auditor
    ) as http:
        refused = [
            await http.post("/queries/midids", json={"institution": []}),
            await http.post("/queries/devices", json={"province": {"name": "Limburg"}}),
            await http.post("/hospitals/H001/queries/midids", json={"modality": 7}),
            await http.post("/queries/midids", json={"limit": True}),
            await http.post("/queries/midids", json={"modality": None}),
            await http.get("/queries/midids", params={"modality": "C\x00T"}),
            await http.get("/devices/MID-0000001-95%00"),
        ]
        paged = await http.post("/queries/midids", json={"limit": 2, "offset": 1})
    assert [r.status_code for r in refused] == [400] * len(refused)
    assert all(contract_error_codes(r.json()) == ["schema"] for r in refused)
    assert refused[0].json()["errors"][0]["field"] == "institution"
    assert paged.status_code == 200 and len(paged.json()["items"]) == 2
