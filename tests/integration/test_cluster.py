"""A 3-node JetStream cluster with the generated users, the roles as processes: a node dies mid-load,
nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from adapters.nats.accounts import DEFAULT_SERVICES, client_options, generate
from adapters.nats.client import KadasterClient, outcome_of
from adapters.nats.server import NatsServer, free_port
from adapters.nats.streams import CMD_STREAM, EVT_STREAM, OUTCOME_STREAM, ensure_streams
from services.published_events import public_event
from services.register import Register, event_store_env
from tests.integration.conftest import ServiceProcess, domain_event_count, process_env, wait_for_service

COMMANDS = 1000
HOSPITALS = 8


PARTIES = {
    "institutions": [*(f"H{i:03d}" for i in range(HOSPITALS)), "H099"],
    "suppliers": ["S001"],
    "authorities": ["fod", "fanc", "riziv", "vazg"],
    "services": {**DEFAULT_SERVICES, "ops": ["admin"]},
}
# Every role under its service user, as docker-compose.yml runs them.
ROLE_USERS = {role: user for user, roles in DEFAULT_SERVICES.items() for role in roles}


@dataclass
class Cluster:
    servers: list[NatsServer]
    credentials: dict[str, Any]

    def options(self, user: str) -> dict[str, Any]:
        return {"user": user, "password": self.credentials[user]["password"]}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Three nats-servers routed to one another, each with its own JetStream store, all with the
    users and permissions `kadaster nats-config` generates."""
    parties = tmp_path / "parties.json"
    parties.write_text(json.dumps(PARTIES))
    auth, _ = generate(parties, tmp_path / "auth.conf", tmp_path / "credentials.json")
    credentials = json.loads((tmp_path / "credentials.json").read_text())
    route_ports = [free_port() for _ in range(3)]
    routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in route_ports)
    servers = [
        NatsServer(
            store_dir=tmp_path / f"nats-{n}",
            port=free_port(),
            name=f"nats-{n}",
            extra_config=f"cluster {{\n  name: kadaster\n  listen: 127.0.0.1:{route_ports[n - 1]}\n"
            f"  routes: [{routes}]\n}}\n{auth}",
        )
        for n in (1, 2, 3)
    ]
    try:
        for server in servers:
            server.start()
        yield Cluster(servers, credentials)
    finally:
        for server in servers:
            server.stop()


async def wait_for_three_replicas(js: JetStreamContext, timeout: float = 30.0) -> None:
    """The meta leader is elected and sees all three peers once a 3-replica stream can be placed."""
    deadline = asyncio.get_running_loop().time() + timeout
    probe = StreamConfig(
        name="CLUSTER_PROBE", subjects=["cluster.probe"], num_replicas=3, storage=StorageType.MEMORY
    )
    while True:
        try:
            await js.add_stream(probe)
            await js.delete_stream("CLUSTER_PROBE")
            return
        except (TimeoutError, nats.errors.Error):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def publish_until_stored(js: JetStreamContext, subject: str, body: bytes, msg_id: str) -> None:
    """Retries with the same Nats-Msg-Id while a node is down or a new leader is elected: stored once."""
    for _ in range(60):
        try:
            await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}, timeout=2)
            return
        except (TimeoutError, nats.errors.Error):
            await asyncio.sleep(0.2)
    raise AssertionError(f"{msg_id} was never stored")


async def read_stream(js: JetStreamContext, stream: str, total: int) -> list[bytes]:
    sub = await js.subscribe(
        ">", stream=stream, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    bodies = [(await sub.next_msg(timeout=10)).data for _ in range(total)]
    await sub.unsubscribe()
    return bodies


async def stream_count(js: JetStreamContext, stream: str) -> int:
    for _ in range(50):
        try:
            return int((await js.stream_info(stream)).state.messages)
        except (TimeoutError, nats.errors.Error):
            await asyncio.sleep(0.2)
    raise AssertionError(f"{stream} does not answer")


async def wait_for_count(js: JetStreamContext, stream: str, expected: int, timeout: float) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await stream_count(js, stream)) < expected:
        assert asyncio.get_running_loop().time() < deadline, f"{stream}: {count} of {expected}"
        await asyncio.sleep(0.25)
    return count


async def wait_for_domain_events(js: JetStreamContext, expected: int, timeout: float) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await domain_event_count(js)) < expected:
        assert asyncio.get_running_loop().time() < deadline, f"domain events: {count} of {expected}"
        await asyncio.sleep(0.25)
    return count


async def wait_for_roles(roles: list[ServiceProcess], nats_url: str, options: dict[str, Any]) -> None:
    """rpc and api answer `$SRV.PING.kadaster`; a role that exits on the way fails the test at once."""
    waiting = asyncio.create_task(wait_for_service(nats_url, timeout=60, instances=2, **options))
    while not waiting.done():
        exited = [r.role for r in roles if r.process is not None and r.process.poll() is not None]
        if exited:
            waiting.cancel()
            raise AssertionError(f"exited: {', '.join(exited)} (see their logs)")
        await asyncio.sleep(0.2)
    await waiting


@pytest.mark.postgres
@pytest.mark.slow
async def test_killing_a_nats_node_mid_load_loses_and_doubles_no_command(
    cluster: Cluster, postgres_url: str, tmp_path: Path
) -> None:
    urls = ",".join(server.url for server in cluster.servers)
    reconnecting: dict[str, Any] = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.2}
    # Every node refuses a connection without credentials.
    for server in cluster.servers:
        with pytest.raises(nats.errors.Error):
            await nats.connect(server.url, allow_reconnect=False, connect_timeout=2)
    # The operator's own view of the streams, as the `nats` CLI would have it.
    nc = await nats.connect(urls.split(","), **reconnecting, **cluster.options("ops"))
    js = nc.jetstream()
    roles = []
    hospitals: dict[str, KadasterClient] = {}
    try:
        # The cluster elects its meta leader; then the contract's streams are created with three replicas.
        await wait_for_three_replicas(js)
        assert set((await ensure_streams(js, replicas=3)).values()) == {3}
        for stream in (CMD_STREAM, OUTCOME_STREAM, EVT_STREAM):
            assert (await js.stream_info(stream)).config.num_replicas == 3

        # Every role as its own process, each given all three servers and its own service user.
        roles = []
        for role, user in ROLE_USERS.items():
            env = process_env(urls, postgres_url, tmp_path / "data")
            env["KADASTER_ACK_WAIT_SECONDS"] = "5"
            env["KADASTER_INGEST_BATCH"] = "64"
            env["KADASTER_NATS_USER"] = user
            env["KADASTER_NATS_PASSWORD"] = cluster.credentials[user]["password"]
            roles.append(ServiceProcess(role, env, tmp_path / f"{role}.log"))
        for role in roles:
            role.start()
        await wait_for_roles(roles, cluster.servers[0].url, client_options(cluster.credentials, "fod"))

        # Each hospital speaks with its own credentials; real-time issuance runs alongside, through
        # the node failure.
        servers: Any = urls.split(",")  # nats.connect takes the list as it is
        for party in [*(f"H{i:03d}" for i in range(HOSPITALS)), "H099"]:
            source = f"hospital/{party}"
            hospitals[party] = await KadasterClient.connect(
                servers, source, **reconnecting, **client_options(cluster.credentials, source)
            )
        hospital = hospitals["H099"]
        stop_rpc = asyncio.Event()

        async def issue_in_real_time() -> list[str]:
            issued = []
            while not stop_rpc.is_set():
                outcome = await hospital.issue_mid_id("CT", timeout=3, attempts=10)
                assert outcome["status"] == "accepted", outcome
                issued.append(outcome["result"]["mid_id"])
                await asyncio.sleep(0.05)
            return issued

        rpc = asyncio.create_task(issue_in_real_time())

        # Hospitals publish 1,000 MID-ID requests; the stream's leader node is SIGKILLed after a third
        # and restarted after two thirds, with the same store.
        victim: NatsServer | None = None
        for i in range(COMMANDS):
            if i == COMMANDS // 3:
                leader = (await js.stream_info(CMD_STREAM)).cluster.leader  # type: ignore[union-attr]
                victim = next(s for s in cluster.servers if s.name == leader)
                victim.kill()
            if i == 2 * COMMANDS // 3:
                assert victim is not None
                victim.start()
            party = f"H{i % HOSPITALS:03d}"
            command_id = f"cluster-{i}"
            envelope = {
                "specversion": "1.0",
                "id": command_id,
                "source": f"hospital/{party}",
                "type": "midid.issue",
                "data": {"modality": "MRI"},
            }
            await publish_until_stored(
                hospitals[party].nc.jetstream(),
                f"kadaster.cmd.hospital.{party}.midid.issue",
                json.dumps(envelope).encode(),
                f"hospital/{party}:{command_id}",
            )
        stop_rpc.set()
        by_rpc = await rpc

        # Every command has exactly one outcome, each its own MID-ID.
        await wait_for_count(js, OUTCOME_STREAM, COMMANDS, timeout=60)
        await asyncio.sleep(1.0)
        assert await stream_count(js, CMD_STREAM) == COMMANDS
        total = await stream_count(js, OUTCOME_STREAM)
        outcomes = [outcome_of(json.loads(b)) for b in await read_stream(js, OUTCOME_STREAM, total)]
        assert len(outcomes) == COMMANDS
        assert {o["command_id"] for o in outcomes} == {f"cluster-{i}" for i in range(COMMANDS)}
        assert all(o["status"] == "accepted" for o in outcomes)
        mid_ids = [o["result"]["mid_id"] for o in outcomes] + by_rpc
        assert len(set(mid_ids)) == len(mid_ids)

        # The event store holds one Issued per command and per real-time request, and the relay put
        # every domain event once on KADASTER_EVT.
        register = Register(env=event_store_env(postgres_url))
        try:
            recorded = [
                n
                for n in register.recorder.select_notifications(start=None, limit=10**6)
                if public_event(n.topic) is not None
            ]
        finally:
            register.close()
        assert sum(n.topic.endswith("MidIdRecord.Issued") for n in recorded) == COMMANDS + len(by_rpc)
        assert await wait_for_domain_events(js, len(recorded), timeout=30) == len(recorded)
        assert len(by_rpc) > 0
    finally:
        for client in hospitals.values():
            await client.close()
        for role in roles:
            role.stop()
        await nc.close()
