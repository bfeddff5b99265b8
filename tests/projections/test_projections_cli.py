"""`kadaster projections status|rebuild` against the configured databases, the read models in use."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from adapters.bootstrap import all_projections
from adapters.cli.main import build_parser
from projections.projector import Projector
from projections.queries import Queries
from projections.store import ReadModelStore
from services.register import Register
from tests.conftest import Sender
from tests.projections import scenario


def kadaster(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(argv)
    capsys.readouterr()
    with structlog.testing.capture_logs():
        code: int = args.func(args)
    return code, capsys.readouterr().out


@pytest.fixture
def configured(
    lifecycle: Sender,
    register: Register,
    database_url: str,
    read_models: Callable[[], ReadModelStore],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Projector:
    """The service's read models, caught up, in the databases the environment names."""
    store = read_models()
    monkeypatch.setenv("KADASTER_DATABASE_URL", database_url)
    monkeypatch.setenv("KADASTER_READMODEL_URL", store.url)
    monkeypatch.setenv("KADASTER_DATA_DIR", str(tmp_path / "data"))
    projector = Projector(register, store, all_projections())
    projector.catch_up()
    return projector


def test_projections_status_lists_every_read_model_at_the_head(
    configured: Projector, register: Register, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = kadaster(capsys, "projections", "status", "--json")
    assert code == 0
    items = json.loads(out)["items"]
    assert [i["name"] for i in items] == [p.name for p in all_projections()]
    assert {(i["position"], i["head"], i["lag"], i["state"]) for i in items} == {
        (register.position(), register.position(), 0, "current")
    }
    code, table = kadaster(capsys, "projections", "status")
    assert table.splitlines()[0].split() == [
        "NAME",
        "VERSION",
        "CODE_VERSION",
        "POSITION",
        "HEAD",
        "LAG",
        "STATE",
    ]


def test_projections_rebuild_swaps_in_the_same_read_model_and_refuses_an_unknown_one(
    configured: Projector, register: Register, lifecycle: Sender, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = Queries(register, configured.store, configured)
    before = json.dumps(queries.run("devices", {}))
    code, out = kadaster(capsys, "projections", "rebuild", "kadaster_view", "--batch-size", "7", "--json")
    assert code == 0
    (rebuilt,) = json.loads(out)
    assert (rebuilt["name"], rebuilt["position"]) == ("kadaster_view", register.position())
    assert json.dumps(queries.run("devices", {})) == before
    code, out = kadaster(capsys, "projections", "rebuild")
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == [p.name for p in all_projections()]
    assert kadaster(capsys, "projections", "rebuild", "no_such_model")[0] == 2
    scenario.run(lambda s, t, d, c: lifecycle.send(s, t, d, c), scenario.MORE[:1])
    code, out = kadaster(capsys, "projections", "status", "--json")
    assert {i["state"] for i in json.loads(out)["items"]} == {"catching up"}
