"""The production compose file: a 3-node JetStream cluster, PostgreSQL, and real kadaster roles."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from adapters.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)  # type: ignore[arg-type]


def test_every_kadaster_service_runs_a_real_subcommand() -> None:
    roles = {name: s for name, s in compose()["services"].items() if s.get("image") == "kadaster:latest"}
    assert set(roles) == {"ingest", "rpc", "projector", "relay", "api"}
    for name, service in roles.items():
        assert service["command"][0] in subcommands(), name
        health = service["healthcheck"]["test"]
        assert health[1:3] == ["kadaster", "health"] and health[3] in subcommands()
        assert service["restart"] == "unless-stopped"


def test_nats_runs_as_a_three_node_cluster_that_syncs_every_write() -> None:
    nats = [name for name in compose()["services"] if name.startswith("nats-")]
    assert len(nats) == 3
    for index in (1, 2, 3):
        config = (ROOT / "deploy" / "nats" / f"nats-{index}.conf").read_text()
        assert "sync_interval: always" in config
        assert config.count("nats-route://") == 3


def test_the_relays_ledger_key_outlives_its_container() -> None:
    relay = compose()["services"]["relay"]
    data_dir = relay["environment"]["KADASTER_DATA_DIR"]
    assert any(v.split(":")[1] == data_dir and not v.startswith((".", "/")) for v in relay["volumes"])


def test_every_role_serves_its_own_metrics() -> None:
    for name in ("ingest", "rpc", "projector", "relay"):
        assert compose()["services"][name]["environment"]["KADASTER_METRICS_PORT"] != "0", name
    assert compose()["services"]["api"]["environment"]["KADASTER_HTTP_HOST"] == "0.0.0.0"


def test_postgres_keeps_its_data_in_a_volume() -> None:
    postgres = compose()["services"]["postgres"]
    assert any(v.startswith("postgres-data:") for v in postgres["volumes"])


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (Debian package) not installed"
)
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
