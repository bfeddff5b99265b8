"""The Ed25519 key that signs ledger checkpoints: from configuration, or created once in the data dir."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.ledger import Checkpoint, SignatureCheck

log = structlog.get_logger("kadaster.ledger")

DEFAULT_KEY_FILE = "ledger-ed25519.pem"


class LedgerKeyError(Exception):
    """The signing or verifying key cannot be read; the message says which file and why."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class LedgerPublicKey:
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verifies(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.key_id != self.key_id:
            return False
        try:
            self.public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class LedgerSigner:
    """Signs a checkpoint's canonical JSON; the signature is hex."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> LedgerSigner:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> LedgerPublicKey:
        return LedgerPublicKey(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> str:
        return self.private_key.sign(message).hex()

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def default_key_path(data_dir: Path) -> Path:
    return data_dir / DEFAULT_KEY_FILE


def load_signer(path: Path) -> LedgerSigner:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise LedgerKeyError(f"cannot read the ledger key {path}: {error.strerror}") from None
    except (ValueError, TypeError) as error:
        raise LedgerKeyError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError(f"{path} holds a {type(key).__name__}; the ledger signs with Ed25519")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("ledger_key_readable_by_others", path=str(path), mode=oct(mode))
    return LedgerSigner(key)


def load_or_create_signer(configured: Path | None, data_dir: Path) -> LedgerSigner:
    """The configured key (which must exist), else `ledger-ed25519.pem` in the data dir, created when absent.

    A configured path that is missing is an error rather than a reason to make a new key: a fresh
    key would sign checkpoints that auditors holding the old public key cannot verify.
    """
    if configured is not None:
        if not configured.exists():
            raise LedgerKeyError(f"the ledger key {configured} (KADASTER_LEDGER_KEY) does not exist")
        return load_signer(configured)
    path = default_key_path(data_dir)
    if path.exists():
        return load_signer(path)
    signer = LedgerSigner.generate()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two roles start together, one creates the key and the other reads it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_signer(path)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(signer.pem())
    log.info("ledger_key_created", path=str(path), key_id=signer.key_id)
    return signer


def load_ledger_signer(
    configured: Path | None, data_dir: Path, signed_by: str | None, rotated_to: str | None
) -> LedgerSigner:
    """The key that may go on signing this ledger.

    `signed_by` is the key id of the newest recorded checkpoint, `rotated_to` the key of the newest
    recorded rotation. A ledger that has checkpoints never gets a fresh key by accident: a missing
    key file, or one holding another key, is an error until a rotation is recorded.
    """
    if signed_by is None:
        return load_or_create_signer(configured, data_dir)
    path = configured if configured is not None else default_key_path(data_dir)
    if not path.exists():
        raise LedgerKeyError(
            f"the ledger's checkpoints are signed by key {signed_by}, but the key file {path} is missing: "
            "restore it, or record a new key with `kadaster audit rotate-key --reason TEXT`"
        )
    signer = load_signer(path)
    if signer.key_id not in (signed_by, rotated_to):
        raise LedgerKeyError(
            f"{path} holds key {signer.key_id}, not key {signed_by} that signs this ledger: restore the "
            "right key, or record a new one with `kadaster audit rotate-key --reason TEXT`"
        )
    return signer


def write_new_key(path: Path) -> LedgerSigner:
    """A new key in a new file readable by its owner only (never over an existing file)."""
    signer = LedgerSigner.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(signer.pem())
    return signer


def load_public_key(path: Path) -> LedgerPublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LedgerKeyError(f"cannot read the public key {path}: {error.strerror}") from None
    try:
        key: object = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as error:
            raise LedgerKeyError(
                f"{path} is neither a PEM public key nor a PEM private key: {error}"
            ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerKeyError(f"{path} holds a {type(key).__name__}; the ledger signs with Ed25519")
    return LedgerPublicKey(key)


def signature_check(keys: Sequence[LedgerPublicKey]) -> SignatureCheck:
    """True when one of the keys (matched by key id) verifies the checkpoint's signature."""
    by_id = {key.key_id: key for key in keys}

    def check(checkpoint: Checkpoint) -> bool:
        key = by_id.get(checkpoint.key_id)
        return key is not None and key.verifies(checkpoint)

    return check
