"""MID-IDs, sources and modalities: the identifiers every message hangs on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from uuid import UUID, uuid5

from domain.errors import DomainError

NAMESPACE = UUID("6f1c3c52-7d0b-5b55-9a0e-6b3c8d2a4f10")


def stable_id(kind: str, natural_key: str) -> UUID:
    """The aggregate id of a uniquely named thing, so the event store enforces the uniqueness."""
    return uuid5(NAMESPACE, f"{kind}\x1f{natural_key}")


class Modality(str, Enum):
    CT = "CT"
    PET = "PET"
    PET_CT = "PET-CT"
    PET_MRI = "PET-MRI"
    SPECT_CT = "SPECT-CT"
    MRI = "MRI"

    @property
    def is_ionising(self) -> bool:
        return self is not Modality.MRI

    @classmethod
    def parse(cls, value: str, field: str = "data.modality") -> Modality:
        normalised = value.strip().upper().replace("_", "-").replace(" ", "-")
        try:
            return cls(normalised)
        except ValueError:
            in_scope = ", ".join(m.value for m in cls)
            raise DomainError(
                "modality_not_in_scope",
                f"{value!r} is not a heavy imaging modality of the kadaster (in scope: {in_scope})",
                field,
            ) from None


class SerialNumber:
    """A device's serial number as typed off its type plate: case and separators vary, the plate does not."""

    __slots__ = ("plate", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.plate = "".join(c for c in text.upper() if c.isalnum())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SerialNumber) and self.plate == other.plate

    def __hash__(self) -> int:
        return hash(self.plate)

    def __str__(self) -> str:
        return self.text


MIDID_PREFIX = "MID"
MIDID_DIGITS = 7
MIDID_MAX_SEQUENCE = 10**MIDID_DIGITS - 1
_COMPACT = re.compile(r"^MID(\d{7})(\d{2})$")


def check_digits(digits: str) -> str:
    """ISO 7064 MOD 97-10 (the IBAN scheme): `int(digits + cc) % 97 == 1`."""
    return f"{98 - int(digits + '00') % 97:02d}"


@dataclass(frozen=True, order=True)
class MidId:
    """A Medical Imaging Device identifier: `MID-` + 7-digit sequence + `-` + 2 check digits."""

    sequence: int

    def __post_init__(self) -> None:
        if not 1 <= self.sequence <= MIDID_MAX_SEQUENCE:
            raise ValueError(f"MID-ID sequence out of range: {self.sequence}")

    def __str__(self) -> str:
        digits = f"{self.sequence:0{MIDID_DIGITS}d}"
        return f"{MIDID_PREFIX}-{digits}-{check_digits(digits)}"

    @property
    def aggregate_id(self) -> UUID:
        return stable_id("mid-id", str(self))

    @classmethod
    def parse(cls, text: str, field: str = "data.mid_id") -> MidId:
        """Accepts upper- or lower-case, with or without dashes and surrounding spaces."""
        compact = text.strip().upper().replace("-", "")
        match = _COMPACT.fullmatch(compact)
        if match is None:
            raise DomainError(
                "schema",
                f"{text!r} is not a MID-ID (expected MID-1234567-89: 'MID', 7 digits, 2 check digits)",
                field,
            )
        digits, given = match.groups()
        if int(digits + given) % 97 != 1:
            raise DomainError(
                "midid_checksum",
                f"{text.strip()!r} has wrong check digits: a digit was probably mistyped",
                field,
            )
        if int(digits) == 0:
            raise DomainError("schema", "MID-ID sequence numbers start at 1", field)
        return cls(int(digits))


PARTY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""What names an institution or a supplier in a source (`hospital/<institution>`)."""
_PARTY = re.compile(PARTY_PATTERN)
FOD = "fod"
AUTHORITIES = (FOD, "fanc", "riziv", "vazg")


@dataclass(frozen=True)
class Source:
    """Who speaks: `hospital/<institution>`, `supplier/<supplier>`, or an authority."""

    kind: str
    party: str | None = None

    def __str__(self) -> str:
        return self.kind if self.party is None else f"{self.kind}/{self.party}"

    @property
    def outcome_subject(self) -> str:
        return f"kadaster.outcome.{self.kind}" + ("" if self.party is None else f".{self.party}")

    def message_id(self, command_id: str) -> str:
        """The `Nats-Msg-Id` of this sender's command: JetStream deduplicates stream-wide, so it
        names the sender as well as the envelope id."""
        return f"{self}:{command_id}"

    @property
    def command_subject_prefix(self) -> str:
        return f"kadaster.cmd.{self.kind}" + ("" if self.party is None else f".{self.party}")

    @classmethod
    def parse(cls, text: str, field: str = "source") -> Source:
        if text in AUTHORITIES:
            return cls(text)
        kind, _, party = text.partition("/")
        if kind in ("hospital", "supplier") and _PARTY.fullmatch(party):
            return cls(kind, party)
        raise DomainError(
            "schema",
            f"{text!r} is not a source (hospital/<id>, supplier/<id>, fod, fanc, riziv or vazg)",
            field,
        )

    @classmethod
    def hospital(cls, institution: str) -> Source:
        return cls.parse(f"hospital/{institution}")
