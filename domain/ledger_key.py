"""The ledger's signing keys: which key signs checkpoints, and every explicit rotation to another."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import stable_id

LEDGER_KEYS_ID = stable_id("ledger-keys", "kadaster")


class LedgerKeys(Aggregate):
    """The register's record of the keys that sign its ledger.

    A key the ledger was not signed with is taken on only through a recorded rotation, so a
    deleted or swapped key file can never silently start a new line of checkpoints.
    """

    @staticmethod
    def create_id() -> UUID:
        return LEDGER_KEYS_ID

    @event("Started")
    def __init__(self) -> None:
        self.current_key_id: str | None = None
        self.rotations: list[dict[str, str | None]] = []

    def rotate(self, previous_key_id: str | None, key_id: str, reason: str, by: str) -> None:
        if not reason.strip():
            raise DomainError("schema", "a key rotation says why it was done", "reason")
        if key_id == self.current_key_id or key_id == previous_key_id:
            raise DomainError("conflict", f"key {key_id} already signs the ledger", "key_id")
        self._rotate(previous_key_id=previous_key_id, key_id=key_id, reason=reason.strip(), by=by)

    @event("Rotated")
    def _rotate(self, previous_key_id: str | None, key_id: str, reason: str, by: str) -> None:
        self.current_key_id = key_id
        self.rotations = [
            *self.rotations,
            {"previous_key_id": previous_key_id, "key_id": key_id, "reason": reason, "by": by},
        ]
