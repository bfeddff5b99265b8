"""What a legacy register says: its valid rows as devices, and every problem found in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from domain.device import STATEMENT_FIELDS
from domain.fanc import MIDID_IN_FORCE

LEGACY_CUTOFF = MIDID_IN_FORCE - timedelta(days=1)
"""The last day of the legacy register: what it lists was registered, and what it says is out of service
was out of service, by then at the latest."""


@dataclass(frozen=True)
class Problem:
    """One reason a row (or the file) cannot be recorded as it stands."""

    row: int
    column: str
    value: str
    reason: str
    code: str = "schema"

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "code": self.code,
        }

    def __str__(self) -> str:
        shown = f" {self.value!r}" if self.value else ""
        return f"row {self.row}, {self.column}{shown}: {self.reason}"


@dataclass(frozen=True)
class LegacyDevice:
    """One valid row: a device the kadaster knew before MID-IDs existed."""

    row: int
    institution: str
    label: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    installed_on: date
    use: str
    fanc_number: str | None
    billing_number: str | None
    out_of_service: bool
    decommissioned_on: date | None
    registered_on: date
    name: str | None = None
    province: str | None = None
    region: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.institution, self.label)

    def statement(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATEMENT_FIELDS}


@dataclass(frozen=True)
class InstitutionFacts:
    institution: str
    name: str
    province: str | None
    region: str | None
    campuses: tuple[str, ...]


@dataclass
class LegacyFile:
    """The whole file, checked: valid rows, and every problem found."""

    name: str
    rows: int = 0
    devices: list[LegacyDevice] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        """False when the file as a whole cannot be read (no header, a required column missing)."""
        return not any(p.code == "file" for p in self.problems)

    def institutions(self) -> dict[str, InstitutionFacts]:
        """What the valid rows say about each institution: the first row giving a fact counts."""
        stated: dict[str, dict[str, Any]] = {}
        for device in self.devices:
            facts = stated.setdefault(device.institution, {"campuses": set()})
            facts["campuses"].add(device.campus)
            for name in ("name", "province", "region"):
                if facts.get(name) is None:
                    facts[name] = getattr(device, name)
        return {
            institution: InstitutionFacts(
                institution=institution,
                name=facts["name"] or institution,
                province=facts["province"],
                region=facts["region"],
                campuses=tuple(sorted(facts["campuses"])),
            )
            for institution, facts in stated.items()
        }
