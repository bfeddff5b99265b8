"""The tamper-evident ledger of the event log: an RFC 6962 Merkle tree, a hash chain, signed checkpoints."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from eventsourcing.persistence import ApplicationRecorder, Notification
from pydantic import BaseModel, ConfigDict, Field

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
CHAIN_START = bytes(32)
CHECKPOINT_VERSION = 1
DEFAULT_CHECKPOINT_EVERY = 1000

ENTRY_SIZE = 24
"""Per position, a block keeps the notification id (8 bytes) and the first 16 bytes of the leaf hash.

They only say *where* the log disagrees; the signed root and chain are what prove *that* it does.
"""

_U64 = struct.Struct(">Q")
_ENTRY = struct.Struct(">Q16s")


# hashing


def canonical_bytes(notification: Notification) -> bytes:
    """Every field of a stored event, each length-prefixed, so no two different rows encode alike."""
    originator_id = str(notification.originator_id).encode()
    topic = notification.topic.encode()
    state = bytes(notification.state)
    return b"".join(
        (
            _U64.pack(notification.id),
            _U64.pack(len(originator_id)),
            originator_id,
            _U64.pack(notification.originator_version),
            _U64.pack(len(topic)),
            topic,
            _U64.pack(len(state)),
            state,
        )
    )


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def notification_leaf(notification: Notification) -> bytes:
    return leaf_hash(canonical_bytes(notification))


def next_chain(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


class MerkleFrontier:
    """The right edge of an RFC 6962 tree: one perfect-subtree hash per 1-bit of its size, largest first.

    Appending is amortised O(1) and the memory O(log n), so a million leaves are one linear pass.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} edge hashes, not {len(hashes)}")
        self.size = size
        self._stack = list(hashes)

    def append(self, leaf: bytes) -> None:
        merged, size = leaf, self.size
        # Each trailing 1-bit of the size is a perfect subtree of the new leaf's height: fold it in.
        while size & 1:
            merged = node_hash(self._stack.pop(), merged)
            size >>= 1
        self._stack.append(merged)
        self.size += 1

    def root(self) -> bytes:
        """RFC 6962's Merkle Tree Hash of the leaves so far (SHA-256 of nothing when there are none)."""
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            root = node_hash(left, root)
        return root

    def to_bytes(self) -> bytes:
        return b"".join(self._stack)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> MerkleFrontier:
        return cls(size, [data[i : i + 32] for i in range(0, len(data), 32)])


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The Merkle Tree Hash over leaf hashes, computed incrementally."""
    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


# checkpoints


class Checkpoint(BaseModel):
    """What the register signs and publishes: the log's size, its Merkle root and its chain hash."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = CHECKPOINT_VERSION
    tree_size: int = Field(ge=0)
    root_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    chain_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    timestamp: str
    key_id: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """Canonical JSON of every field but the signature: sorted keys, no spaces, UTF-8."""
        body = self.model_dump(exclude={"signature"})
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def to_json_line(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))


class Signer(Protocol):
    """Signs checkpoints (the Ed25519 key lives in the adapters)."""

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> str: ...


SignatureCheck = Callable[[Checkpoint], bool]
"""True when a checkpoint's signature verifies with a key the caller trusts."""


@dataclass(frozen=True)
class LedgerBlock:
    """One recorded checkpoint and the positions it adds to the previous one.

    `regular` blocks end at a multiple of the checkpoint interval and are kept for good; the one
    `head` block after them covers the newest positions and is replaced as the log grows.
    """

    checkpoint: Checkpoint
    regular: bool
    start: int
    last_notification_id: int
    entries: bytes
    frontier: bytes

    @property
    def tree_size(self) -> int:
        return self.checkpoint.tree_size

    def entry(self, position: int) -> tuple[int, bytes]:
        """(notification id, leaf hash prefix) recorded at a position this block covers."""
        offset = (position - self.start - 1) * ENTRY_SIZE
        notification_id, prefix = _ENTRY.unpack_from(self.entries, offset)
        return notification_id, prefix


class CheckpointStore(Protocol):
    """Where the recorded blocks live (a table beside the events)."""

    def last_block(self) -> LedgerBlock | None: ...

    def blocks(self, after: int = 0) -> Iterator[LedgerBlock]: ...

    def checkpoints(self, after: int = 0) -> list[Checkpoint]: ...

    def append(self, blocks: Sequence[LedgerBlock], after: int) -> bool:
        """Adds blocks after tree size `after`, replacing the head; False if another writer came first."""
        ...


# verification results

DiscrepancyKind = Literal[
    "altered", "missing", "inserted", "truncated", "checkpoint_altered", "checkpoint_signature", "ledger_gap"
]


@dataclass(frozen=True)
class Discrepancy:
    """The first place where the stored events disagree with what the ledger recorded."""

    kind: DiscrepancyKind
    position: int
    notification_id: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "position": self.position,
            "notification_id": self.notification_id,
            "message": self.message,
        }


@dataclass(frozen=True)
class KeptCheckpointResult:
    """Whether today's log extends a checkpoint an auditor kept."""

    checkpoint: Checkpoint
    ok: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.checkpoint.tree_size,
            "root_hash": self.checkpoint.root_hash,
            "timestamp": self.checkpoint.timestamp,
            "ok": self.ok,
            "reason": self.reason,
        }


@dataclass
class VerificationReport:
    events: int = 0
    covered: int = 0
    root_hash: str = EMPTY_ROOT.hex()
    chain_hash: str = CHAIN_START.hex()
    last_checkpoint: Checkpoint | None = None
    first_discrepancy: Discrepancy | None = None
    kept: list[KeptCheckpointResult] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.first_discrepancy is None and all(result.ok for result in self.kept)

    @property
    def unchecked(self) -> int:
        """Events newer than the last recorded checkpoint: nothing to compare them with yet."""
        return self.events - self.covered

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "events": self.events,
            "covered": self.covered,
            "unchecked": self.unchecked,
            "root_hash": self.root_hash,
            "chain_hash": self.chain_hash,
            "last_checkpoint": self.last_checkpoint.model_dump() if self.last_checkpoint else None,
            "first_discrepancy": self.first_discrepancy.as_dict() if self.first_discrepancy else None,
            "kept_checkpoints": [result.as_dict() for result in self.kept],
        }


Progress = Callable[[int, int], None]
"""Told (events done, events expected) after each batch."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Tail:
    """The hashing state after the last recorded position, and the open block's entries."""

    def __init__(self, last: LedgerBlock | None) -> None:
        if last is None:
            self.frontier, self.chain, self.last_id = MerkleFrontier(), CHAIN_START, 0
            self.block_start, self.entries = 0, bytearray()
            return
        self.frontier = MerkleFrontier.from_bytes(last.tree_size, last.frontier)
        self.chain = bytes.fromhex(last.checkpoint.chain_hash)
        self.last_id = last.last_notification_id
        # A head block is reopened and extended; a regular one is closed for good.
        self.block_start = last.tree_size if last.regular else last.start
        self.entries = bytearray() if last.regular else bytearray(last.entries)

    def add(self, notification: Notification) -> None:
        leaf = notification_leaf(notification)
        self.frontier.append(leaf)
        self.chain = next_chain(self.chain, leaf)
        self.entries += _ENTRY.pack(notification.id, leaf[:16])
        self.last_id = notification.id

    def close(self, regular: bool, signer: Signer, moment: datetime) -> LedgerBlock:
        unsigned = Checkpoint(
            tree_size=self.frontier.size,
            root_hash=self.frontier.root().hex(),
            chain_hash=self.chain.hex(),
            timestamp=_timestamp(moment),
            key_id=signer.key_id,
        )
        checkpoint = unsigned.model_copy(update={"signature": signer.sign(unsigned.signed_bytes())})
        block = LedgerBlock(
            checkpoint=checkpoint,
            regular=regular,
            start=self.block_start,
            last_notification_id=self.last_id,
            entries=bytes(self.entries),
            frontier=self.frontier.to_bytes(),
        )
        if regular:
            self.block_start, self.entries = self.frontier.size, bytearray()
        return block


class Ledger:
    """Hashes the event log into recorded, signed checkpoints, and checks the log against them."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        store: CheckpointStore,
        signer: Signer | None = None,
        every: int = DEFAULT_CHECKPOINT_EVERY,
        batch: int = 5000,
        clock: Callable[[], datetime] = _utc_now,
        flush_blocks: int = 50,
    ) -> None:
        if every < 1:
            raise ValueError("checkpoints are recorded every 1 or more events")
        self.recorder = recorder
        self.store = store
        self.signer = signer
        self.every = every
        self.batch = batch
        self.clock = clock
        self.flush_blocks = flush_blocks

    def _notifications(
        self, after: int, stopping: Callable[[], bool] | None = None
    ) -> Iterator[Notification]:
        position = after
        while stopping is None or not stopping():
            notifications = self.recorder.select_notifications(
                start=position, limit=self.batch, inclusive_of_start=False
            )
            if not notifications:
                return
            yield from notifications
            position = notifications[-1].id

    def advance(self, stopping: Callable[[], bool] | None = None) -> list[Checkpoint]:
        """Hashes every event recorded since the last checkpoint; returns the checkpoints it recorded.

        A signed checkpoint is recorded at every multiple of `every` positions, and one for the
        newest position (the head), so no recorded event waits for the next multiple to be covered.
        When `stopping()` turns true, it records what it hashed so far and returns.
        """
        if self.signer is None:
            raise ValueError("advancing the ledger needs a signing key")
        last = self.store.last_block()
        recorded_size = last.tree_size if last is not None else 0
        tail = _Tail(last)
        pending: list[LedgerBlock] = []
        recorded: list[Checkpoint] = []
        added = 0
        for notification in self._notifications(tail.last_id, stopping):
            tail.add(notification)
            added += 1
            if tail.frontier.size % self.every == 0:
                pending.append(tail.close(True, self.signer, self.clock()))
                # Long first runs (an existing register of a million events) commit as they go.
                if len(pending) >= self.flush_blocks:
                    if not self.store.append(pending, after=recorded_size):
                        return recorded
                    recorded += [block.checkpoint for block in pending]
                    recorded_size, pending = pending[-1].tree_size, []
        if added and tail.frontier.size > tail.block_start:
            pending.append(tail.close(False, self.signer, self.clock()))
        if pending and self.store.append(pending, after=recorded_size):
            recorded += [block.checkpoint for block in pending]
        return recorded

    def verify(
        self,
        kept: Sequence[Checkpoint] = (),
        signature_check: SignatureCheck | None = None,
        progress: Progress | None = None,
    ) -> VerificationReport:
        """Recomputes the tree from the stored events and compares it with the recorded blocks.

        Reports the first position where they disagree, and for each checkpoint an auditor kept
        whether its signature verifies and today's log still has its root at its size. Recorded
        blocks' signatures are checked too when `signature_check` is given.
        """
        if kept and signature_check is None:
            raise ValueError("kept checkpoints can only be checked with a public key")
        report = VerificationReport()
        expected = self.recorder.max_notification_id() or 0
        kept_at: dict[int, list[Checkpoint]] = {}
        for checkpoint in kept:
            if signature_check is not None and not signature_check(checkpoint):
                report.kept.append(
                    KeptCheckpointResult(
                        checkpoint, False, "its signature does not verify with the public key"
                    )
                )
            else:
                kept_at.setdefault(checkpoint.tree_size, []).append(checkpoint)
        comparison = _BlockComparison(self.store.blocks(), signature_check)
        frontier, chain = MerkleFrontier(), CHAIN_START
        self._check_kept(kept_at, frontier, chain, report)
        for notification in self._notifications(0):
            leaf = notification_leaf(notification)
            frontier.append(leaf)
            chain = next_chain(chain, leaf)
            if report.first_discrepancy is None:
                report.first_discrepancy = comparison.compare(notification, leaf, frontier, chain)
                report.covered, report.last_checkpoint = comparison.covered, comparison.last_checkpoint
            if frontier.size in kept_at:
                self._check_kept(kept_at, frontier, chain, report)
            if progress is not None and frontier.size % self.batch == 0:
                progress(frontier.size, max(expected, frontier.size))
        if report.first_discrepancy is None:
            report.first_discrepancy = comparison.finish(frontier.size)
        for size in sorted(kept_at):
            for checkpoint in kept_at[size]:
                report.kept.append(
                    KeptCheckpointResult(
                        checkpoint,
                        False,
                        f"the log holds {frontier.size} events, fewer than the {size} this checkpoint "
                        "saw: history was cut",
                    )
                )
        report.events = frontier.size
        report.root_hash, report.chain_hash = frontier.root().hex(), chain.hex()
        if progress is not None:
            progress(frontier.size, frontier.size)
        return report

    @staticmethod
    def _check_kept(
        kept_at: dict[int, list[Checkpoint]],
        frontier: MerkleFrontier,
        chain: bytes,
        report: VerificationReport,
    ) -> None:
        root = frontier.root().hex()
        for checkpoint in kept_at.pop(frontier.size, []):
            if checkpoint.root_hash != root:
                reason = "today's log has another root at this size: history was rewritten"
                report.kept.append(KeptCheckpointResult(checkpoint, False, reason))
            elif checkpoint.chain_hash != chain.hex():
                report.kept.append(KeptCheckpointResult(checkpoint, False, "the chain hash differs"))
            else:
                report.kept.append(KeptCheckpointResult(checkpoint, True, "today's log extends it"))


class _BlockComparison:
    """Walks the recorded blocks alongside the recomputed log, position by position."""

    def __init__(self, blocks: Iterator[LedgerBlock], signature_check: SignatureCheck | None) -> None:
        self._blocks = blocks
        self._signature_check = signature_check
        self.block: LedgerBlock | None = None
        self.covered = 0
        self.last_checkpoint: Checkpoint | None = None
        self._pending: Discrepancy | None = None
        self._next_block()

    def _next_block(self) -> None:
        previous = self.block
        self.block = next(self._blocks, None)
        # A head block replaced while we read may reappear inside what is already covered.
        while self.block is not None and self.block.tree_size <= self.covered and not self.block.regular:
            self.block = next(self._blocks, None)
        block = self.block
        if block is None:
            return
        if block.start > self.covered or (
            block.start < self.covered and (previous is None or previous.regular)
        ):
            # A replaced head block may start before the end of the head we already read; nothing else may.
            self._pending = Discrepancy(
                "ledger_gap",
                self.covered + 1,
                None,
                f"the ledger's records jump from position {self.covered} to a block starting after "
                f"position {block.start}: checkpoint records were removed",
            )
        elif self._signature_check is not None and not self._signature_check(block.checkpoint):
            self._pending = Discrepancy(
                "checkpoint_signature",
                block.tree_size,
                None,
                f"the recorded checkpoint at tree size {block.tree_size} does not verify with the public key",
            )

    def compare(
        self, notification: Notification, leaf: bytes, frontier: MerkleFrontier, chain: bytes
    ) -> Discrepancy | None:
        if self._pending is not None:
            return self._pending
        block, position = self.block, frontier.size
        if block is None:
            return None
        recorded_id, recorded_prefix = block.entry(position)
        if recorded_id < notification.id:
            return Discrepancy(
                "missing",
                position,
                recorded_id,
                f"position {position}: event #{recorded_id} is gone (the log goes on with "
                f"#{notification.id})",
            )
        if recorded_id > notification.id:
            return Discrepancy(
                "inserted",
                position,
                notification.id,
                f"position {position}: event #{notification.id} was never in the ledger "
                f"(it recorded #{recorded_id} here)",
            )
        if recorded_prefix != leaf[:16]:
            return Discrepancy(
                "altered",
                position,
                notification.id,
                f"position {position}: event #{notification.id} differs from what the ledger recorded",
            )
        if position == block.tree_size:
            checkpoint = block.checkpoint
            if checkpoint.root_hash != frontier.root().hex() or checkpoint.chain_hash != chain.hex():
                return Discrepancy(
                    "checkpoint_altered",
                    position,
                    notification.id,
                    f"the checkpoint recorded at tree size {position} has another root than the events it "
                    "covers, which match their recorded hashes: the checkpoint record was altered",
                )
            self.covered, self.last_checkpoint = position, checkpoint
            self._next_block()
            if self._pending is not None:
                return self._pending
        return None

    def finish(self, events: int) -> Discrepancy | None:
        if self._pending is not None:
            return self._pending
        block = self.block
        if block is None or block.tree_size <= events:
            return None
        missing_id, _ = block.entry(events + 1)
        return Discrepancy(
            "truncated",
            events + 1,
            missing_id,
            f"the log ends at position {events} but the ledger recorded {block.tree_size} events: "
            f"event #{missing_id} and every one after it are gone",
        )
