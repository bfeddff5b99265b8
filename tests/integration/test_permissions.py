"""Who may say what, enforced by nats-server itself: generated users, real credentials, real roles."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from adapters.bootstrap import ROLES, started
from adapters.cli.main import build_parser
from adapters.config import Settings
from adapters.http.health import check_health
from adapters.nats.accounts import (
    DEFAULT_SERVICES,
    ROLE_PERMISSIONS,
    PartiesError,
    bcrypt_hasher,
    client_options,
    generate,
)
from adapters.nats.client import KadasterClient, QueryFailed
from adapters.nats.server import NatsServer, free_port, nats_server_binary
from adapters.nats.streams import CMD_STREAM, INGEST_CONSUMER, OUTCOME_STREAM
from tests.integration.conftest import service_settings

PARTIES = {
    "institutions": ["H001", "H002"],
    "suppliers": ["S001"],
    "authorities": ["fod", "fanc", "riziv", "vazg"],
    "services": {**DEFAULT_SERVICES, "ops": ["admin"]},
}
REFUSED = 0.5  # seconds to wait for an answer that must not come


@dataclass
class Party:
    """A connection with one party's credentials, and the permission errors the server sent it."""

    client: KadasterClient
    errors: list[str] = field(default_factory=list)

    @property
    def nc(self) -> NATS:
        return self.client.nc

    async def violation(self, verb: str, subject: str, timeout: float = 3.0) -> None:
        """Waits for the server's `Permissions Violation for <verb> to "<subject>"`."""
        expected = f'permissions violation for {verb} to "{subject}"'.lower()
        deadline = asyncio.get_running_loop().time() + timeout
        while not any(expected in e.lower() for e in self.errors):
            assert asyncio.get_running_loop().time() < deadline, f"no {expected!r} in {self.errors}"
            await asyncio.sleep(0.02)


@dataclass
class SecuredRegister:
    url: str
    credentials: dict[str, Any]
    settings: dict[str, Settings]  # of each service user
    stack: AsyncExitStack

    async def party(self, source: str) -> Party:
        errors: list[str] = []

        async def collect(error: Exception) -> None:
            errors.append(str(error))

        client = await KadasterClient.connect(
            self.url, source, error_cb=collect, **client_options(self.credentials, source)
        )
        self.stack.push_async_callback(client.close)
        return Party(client, errors)

    async def operations(self) -> NATS:
        """The admin user, for looking into the streams as an operator with the `nats` CLI would."""
        entry = self.credentials["ops"]
        nc = await nats.connect(self.url, user="ops", password=entry["password"])
        self.stack.push_async_callback(nc.close)
        return nc


def write_parties(directory: Path, parties: dict[str, Any]) -> Path:
    path = directory / "parties.json"
    path.write_text(json.dumps(parties))
    return path


# As docker-compose.yml runs the roles: rpc and api under a user of their own.
COMPOSE_LAYOUT: dict[str, list[str]] = {user: list(roles) for user, roles in DEFAULT_SERVICES.items()}


@asynccontextmanager
async def secured_register(tmp_path: Path, layout: dict[str, list[str]]) -> AsyncIterator[SecuredRegister]:
    """nats-server with the generated users, and the roles started under the service users of `layout`."""
    auth, _ = generate(
        write_parties(tmp_path, {**PARTIES, "services": {**layout, "ops": ["admin"]}}),
        tmp_path / "auth.conf",
        tmp_path / "credentials.json",
    )
    credentials = json.loads((tmp_path / "credentials.json").read_text())
    server = NatsServer(store_dir=tmp_path / "nats", port=free_port(), sync_always=False, extra_config=auth)
    server.start()
    database = f"sqlite:///{tmp_path / 'kadaster.db'}"
    settings = {
        user: service_settings(
            server.url,
            database,
            tmp_path / "data",
            nats_user=user,
            nats_password=credentials[user]["password"],
        )
        for user in layout
    }
    stop = asyncio.Event()
    try:
        async with AsyncExitStack() as stack:
            for user, roles in layout.items():
                await stack.enter_async_context(started(settings[user], roles, stop))
            async with AsyncExitStack() as clients:
                yield SecuredRegister(server.url, credentials, settings, clients)
    finally:
        server.stop()


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[SecuredRegister]:
    async with secured_register(tmp_path, COMPOSE_LAYOUT) as register:
        yield register


async def messages_on(nc: NATS, stream: str, subject: str) -> int:
    info = await nc.jetstream().stream_info(stream, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


# What a party may do


async def test_a_hospital_issues_queries_and_hears_its_own_outcomes_with_its_own_credentials(
    secured: SecuredRegister,
) -> None:
    h001 = await secured.party("hospital/H001")
    # Real-time issuance over the hospital's own RPC subject, the reply on its own inbox.
    by_rpc = await h001.client.issue_mid_id("CT")
    assert by_rpc["status"] == "accepted"
    # A command on the stream: the server takes it and the outcome arrives on the hospital's outcome subject.
    by_stream = await h001.client.send("midid.issue", {"modality": "MRI"}, command_id="own-1")
    assert by_stream["status"] == "accepted"
    # Its own queries answer.
    listed = await h001.client.query("midids")
    assert {m["mid_id"] for m in listed["items"]} == {
        by_rpc["result"]["mid_id"],
        by_stream["result"]["mid_id"],
    }
    assert (await h001.client.outcome("own-1")) == by_stream
    assert h001.errors == []


async def test_the_application_still_rejects_a_forged_source_on_the_senders_own_subject(
    secured: SecuredRegister,
) -> None:
    h001 = await secured.party("hospital/H001")
    forged = h001.client.envelope("midid.issue", {"modality": "CT"}, command_id="forged-1")
    forged["source"] = "hospital/H002"
    outcome = await h001.client.send_envelope(forged)
    assert outcome["status"] == "rejected"
    assert outcome["errors"][0]["code"] == "source_mismatch"


async def test_a_supplier_and_the_authorities_are_heard_on_their_own_subjects(
    secured: SecuredRegister,
) -> None:
    supplier = await secured.party("supplier/S001")
    notice = await supplier.client.send(
        "device.installation",
        {
            "mid_id": "MID-0000043-66",
            "institution": "H001",
            "modality": "CT",
            "manufacturer": "Acme",
            "model": "X1",
            "serial_number": "SN1",
            "installed_on": "2024-04-01",
        },
    )
    # Rejected by the register (an unknown MID-ID), which proves it reached the register and came back.
    assert notice["source"] == "supplier/S001" and notice["status"] == "rejected"
    fod = await secured.party("fod")
    commands = await fod.client.query("commands")
    assert any(c["command_id"] == notice["command_id"] for c in commands["items"])
    assert supplier.errors == [] and fod.errors == []


# What a party may not do


async def test_a_hospital_cannot_publish_a_command_as_another_hospital(secured: SecuredRegister) -> None:
    h001 = await secured.party("hospital/H001")
    envelope = h001.client.envelope("midid.issue", {"modality": "CT"}, command_id="as-h002")
    envelope["source"] = "hospital/H002"
    subject = "kadaster.cmd.hospital.H002.midid.issue"
    with pytest.raises(nats.errors.TimeoutError):
        # No PubAck: the server dropped the message before JetStream saw it.
        await h001.client.js.publish(subject, json.dumps(envelope).encode(), timeout=REFUSED)
    await h001.violation("publish", subject)
    ops = await secured.operations()
    assert await messages_on(ops, CMD_STREAM, "kadaster.cmd.hospital.H002.>") == 0
    # Nor may it speak for a supplier or an authority, or write outcomes and events itself.
    for other in (
        "kadaster.cmd.supplier.S001.device.installation",
        "kadaster.cmd.fod.midid.link",
        "kadaster.outcome.hospital.H002",
        "kadaster.evt.mid_id.issued",
    ):
        await h001.nc.publish(other, b"{}")
        await h001.violation("publish", other)


async def test_a_hospital_cannot_ask_for_another_hospitals_mid_ids_or_data(secured: SecuredRegister) -> None:
    h001 = await secured.party("hospital/H001")
    for subject in (
        "kadaster.rpc.hospital.H002.midid.issue",
        "kadaster.query.hospital.H002.midids",
        "kadaster.query.midids",
        "kadaster.query.commands",
        "$SRV.PING.kadaster",
    ):
        with pytest.raises(nats.errors.TimeoutError):
            await h001.nc.request(subject, b"{}", timeout=REFUSED)
        await h001.violation("publish", subject)
    # Asking on its own subject for another hospital's data is refused by the register itself.
    with pytest.raises(QueryFailed) as refused:
        await h001.client.query("midids", {"institution": "H002"})
    assert refused.value.errors[0]["code"] == "forbidden"


async def test_a_hospital_cannot_read_another_hospitals_outcomes_replies_or_requests(
    secured: SecuredRegister,
) -> None:
    h001 = await secured.party("hospital/H001")
    overheard: list[Msg] = []

    async def overhear(msg: Msg) -> None:
        overheard.append(msg)

    for subject in (
        "kadaster.outcome.hospital.H002",
        "kadaster.outcome.>",
        "_INBOX.hospital-H002.>",
        "_INBOX.>",
        "kadaster.rpc.hospital.*.midid.issue",
        "kadaster.cmd.>",
        "kadaster.evt.>",
    ):
        await h001.nc.subscribe(subject, cb=overhear)
        await h001.violation("subscription", subject)
    with pytest.raises(nats.errors.Error):
        # Nor through JetStream: creating a consumer on the outcome stream is an API call it may not make.
        await h001.nc.jetstream(timeout=REFUSED).subscribe(
            "kadaster.outcome.hospital.H002", stream=OUTCOME_STREAM
        )
    # H002 works meanwhile, and H001 hears none of it.
    h002 = await secured.party("hospital/H002")
    assert (await h002.client.send("midid.issue", {"modality": "PET"}))["status"] == "accepted"
    assert (await h002.client.issue_mid_id("CT"))["status"] == "accepted"
    await asyncio.sleep(0.2)
    assert overheard == []


async def test_a_hospital_cannot_steer_the_services_reply_onto_a_stream_or_the_jetstream_api(
    secured: SecuredRegister,
) -> None:
    ops = await secured.operations()
    h001 = await secured.party("hospital/H001")
    await h001.client.send("midid.issue", {"modality": "CT"}, command_id="kept-1")
    commands_before = await messages_on(ops, CMD_STREAM, "kadaster.cmd.>")
    for reply in (
        "kadaster.outcome.hospital.H002",
        f"$JS.API.STREAM.PURGE.{CMD_STREAM}",
        f"$JS.API.CONSUMER.DELETE.{CMD_STREAM}.{INGEST_CONSUMER}",
    ):
        envelope = h001.client.envelope("midid.issue", {"modality": "CT"})
        # The requester chooses the reply subject; the responder's user may publish only under _INBOX,
        # and the service itself neither handles nor answers a request whose reply is not an inbox.
        await h001.nc.publish(
            "kadaster.rpc.hospital.H001.midid.issue", json.dumps(envelope).encode(), reply=reply
        )
        await asyncio.sleep(0.3)
        with pytest.raises(QueryFailed):
            await h001.client.outcome(envelope["id"])
    assert await messages_on(ops, OUTCOME_STREAM, "kadaster.outcome.hospital.H002") == 0
    assert await messages_on(ops, CMD_STREAM, "kadaster.cmd.>") == commands_before > 0
    await ops.jetstream().consumer_info(CMD_STREAM, INGEST_CONSUMER)


async def test_the_authorities_other_than_the_fod_do_not_read_the_command_log(
    secured: SecuredRegister,
) -> None:
    fanc = await secured.party("fanc")
    assert "items" in await fanc.client.query("midids")
    with pytest.raises(nats.errors.TimeoutError):
        await fanc.nc.request("kadaster.query.commands", b"{}", timeout=REFUSED)
    await fanc.violation("publish", "kadaster.query.commands")
    supplier = await secured.party("supplier/S001")
    with pytest.raises(nats.errors.TimeoutError):
        await supplier.nc.request("kadaster.query.devices", b"{}", timeout=REFUSED)
    await supplier.violation("publish", "kadaster.query.devices")


async def test_each_roles_health_check_passes_under_its_own_user(secured: SecuredRegister) -> None:
    for role in ROLES:
        user = next(user for user, roles in COMPOSE_LAYOUT.items() if role in roles)
        assert await check_health(secured.settings[user], role, secured.url) == [], role


async def test_kadaster_serve_runs_every_role_under_one_user_with_every_roles_permissions(
    tmp_path: Path,
) -> None:
    async with secured_register(tmp_path, {"kadaster": list(ROLES)}) as register:
        h001 = await register.party("hospital/H001")
        assert (await h001.client.issue_mid_id("CT"))["status"] == "accepted"
        assert (await h001.client.send("midid.issue", {"modality": "CT"}))["status"] == "accepted"
        assert len((await h001.client.query("midids"))["items"]) == 2
        assert await check_health(register.settings["kadaster"], "serve", register.url) == []


async def test_a_wrong_password_is_refused(secured: SecuredRegister) -> None:
    with pytest.raises(nats.errors.Error):
        await nats.connect(
            secured.url,
            user="hospital-H001",
            password="not-the-password-at-all",
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )


# The configuration itself


def test_every_role_of_the_service_has_its_permissions() -> None:
    assert set(ROLES) <= set(ROLE_PERMISSIONS)


def run_nats_config(*argv: str) -> int:
    args = build_parser().parse_args(["nats-config", *argv])
    result: int = args.func(args)
    return result


@pytest.mark.parametrize("output_format", ["conf", "json"])
@pytest.mark.parametrize("hashing", ["plain", "auto"])
def test_nats_server_accepts_the_generated_configuration(
    tmp_path: Path, output_format: str, hashing: str
) -> None:
    parties = write_parties(tmp_path, PARTIES)
    out = tmp_path / f"auth.{output_format}"
    assert (
        run_nats_config(
            "--parties", str(parties), "--out", str(out), "--format", output_format, "--hash", hashing
        )
        == 0
    )
    server_conf = tmp_path / "server.conf"
    server_conf.write_text(f"listen: 127.0.0.1:{free_port()}\ninclude ./{out.name}\n")
    checked = subprocess.run(
        [nats_server_binary(), "-c", str(server_conf), "-t"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    for private in (out, tmp_path / "credentials.json"):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    credentials = json.loads((tmp_path / "credentials.json").read_text())
    assert credentials["hospital-H001"]["inbox_prefix"] == "_INBOX.hospital-H001"
    text = out.read_text()
    if hashing == "auto" and bcrypt_hasher() is not None:
        assert credentials["fod"]["password"] not in text and credentials["fod"]["bcrypt"] in text
    else:
        assert credentials["fod"]["password"] in text


def test_re_running_keeps_every_password_but_the_rotated_ones(tmp_path: Path) -> None:
    parties = write_parties(tmp_path, PARTIES)
    credentials = tmp_path / "credentials.json"
    generate(parties, None, credentials, hashing="plain")
    first = json.loads(credentials.read_text())
    # A new hospital joins; nobody else's password changes.
    write_parties(tmp_path, {**PARTIES, "institutions": ["H001", "H002", "H003"]})
    generate(parties, None, credentials, hashing="plain")
    second = json.loads(credentials.read_text())
    assert "hospital-H003" in second
    assert all(second[user]["password"] == entry["password"] for user, entry in first.items())
    generate(parties, None, credentials, rotate=["hospital-H001"], hashing="plain")
    third = json.loads(credentials.read_text())
    assert [u for u in second if second[u]["password"] != third[u]["password"]] == ["hospital-H001"]


def test_a_given_bcrypt_hash_goes_into_the_configuration_and_no_password_into_the_credentials(
    tmp_path: Path,
) -> None:
    hashed = "$2a$11$" + "a" * 53
    parties = write_parties(tmp_path, {**PARTIES, "passwords": {"fod": hashed}})
    text, _ = generate(parties, None, tmp_path / "credentials.json")
    assert f'"{hashed}"' in text
    assert "password" not in json.loads((tmp_path / "credentials.json").read_text())["fod"]


@pytest.mark.parametrize(
    "parties",
    [
        {"authorities": ["fod", "nasa"]},
        {"institutions": ["H001", "H001"]},
        {"institutions": ["H 001"]},
        {"services": {"fod": ["rpc"]}},
        {"services": {"kadaster": ["sing"]}},
        {"passwords": {"hospital-H999": "x" * 20}},
        {"passwords": {"fod": "short"}},
        {"nonsense": True},
    ],
)
def test_a_parties_file_that_cannot_be_meant_is_refused(tmp_path: Path, parties: dict[str, Any]) -> None:
    with pytest.raises(PartiesError):
        generate(write_parties(tmp_path, parties), None, tmp_path / "credentials.json")


def test_a_parties_file_may_be_toml(tmp_path: Path) -> None:
    parties = tmp_path / "parties.toml"
    parties.write_text('institutions = ["H001"]\nsuppliers = []\nservices = ["kadaster"]\n')
    _, users = generate(parties, None, tmp_path / "credentials.json", hashing="plain")
    assert [u.name for u in users] == ["hospital-H001", "fod", "fanc", "riziv", "vazg", "auditor", "kadaster"]
    assert users[-1].roles == ROLES


async def test_the_auditor_reads_every_query_and_the_checkpoints_and_sends_nothing(
    secured: SecuredRegister,
) -> None:
    from adapters.ledger.publisher import CHECKPOINT_SUBJECT, newest_published_checkpoint

    h001 = await secured.party("hospital/H001")
    assert (await h001.client.issue_mid_id("CT"))["status"] == "accepted"
    entry = secured.credentials["auditor"]
    errors: list[str] = []

    async def collect(error: Exception) -> None:
        errors.append(str(error).lower())

    auditor = await nats.connect(
        secured.url,
        user="auditor",
        password=entry["password"],
        inbox_prefix=entry["inbox_prefix"],
        error_cb=collect,
    )
    secured.stack.push_async_callback(auditor.close)
    heard = await auditor.subscribe(CHECKPOINT_SUBJECT)
    reply = await auditor.request("kadaster.query.commands", b"{}", timeout=5)
    assert "items" in json.loads(reply.data)
    # The ledger publishes its checkpoint within its interval; the auditor hears it and can read it back.
    await heard.next_msg(timeout=30)
    assert await newest_published_checkpoint(auditor.jetstream()) is not None
    await auditor.publish("kadaster.cmd.fod.institution.register", b"{}")
    await auditor.flush()
    deadline = asyncio.get_running_loop().time() + 3
    while not any("permissions violation for publish" in e for e in errors):
        assert asyncio.get_running_loop().time() < deadline, errors
        await asyncio.sleep(0.02)
    fod = await secured.party("fod")
    await fod.nc.subscribe(CHECKPOINT_SUBJECT)
    await fod.nc.flush()
    await asyncio.sleep(0.3)
    assert not any("subscription" in e for e in fod.errors), fod.errors
