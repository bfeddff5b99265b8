"""Local accounts and API tokens: secrets kept as hashes in SQL, never in the event log."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from projections.store import ReadModelStore

TOKEN_PREFIX = "kdt"
DDL = (
    "CREATE TABLE IF NOT EXISTS kadaster_accounts ("
    "login TEXT PRIMARY KEY, name TEXT NOT NULL, party TEXT NOT NULL, password_hash TEXT, "
    "created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kadaster_tokens ("
    "id TEXT PRIMARY KEY, party TEXT NOT NULL, label TEXT NOT NULL, secret_hash TEXT NOT NULL, "
    "created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT)",
)
_hasher = PasswordHasher()


@functools.cache
def _no_account_hash() -> str:
    """Checking a password against no account costs as much as against one: logins cannot be probed
    by timing. Made on first use, not at import: hashing takes a good part of a second."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Account:
    login: str
    name: str
    party: str
    has_password: bool


@dataclass(frozen=True)
class Token:
    id: str
    party: str
    label: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    def in_force(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < datetime.fromisoformat(self.expires_at)


def _secret_hash(secret: str) -> str:
    # A token's secret has 256 bits of randomness: a plain hash cannot be reversed by guessing.
    return hashlib.sha256(secret.encode()).hexdigest()


class Credentials:
    """Accounts (argon2 password hashes) and bearer tokens (SHA-256 of a random secret)."""

    def __init__(self, url: str) -> None:
        self.store = ReadModelStore(url)
        with self.store.transaction() as tx:
            for statement in DDL:
                tx.execute(statement)

    def close(self) -> None:
        self.store.close()

    # accounts

    def add_account(self, login: str, name: str, party: str, password: str | None) -> None:
        password_hash = _hasher.hash(password) if password else None
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO kadaster_accounts (login, name, party, password_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (login) DO UPDATE SET name = excluded.name, "
                "party = excluded.party, password_hash = COALESCE(excluded.password_hash, "
                "kadaster_accounts.password_hash)",
                (login, name, party, password_hash, datetime.now(UTC).isoformat()),
            )

    def accounts(self) -> list[Account]:
        with self.store.reading() as tx:
            rows = tx.execute(
                "SELECT login, name, party, password_hash FROM kadaster_accounts ORDER BY login"
            ).all()
        return [Account(r["login"], r["name"], r["party"], r["password_hash"] is not None) for r in rows]

    def account(self, login: str) -> Account | None:
        found = self._account_rows(login)
        return found[0][0] if found else None

    def _account_rows(self, login: str) -> list[tuple[Account, str | None]]:
        with self.store.reading() as tx:
            row = tx.execute(
                "SELECT login, name, party, password_hash FROM kadaster_accounts WHERE login = ?", (login,)
            ).one()
        if row is None:
            return []
        return [
            (
                Account(row["login"], row["name"], row["party"], row["password_hash"] is not None),
                row["password_hash"],
            )
        ]

    def check_password(self, login: str, password: str) -> Account | None:
        """The account whose password this is, or None; as slow for an unknown login as for a known one."""
        found = self._account_rows(login)
        stored = found[0][1] if found else None
        try:
            _hasher.verify(stored or _no_account_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return found[0][0] if found and stored else None

    # tokens

    def issue_token(self, party: str, label: str, expires_days: float | None) -> tuple[Token, str]:
        """The token's record and the token itself, which is shown once and kept only as a hash."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = (now + timedelta(days=expires_days)).isoformat() if expires_days else None
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO kadaster_tokens (id, party, label, secret_hash, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, party, label, _secret_hash(secret), now.isoformat(), expires),
            )
        return Token(
            token_id, party, label, now.isoformat(), expires, None
        ), f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def tokens(self) -> list[Token]:
        with self.store.reading() as tx:
            rows = tx.execute(
                "SELECT id, party, label, created_at, expires_at, revoked_at FROM kadaster_tokens "
                "ORDER BY created_at, id"
            ).all()
        return [Token(**row) for row in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self.store.transaction() as tx:
            found = tx.execute("SELECT revoked_at FROM kadaster_tokens WHERE id = ?", (token_id,)).one()
            if found is None:
                return False
            tx.execute(
                "UPDATE kadaster_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (datetime.now(UTC).isoformat(), token_id),
            )
        return True

    def token_for(self, presented: str, now: datetime | None = None) -> Token | None:
        """The token in force that was presented, read afresh each time: a revocation holds at once."""
        prefix, _, rest = presented.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        with self.store.reading() as tx:
            row: dict[str, Any] | None = tx.execute(
                "SELECT id, party, label, secret_hash, created_at, expires_at, revoked_at "
                "FROM kadaster_tokens WHERE id = ?",
                (token_id,),
            ).one()
        if row is None or not hmac.compare_digest(row.pop("secret_hash"), _secret_hash(secret)):
            return None
        token = Token(**row)
        return token if token.in_force(now or datetime.now(UTC)) else None
