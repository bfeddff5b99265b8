"""Accounts and tokens kept as hashes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.credentials import Credentials


def test_a_password_is_kept_as_an_argon2_hash_and_checked(database_url: str) -> None:
    credentials = Credentials(database_url)
    try:
        credentials.add_account("anna", "Anna", "hospital/H001", "s3cret!")
        with credentials.store.reading() as tx:
            stored = tx.execute("SELECT password_hash FROM kadaster_accounts WHERE login = 'anna'").scalar()
        assert stored.startswith("$argon2id$") and "s3cret!" not in stored
        assert credentials.check_password("anna", "s3cret!") is not None
        assert credentials.check_password("anna", "wrong") is None
        assert credentials.check_password("nobody", "s3cret!") is None
        # A second `people add` without a password keeps the one set before.
        credentials.add_account("anna", "Anna P.", "hospital/H001", None)
        assert credentials.check_password("anna", "s3cret!") is not None
    finally:
        credentials.close()


def test_a_token_is_shown_once_kept_as_a_hash_and_refused_once_expired_or_revoked(database_url: str) -> None:
    credentials = Credentials(database_url)
    try:
        token, secret = credentials.issue_token("hospital/H001", "order system", 30)
        with credentials.store.reading() as tx:
            kept = tx.execute("SELECT secret_hash FROM kadaster_tokens").scalar()
        assert secret.split("_")[-1] not in kept
        assert credentials.token_for(secret) == token
        assert credentials.token_for(secret, now=datetime.now(UTC) + timedelta(days=31)) is None
        assert credentials.token_for(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
        assert credentials.revoke_token(token.id) and not credentials.revoke_token("no-such-id")
        assert credentials.token_for(secret) is None
        assert [t.id for t in credentials.tokens()] == [token.id]
    finally:
        credentials.close()
