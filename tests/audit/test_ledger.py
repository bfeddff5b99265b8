"""The tamper-evident ledger: RFC 6962 roots, signed checkpoints, and tampering found where it happened."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresDatastore

from adapters.cli.main import build_parser
from adapters.ledger.keys import (
    LedgerKeyError,
    LedgerSigner,
    load_or_create_signer,
    signature_check,
)
from adapters.ledger.store import SqlCheckpointStore
from services.ledger import (
    EMPTY_ROOT,
    Checkpoint,
    Ledger,
    MerkleFrontier,
    canonical_bytes,
    leaf_hash,
    merkle_root,
    node_hash,
)
from services.register import Register
from tests.conftest import Sender

# RFC 6962 reference leaves and tree heads (certificate-transparency's merkle_tree_test).
RFC6962_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
RFC6962_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
EVERY = 8


def naive_root(data: Sequence[bytes]) -> bytes:
    """RFC 6962 section 2.1, word for word: split at the largest power of two below n."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(data[:k]) + naive_root(data[k:])).digest()


class RawEvents:
    """The events table, reached around the application, as someone with database access could."""

    def __init__(self, register: Register) -> None:
        recorder: Any = register.recorder
        self.datastore = recorder.datastore
        self.postgres = isinstance(self.datastore, PostgresDatastore)
        name = recorder.events_table_name
        self.table = f'"{self.datastore.schema}"."{name}"' if self.postgres else name
        self.id = "notification_id" if self.postgres else "rowid"
        self.mark = "%s" if self.postgres else "?"

    def execute(self, statement: str, *params: Any) -> list[Any]:
        sql = statement.format(table=self.table, id=self.id, p=self.mark)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql, params)
            try:
                return list(cursor.fetchall())
            except Exception:
                return []

    def row(self, notification_id: int) -> dict[str, Any]:
        (row,) = self.execute(
            "SELECT originator_id, originator_version, topic, state FROM {table} WHERE {id} = {p}",
            notification_id,
        )
        return {key: row[key] for key in ("originator_id", "originator_version", "topic", "state")}

    def flip_one_byte(self, notification_id: int, offset: int = 5) -> None:
        state = bytearray(self.row(notification_id)["state"])
        state[offset] ^= 0x01
        self.execute("UPDATE {table} SET state = {p} WHERE {id} = {p}", bytes(state), notification_id)

    def delete(self, notification_id: int) -> None:
        self.execute("DELETE FROM {table} WHERE {id} = {p}", notification_id)

    def swap(self, first: int, second: int) -> None:
        """Exchanges two rows' contents (originator, version, topic, state), keeping their positions."""
        a, b = self.row(first), self.row(second)
        update = (
            "UPDATE {table} SET originator_id = {p}, originator_version = {p}, topic = {p}, state = {p} "
            "WHERE {id} = {p}"
        )
        # The primary key (originator_id, originator_version) forbids a moment with two equal rows.
        self.execute("UPDATE {table} SET originator_version = -1 WHERE {id} = {p}", first)
        self.execute(update, a["originator_id"], a["originator_version"], a["topic"], a["state"], second)
        self.execute(update, b["originator_id"], b["originator_version"], b["topic"], b["state"], first)


def populate(sender: Sender, mid_ids: int) -> None:
    for number in range(mid_ids):
        sender.accepted(f"hospital/H00{number % 3 + 1}", "midid.issue", {"modality": "CT"})


def notification_ids(register: Register) -> list[int]:
    return [n.id for n in register.recorder.select_notifications(start=1, limit=100_000)]


@pytest.fixture
def signer() -> LedgerSigner:
    return LedgerSigner.generate()


@pytest.fixture
def ledger(register: Register, signer: LedgerSigner) -> Ledger:
    return Ledger(register.recorder, SqlCheckpointStore(register.recorder), signer, every=EVERY)


# the tree


def test_merkle_roots_match_the_rfc_6962_test_vectors() -> None:
    leaves = [leaf_hash(bytes.fromhex(data)) for data in RFC6962_LEAVES]
    for size, expected in enumerate(RFC6962_ROOTS):
        assert merkle_root(leaves[:size]).hex() == expected
        assert naive_root([bytes.fromhex(d) for d in RFC6962_LEAVES[:size]]).hex() == expected
    assert EMPTY_ROOT.hex() == RFC6962_ROOTS[0]


def test_the_incremental_root_equals_the_recursive_definition_for_every_size_up_to_130() -> None:
    rng = random.Random(6962)
    data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(130)]
    frontier = MerkleFrontier()
    for size in range(131):
        assert frontier.root() == naive_root(data[:size]), size
        # The right edge saved in a checkpoint resumes the same tree.
        resumed = MerkleFrontier.from_bytes(frontier.size, frontier.to_bytes())
        assert resumed.root() == frontier.root()
        if size < 130:
            frontier.append(leaf_hash(data[size]))


def test_node_hashes_are_domain_separated_from_leaf_hashes() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) != leaf_hash(left + right)


def test_every_field_of_a_stored_event_changes_its_canonical_bytes() -> None:
    base = Notification(
        id=7, originator_id=UUID(int=1), originator_version=2, topic="domain.x:X.Done", state=b'{"a":1}'
    )
    variants = [
        Notification(
            id=8, originator_id=UUID(int=1), originator_version=2, topic=base.topic, state=base.state
        ),
        Notification(
            id=7, originator_id=UUID(int=2), originator_version=2, topic=base.topic, state=base.state
        ),
        Notification(
            id=7, originator_id=UUID(int=1), originator_version=3, topic=base.topic, state=base.state
        ),
        Notification(
            id=7, originator_id=UUID(int=1), originator_version=2, topic="domain.x:X.Undone", state=base.state
        ),
        Notification(
            id=7, originator_id=UUID(int=1), originator_version=2, topic=base.topic, state=b'{"a":2}'
        ),
        # Length prefixes: moving a byte from the topic into the state is a different event.
        Notification(
            id=7, originator_id=UUID(int=1), originator_version=2, topic="domain.x:X.Don", state=b'e{"a":1}'
        ),
    ]
    encodings = {canonical_bytes(base), *(canonical_bytes(v) for v in variants)}
    assert len(encodings) == len(variants) + 1


# recording and verifying


def test_a_clean_log_verifies(
    sender: Sender, register: Register, ledger: Ledger, signer: LedgerSigner
) -> None:
    populate(sender, 12)
    recorded = ledger.advance()
    events = len(notification_ids(register))
    # A checkpoint at every multiple of the interval, and one for the newest event.
    sizes = [c.tree_size for c in recorded]
    assert sizes == [*range(EVERY, events + 1, EVERY), *([events] if events % EVERY else [])]
    assert ledger.advance() == []
    report = ledger.verify(signature_check=signature_check([signer.public]))
    assert report.intact
    assert report.first_discrepancy is None
    assert report.events == report.covered == events
    assert report.last_checkpoint is not None
    assert report.root_hash == report.last_checkpoint.root_hash == recorded[-1].root_hash


def test_a_growing_log_is_hashed_from_where_the_ledger_stopped(
    sender: Sender, register: Register, ledger: Ledger
) -> None:
    populate(sender, 5)
    ledger.advance()
    populate(sender, 7)
    ledger.advance()
    populate(sender, 1)
    latest = ledger.advance()[-1]
    everything = register.recorder.select_notifications(start=1, limit=100_000)
    assert latest.root_hash == merkle_root(leaf_hash(canonical_bytes(n)) for n in everything).hex()
    # The head is replaced as the log grows: one head after the regular checkpoints.
    stored = [c.tree_size for c in ledger.store.checkpoints()]
    assert stored == [
        *range(EVERY, len(everything) + 1, EVERY),
        *([len(everything)] if len(everything) % EVERY else []),
    ]
    assert ledger.verify().intact


def test_a_pass_that_is_asked_to_stop_keeps_what_it_hashed_and_the_next_one_goes_on(
    sender: Sender, register: Register, signer: LedgerSigner
) -> None:
    populate(sender, 8)
    ledger = Ledger(register.recorder, SqlCheckpointStore(register.recorder), signer, every=EVERY, batch=5)
    asked = iter([False, False, True])
    partial = ledger.advance(stopping=lambda: next(asked))
    assert partial[-1].tree_size == 10
    rest = ledger.advance()
    assert rest[-1].tree_size == len(notification_ids(register))
    assert ledger.verify().intact


def test_one_changed_byte_in_a_stored_event_is_reported_at_its_position(
    sender: Sender, register: Register, ledger: Ledger
) -> None:
    populate(sender, 10)
    ledger.advance()
    ids = notification_ids(register)
    position = 13
    RawEvents(register).flip_one_byte(ids[position - 1])
    report = ledger.verify()
    assert not report.intact
    assert report.first_discrepancy is not None
    assert report.first_discrepancy.kind == "altered"
    assert report.first_discrepancy.position == position
    assert report.first_discrepancy.notification_id == ids[position - 1]


def test_a_deleted_event_is_reported_at_the_gap_it_leaves(
    sender: Sender, register: Register, ledger: Ledger
) -> None:
    populate(sender, 10)
    ledger.advance()
    ids = notification_ids(register)
    position = 9
    RawEvents(register).delete(ids[position - 1])
    discrepancy = ledger.verify().first_discrepancy
    assert discrepancy is not None
    assert (discrepancy.kind, discrepancy.position, discrepancy.notification_id) == (
        "missing",
        position,
        ids[position - 1],
    )


def test_two_swapped_events_are_reported_at_the_first_of_them(
    sender: Sender, register: Register, ledger: Ledger
) -> None:
    populate(sender, 10)
    ledger.advance()
    ids = notification_ids(register)
    RawEvents(register).swap(ids[20], ids[6])
    discrepancy = ledger.verify().first_discrepancy
    assert discrepancy is not None
    assert (discrepancy.kind, discrepancy.position) == ("altered", 7)


def test_events_cut_from_the_end_of_the_log_are_reported(
    sender: Sender, register: Register, ledger: Ledger
) -> None:
    populate(sender, 6)
    ledger.advance()
    ids = notification_ids(register)
    RawEvents(register).delete(ids[-1])
    discrepancy = ledger.verify().first_discrepancy
    assert discrepancy is not None
    assert (discrepancy.kind, discrepancy.position, discrepancy.notification_id) == (
        "truncated",
        len(ids),
        ids[-1],
    )


def test_an_altered_checkpoint_record_is_refused(
    sender: Sender, register: Register, ledger: Ledger, signer: LedgerSigner
) -> None:
    populate(sender, 6)
    ledger.advance()
    raw = RawEvents(register)
    table = f'"{raw.datastore.schema}".ledger_checkpoints' if raw.postgres else "ledger_checkpoints"
    raw.execute(f"UPDATE {table} SET root_hash = {{p}} WHERE tree_size = {{p}}", "ab" * 32, EVERY)
    unsigned = ledger.verify().first_discrepancy
    assert unsigned is not None
    assert (unsigned.kind, unsigned.position) == ("checkpoint_altered", EVERY)
    signed = ledger.verify(signature_check=signature_check([signer.public])).first_discrepancy
    assert signed is not None
    assert (signed.kind, signed.position) == ("checkpoint_signature", EVERY)


# auditors' checkpoints


def test_an_auditors_old_checkpoint_verifies_against_the_grown_log(
    sender: Sender, ledger: Ledger, signer: LedgerSigner
) -> None:
    populate(sender, 5)
    kept = ledger.advance()
    populate(sender, 9)
    ledger.advance()
    report = ledger.verify(kept=kept, signature_check=signature_check([signer.public]))
    assert report.intact
    assert [result.ok for result in report.kept] == [True] * len(kept)
    assert report.events > kept[-1].tree_size


def test_a_kept_checkpoint_with_a_bad_signature_or_another_key_is_refused(
    sender: Sender, ledger: Ledger, signer: LedgerSigner
) -> None:
    populate(sender, 4)
    (kept, *_) = ledger.advance()
    flipped = kept.signature[:-1] + ("0" if kept.signature[-1] != "0" else "1")
    forged = kept.model_copy(update={"signature": flipped})
    stranger = LedgerSigner.generate()
    foreign = kept.model_copy(update={"key_id": stranger.key_id})
    foreign = foreign.model_copy(update={"signature": stranger.sign(foreign.signed_bytes())})
    report = ledger.verify(kept=[forged, foreign, kept], signature_check=signature_check([signer.public]))
    assert not report.intact
    by_signature = {result.checkpoint.signature: result for result in report.kept}
    assert not by_signature[forged.signature].ok
    assert not by_signature[foreign.signature].ok
    assert by_signature[kept.signature].ok


def test_a_rewritten_history_is_refused_by_a_kept_checkpoint_even_when_the_ledger_is_rebuilt(
    sender: Sender, register: Register, ledger: Ledger, signer: LedgerSigner
) -> None:
    populate(sender, 6)
    kept = ledger.advance()[-1]
    populate(sender, 3)
    ledger.advance()
    # Someone with the database and the key rewrites an event and records the ledger anew.
    raw = RawEvents(register)
    raw.flip_one_byte(notification_ids(register)[2])
    table = f'"{raw.datastore.schema}".ledger_checkpoints' if raw.postgres else "ledger_checkpoints"
    raw.execute(f"DELETE FROM {table}")
    ledger.advance()
    check = signature_check([signer.public])
    assert ledger.verify(signature_check=check).intact
    report = ledger.verify(kept=[kept], signature_check=check)
    assert not report.intact
    (result,) = report.kept
    assert not result.ok
    assert "rewritten" in result.reason


def test_a_kept_checkpoint_larger_than_the_log_is_refused(
    sender: Sender, register: Register, ledger: Ledger
) -> None:
    populate(sender, 4)
    kept = ledger.advance()[-1]
    RawEvents(register).delete(notification_ids(register)[-1])
    report = ledger.verify(kept=[kept], signature_check=lambda checkpoint: True)
    (result,) = report.kept
    assert not result.ok
    assert "cut" in result.reason


# the key


def test_a_ledger_key_is_created_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = load_or_create_signer(None, data_dir)
    path = data_dir / "ledger-ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_signer(None, data_dir).key_id == created.key_id
    assert load_or_create_signer(path, tmp_path / "elsewhere").key_id == created.key_id
    assert len(created.key_id) == 16
    with pytest.raises(LedgerKeyError, match="does not exist"):
        load_or_create_signer(tmp_path / "missing.pem", data_dir)


# the command line


def audit(*argv: str) -> int:
    args = build_parser().parse_args(["audit", *argv])
    result: int = args.func(args)
    return result


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("KADASTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KADASTER_DATABASE_URL", database_url)
    monkeypatch.setenv("KADASTER_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path


def test_audit_verify_finds_tampering_and_checks_exported_checkpoints(
    sender: Sender, register: Register, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(sender, 5)
    # The relay's step, by hand: creates the key and records signed checkpoints.
    assert audit("advance") == 0
    kept_file = cli_env / "kept.jsonl"
    assert audit("checkpoints", "export", "--out", str(kept_file)) == 0
    lines = kept_file.read_text().splitlines()
    assert lines
    assert all(Checkpoint.model_validate_json(line).signature for line in lines)
    assert audit("public-key", "--out", str(cli_env / "ledger.pub")) == 0
    capsys.readouterr()
    # An auditor checks with their own copy of the public key.
    assert (
        audit(
            "verify", "--checkpoints", str(kept_file), "--public-key", str(cli_env / "ledger.pub"), "--json"
        )
        == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["intact"] is True
    assert all(kept["ok"] for kept in answer["kept_checkpoints"])
    # One byte changed behind the register's back is found, with exit code 1.
    position = 4
    RawEvents(register).flip_one_byte(notification_ids(register)[position - 1])
    assert audit("verify", "--json") == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["first_discrepancy"]["position"] == position
    assert audit("verify") == 1
    assert f"TAMPERED at position {position}" in capsys.readouterr().out


def test_audit_verify_checks_kept_checkpoints_only_with_a_public_key(
    sender: Sender, register: Register, ledger: Ledger, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(sender, 1)
    kept = cli_env / "kept.jsonl"
    kept.write_text("\n".join(c.to_json_line() for c in ledger.advance()) + "\n")
    # The ledger's key was never created in this data dir, and none is named.
    assert audit("verify", "--checkpoints", str(kept)) == 2
    assert "public key" in capsys.readouterr().err
    assert audit("verify", "--checkpoints", str(kept), "--public-key", str(cli_env / "none.pem")) == 2
    assert "none.pem" in capsys.readouterr().err
    kept.write_text('{"tree_size": 1}\n')
    assert audit("verify", "--checkpoints", str(kept)) == 2
    assert "kept.jsonl:1 is not a checkpoint" in capsys.readouterr().err


# the relay's loop


async def test_the_ledger_loop_publishes_signed_checkpoints_on_nats(
    sender: Sender, register: Register, tmp_path: Path
) -> None:
    import nats
    from nats.js.errors import NotFoundError

    from adapters.config import load_settings
    from adapters.ledger.keys import load_public_key
    from adapters.ledger.publisher import CHECKPOINT_SUBJECT, read_checkpoint
    from adapters.ledger.runner import run_ledger
    from adapters.nats.server import NatsServer, free_port
    from adapters.nats.streams import EVT_STREAM, ensure_streams

    populate(sender, 3)
    server = NatsServer(store_dir=tmp_path / "nats", port=free_port(), sync_always=False)
    server.start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js, replicas=1)
        settings = load_settings(
            environ={}, data_dir=str(tmp_path / "data"), database_url="sqlite:///unused.db"
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run_ledger(register, settings, stop, js=js, interval=0.05))
        message = None
        for _ in range(100):
            try:
                message = await js.get_last_msg(EVT_STREAM, CHECKPOINT_SUBJECT)
                break
            except NotFoundError:
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await nc.close()
    finally:
        server.stop()
    assert message is not None and message.data is not None
    checkpoint = read_checkpoint(message.data)
    assert checkpoint.tree_size == len(notification_ids(register))
    public = load_public_key(tmp_path / "data" / "ledger-ed25519.pem")
    assert public.verifies(checkpoint)
    assert not public.verifies(checkpoint.model_copy(update={"tree_size": checkpoint.tree_size + 1}))


def test_a_missing_or_swapped_key_is_an_error_once_the_ledger_has_checkpoints(
    sender: Sender, register: Register, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(sender, 2)
    assert audit("advance") == 0
    key = cli_env / "data" / "ledger-ed25519.pem"
    key.unlink()
    populate(sender, 1)
    assert audit("advance") == 2
    assert "is missing" in capsys.readouterr().err
    assert not key.exists()
    # A key made by other means is refused as well.
    key.write_bytes(LedgerSigner.generate().pem())
    assert audit("advance") == 2
    assert "rotate-key" in capsys.readouterr().err


def test_a_key_rotation_is_a_recorded_act_after_which_the_ledger_goes_on_with_the_new_key(
    sender: Sender, register: Register, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.ledger.runner import recorded_keys

    populate(sender, 2)
    assert audit("advance") == 0
    key = cli_env / "data" / "ledger-ed25519.pem"
    old = load_or_create_signer(key, cli_env)
    assert audit("public-key", "--out", str(cli_env / "old.pub")) == 0
    key.unlink()  # lost
    assert audit("rotate-key", "--reason", "key file lost in a disk failure", "--by", "operator-1") == 0
    new = load_or_create_signer(key, cli_env)
    assert new.key_id != old.key_id
    keys = recorded_keys(register)
    assert keys is not None and keys.current_key_id == new.key_id
    assert keys.rotations[-1]["previous_key_id"] == old.key_id
    assert keys.rotations[-1]["by"] == "operator-1"
    populate(sender, 1)
    assert audit("advance") == 0
    assert audit("public-key", "--out", str(cli_env / "new.pub")) == 0
    capsys.readouterr()
    check = ("--public-key", str(cli_env / "old.pub"), "--public-key", str(cli_env / "new.pub"))
    assert audit("verify", *check) == 0
    assert "intact" in capsys.readouterr().out
