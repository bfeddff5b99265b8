"""Running a checked legacy register through the command pipeline, a batch per transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.device import Device
from domain.institution import institution_id
from services.legacy import DEFAULT_BATCH_SIZE
from services.legacy.plan import (
    PlannedCommand,
    Refusal,
    plan_backfill,
    plan_changes,
    plan_institution,
    state_after_backfill,
)
from services.legacy.rows import LegacyDevice, LegacyFile, Problem
from services.legacy.state import DeviceState, legacy_refs, read_device, read_devices
from services.processor import CommandProcessor


@dataclass
class RowResult:
    row: int
    institution: str
    label: str
    mid_id: str | None = None
    created: bool = False
    changed: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.refusals:
            return "rejected"
        if self.created:
            return "created"
        return "changed" if self.changed else "unchanged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "institution": self.institution,
            "label": self.label,
            "mid_id": self.mid_id,
            "status": self.status,
            "changed": self.changed,
        }


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do), row by row and in total."""

    file: str
    dry_run: bool = False
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    results: dict[int, RowResult] = field(default_factory=dict)
    institutions_registered: list[str] = field(default_factory=list)
    institutions_unregistered: list[str] = field(default_factory=list)
    institution_refusals: list[Refusal] = field(default_factory=list)
    commands: dict[str, int] = field(
        default_factory=lambda: {"sent": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
    )
    recorded: bool = False

    def count(self, status: str) -> int:
        return sum(1 for result in self.results.values() if result.status == status)

    @property
    def invalid(self) -> int:
        return len({p.row for p in self.problems if p.code != "file"})

    @property
    def refusals(self) -> list[Refusal]:
        found = [*self.institution_refusals]
        for row in sorted(self.results):
            found.extend(self.results[row].refusals)
        return found

    def totals(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.count("created"),
            "changed": self.count("changed"),
            "unchanged": self.count("unchanged"),
            "rejected": self.count("rejected"),
            "invalid": self.invalid,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "dry_run": self.dry_run,
            "recorded": self.recorded,
            **self.totals(),
            "commands": dict(self.commands),
            "institutions_registered": self.institutions_registered,
            "institutions_unregistered": self.institutions_unregistered,
            "ignored_columns": self.ignored_columns,
            "problems": [p.as_dict() for p in self.problems],
            "refusals": [r.as_dict() for r in self.refusals],
            "devices": [self.results[row].as_dict() for row in sorted(self.results)],
        }


Progress = Callable[[str, int, int], None]
"""(phase, done, total): the institutions' commands, then the file's devices."""


class LegacyImport:
    """Records a checked legacy register through the command pipeline, a batch per transaction.

    Institutions first; then the devices a batch at a time: their backfills (which issue the
    MID-IDs), then their corrections, FANC numbers and licences, billing numbers and
    decommissioning, while the devices just recorded are still in memory. A row the register
    already agrees with sends nothing.
    """

    def __init__(
        self,
        processor: CommandProcessor,
        sent_at: datetime,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> None:
        self.processor = processor
        self.register = processor.register
        self.sent_at = sent_at
        self.batch_size = batch_size
        self.progress = progress

    def run(self, legacy: LegacyFile, skip_invalid: bool = False, dry_run: bool = False) -> ImportSummary:
        summary = ImportSummary(
            file=legacy.name,
            dry_run=dry_run,
            rows=legacy.rows,
            problems=list(legacy.problems),
            ignored_columns=list(legacy.ignored_columns),
        )
        if not legacy.readable or (legacy.problems and not skip_invalid and not dry_run):
            return summary
        known = legacy_refs(self.register)
        for device in legacy.devices:
            result = summary.results[device.row] = RowResult(device.row, device.institution, device.label)
            result.mid_id = known.get(device.key)
        institutions = self._institutions(legacy, summary)
        existing = read_devices(self.register, [r.mid_id for r in summary.results.values() if r.mid_id])
        if dry_run:
            return self._dry_run(legacy, summary, institutions, existing)
        self._send("institutions", institutions, summary)
        total = len(legacy.devices)
        self._progress("devices", 0, total)
        for start in range(0, total, self.batch_size):
            chunk = legacy.devices[start : start + self.batch_size]
            new = [device for device in chunk if summary.results[device.row].mid_id is None]
            self._send(None, [plan_backfill(device, legacy.name) for device in new], summary)
            self._send(None, self._changes(chunk, existing, legacy.name, summary), summary)
            self._progress("devices", start + len(chunk), total)
        summary.recorded = True
        return summary

    def _changes(
        self,
        chunk: Sequence[LegacyDevice],
        existing: dict[str, Device],
        source_name: str,
        summary: ImportSummary,
    ) -> list[PlannedCommand]:
        commands: list[PlannedCommand] = []
        for device in chunk:
            result = summary.results[device.row]
            if result.mid_id is None:
                continue
            if result.created:
                state: DeviceState | None = state_after_backfill(device, result.mid_id)
            else:
                # Backfilled before this import, or by another one while it ran.
                found = existing.get(result.mid_id) or read_device(self.register, result.mid_id)
                state = DeviceState.of(found) if found is not None else None
            if state is None:
                continue
            planned, refusals = plan_changes(device, state, source_name)
            commands += planned
            result.refusals += refusals
        return commands

    def _institutions(self, legacy: LegacyFile, summary: ImportSummary) -> list[PlannedCommand]:
        stated = list(legacy.institutions().values())
        registered = set()
        for start in range(0, len(stated), self.batch_size):
            ids = [institution_id(facts.institution) for facts in stated[start : start + self.batch_size]]
            registered |= set(self.register.created(ids))
        commands = []
        for facts in stated:
            if institution_id(facts.institution) in registered:
                continue
            planned = plan_institution(facts)
            if planned is None:
                summary.institutions_unregistered.append(facts.institution)
            else:
                commands.append(planned)
        return commands

    def _progress(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)

    def _send(self, label: str | None, commands: list[PlannedCommand], summary: ImportSummary) -> None:
        """Sends the commands a batch at a time; with a label, the progress counts them."""
        total = len(commands)
        if label is not None:
            self._progress(label, 0, total)
        for start in range(0, total, self.batch_size):
            batch = commands[start : start + self.batch_size]
            handled = self.processor.process([command.inbound(self.sent_at) for command in batch])
            for command, outcome in zip(batch, handled, strict=True):
                self._account(command, outcome.outcome, outcome.duplicate, summary)
            if label is not None:
                self._progress(label, min(start + self.batch_size, total), total)

    @staticmethod
    def _account(
        command: PlannedCommand,
        outcome: dict[str, Any],
        duplicate: bool,
        summary: ImportSummary,
    ) -> None:
        summary.commands["sent"] += 1
        summary.commands["duplicates"] += duplicate
        accepted = outcome.get("status") == "accepted"
        summary.commands["accepted" if accepted else "rejected"] += 1
        result = summary.results.get(command.row) if command.row is not None else None
        if command.step == "institution" and accepted and not duplicate:
            summary.institutions_registered.append(command.key[0])
        if accepted:
            if result is not None and command.step == "backfill":
                result.mid_id = outcome["result"]["mid_id"]
                result.created = not duplicate and not outcome["result"]["already_backfilled"]
            elif result is not None and not duplicate:
                result.changed.append(command.step)
            return
        for error in outcome.get("errors") or [{"code": "internal_error", "message": "no outcome"}]:
            refusal = Refusal(
                command.row,
                command.key[0],
                command.key[1],
                command.step,
                str(error.get("code")),
                f"{command.type}: {error.get('message')}",
                command.command_id,
                earlier=duplicate,
            )
            if result is None:
                summary.institution_refusals.append(refusal)
            else:
                result.refusals.append(refusal)

    def _dry_run(
        self,
        legacy: LegacyFile,
        summary: ImportSummary,
        institutions: list[PlannedCommand],
        existing: dict[str, Device],
    ) -> ImportSummary:
        summary.institutions_registered = [c.key[0] for c in institutions]
        planned = len(institutions)
        for device in legacy.devices:
            result = summary.results[device.row]
            found = existing.get(result.mid_id) if result.mid_id else None
            if found is None:
                state = state_after_backfill(device, None)
                result.created = True
                planned += result.mid_id is None
            else:
                state = DeviceState.of(found)
            commands, result.refusals = plan_changes(device, state, legacy.name)
            if found is not None:
                result.changed = [command.step for command in commands]
            planned += len(commands)
        summary.commands["planned"] = planned
        return summary
