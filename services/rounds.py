"""Allocation rounds for readers and tools: series import, rankings, round views and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, project_aggregate

from domain.allocation_policies import CARE_REGIONS, RegionFigures, apply_policy, rank_care_regions
from domain.allocation_round import ROUND_INDEX_ID, AllocationRound, RoundIndex, round_aggregate_id
from domain.care_capacity import CareCapacity, care_capacity_id
from domain.errors import DomainError
from services.register import Register

VAZG = "vazg"
RANKING_FIELDS = ("region", "programme_figure", "filled", "fill_rate", "rank")
MAX_DIFFERENCES = 50
MISSING = "<missing>"


@dataclass(frozen=True)
class SeriesCommand:
    """One command of an imported series, with an id derived from the series itself."""

    source: str
    type: str
    data: dict[str, Any]
    command_id: str

    def as_tuple(self) -> tuple[str, str, dict[str, Any]]:
        return (self.source, self.type, self.data)


def series_round_id(period: str) -> str:
    return f"{CARE_REGIONS}-{period}"


def series_commands(document: Mapping[str, Any]) -> list[SeriesCommand]:
    """The commands that record a care-region series file (CONTRACT.md), in the order to send them.

    Per trimester: `round.open` (the trimester's programme figures; a region's `filled` from
    `start` the first time it appears, after which the register's own count is used), the
    trimester's `capacity.correct`s (so they count in its own ranking), `round.close`,
    `round.decide`, one `round.grant` per region granted (counted before the next trimester's
    ranking) and `round.finalise`. Command ids are `series-<digest of the file>-<period>-<step>`:
    importing the same file again is a no-op, and a changed file is new commands whose
    `round.open` is refused with `conflict` instead of being silently ignored.
    """
    if document.get("programme") != CARE_REGIONS:
        raise DomainError("schema", f"a series file is for the {CARE_REGIONS} programme", "programme")
    start = document.get("start")
    trimesters = document.get("trimesters")
    if not isinstance(start, dict) or not isinstance(trimesters, list) or not trimesters:
        raise DomainError(
            "schema", "a series file has `start` (region → filled) and a list of `trimesters`", "trimesters"
        )
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    commands: list[SeriesCommand] = []
    seen: set[str] = set()
    for position, trimester in enumerate(trimesters):
        try:
            period = str(trimester["period"])
            figures: dict[str, int] = trimester["programme_figures"]
            granted: dict[str, int] = trimester.get("granted") or {}
            corrections: list[dict[str, Any]] = trimester.get("corrections") or []
        except (KeyError, TypeError):
            raise DomainError(
                "schema",
                "a trimester has `period`, `programme_figures`, `granted`, `corrections`",
                f"trimesters.{position}",
            ) from None
        round_id = series_round_id(period)
        prefix = f"series-{digest}-{period}"

        def add(type_: str, data: dict[str, Any], step: str, prefix: str = prefix) -> None:
            commands.append(SeriesCommand(VAZG, type_, data, f"{prefix}-{step}"))

        regions = []
        for name, figure in figures.items():
            region: dict[str, Any] = {"name": name, "programme_figure": figure}
            if name not in seen and name in start:
                region["filled"] = start[name]
            seen.add(name)
            regions.append(region)
        add(
            "round.open",
            {
                "round_id": round_id,
                "programme": CARE_REGIONS,
                "period": period,
                "capacity": sum(granted.values()),
                "regions": regions,
            },
            "open",
        )
        for number, correction in enumerate(corrections, start=1):
            add(
                "capacity.correct",
                {
                    "programme": CARE_REGIONS,
                    "region": correction["region"],
                    "delta": correction["delta"],
                    "reason": correction["reason"],
                },
                f"correct-{number}",
            )
        add("round.close", {"round_id": round_id}, "close")
        add("round.decide", {"round_id": round_id}, "decide")
        for number, (name, units) in enumerate(granted.items(), start=1):
            if units:
                add("round.grant", {"round_id": round_id, "region": name, "units": units}, f"grant-{number}")
        add("round.finalise", {"round_id": round_id}, "finalise")
    return commands


# reading rounds


def _get(register: Register, aggregate_id: UUID) -> Any:
    try:
        return register.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None


def _index(register: Register) -> RoundIndex | None:
    index = _get(register, ROUND_INDEX_ID)
    return index if isinstance(index, RoundIndex) else None


def _round(register: Register, round_id: str) -> AllocationRound:
    found = _get(register, round_aggregate_id(round_id))
    if not isinstance(found, AllocationRound):
        raise DomainError("round_unknown", f"no round {round_id} was ever opened", "round_id")
    return found


def _rounds(register: Register) -> Iterator[AllocationRound]:
    index = _index(register)
    for round_id in index.round_ids if index is not None else []:
        yield _round(register, round_id)


def ranking(register: Register, period: str) -> list[dict[str, Any]]:
    """The care-region ranking of a trimester, priority first: `region`, `programme_figure`,
    `filled`, `fill_rate` ("93.00"), `rank`.

    A decided round gives the ranking it recorded; a round not decided yet gives the ranking
    its decision would record now (the register's current filled places).
    """
    index = _index(register)
    round_id = index.find(CARE_REGIONS, period) if index is not None else None
    if round_id is None:
        raise DomainError("round_unknown", f"no care-region round ranks the period {period}", "period")
    round_ = _round(register, round_id)
    if round_.ranking is not None:
        regions: list[dict[str, Any]] = round_.ranking["regions"]
    else:
        capacity = _get(register, care_capacity_id(CARE_REGIONS))
        filled = capacity.filled if isinstance(capacity, CareCapacity) else {}
        regions = rank_care_regions(
            RegionFigures(r["name"], r["programme_figure"], filled.get(r["name"], 0)) for r in round_.regions
        )
    return [{field: r[field] for field in RANKING_FIELDS} for r in regions]


def list_rounds(register: Register) -> list[dict[str, Any]]:
    """Every round in the order they were opened, with status and counts."""
    return [round_.summary() for round_ in _rounds(register)]


def show_round(register: Register, round_id: str) -> dict[str, Any]:
    """One round: inputs as opened, applications, the decision's inputs, ranking, decisions with
    reasons and status, objections with rulings, waivers and grants."""
    round_ = _round(register, round_id)
    return {
        **round_.summary(),
        "inputs": round_.policy_inputs,
        "applications": [round_.applications[i] for i in sorted(round_.applications)],
        "withdrawals": round_.withdrawals,
        "decided_inputs": round_.decided_inputs,
        "ranking": round_.ranking,
        "decisions": round_.decisions_with_status(),
        "objections": round_.objections,
        "waivers": round_.waivers,
        "grants": round_.grants,
        "granted_units": round_.granted_units,
    }


# verification


def verify_rounds(register: Register, round_id: str | None = None) -> list[dict[str, Any]]:
    """Recomputes every recorded decision of each round (or of one) from its recorded inputs
    and waivers with its recorded policy version.

    One entry per round: `ok` is true when every recomputation equals what was recorded;
    otherwise `differences` says where (`ranking.regions[3].rank: recorded 4, recomputed 2`).
    """
    index = _index(register)
    round_ids = [round_id] if round_id is not None else (index.round_ids if index is not None else [])
    return [_verify(_round_as_stored(register, one)) for one in round_ids]


def _round_as_stored(register: Register, round_id: str) -> AllocationRound:
    """The round replayed from every stored event: an audit trusts no cache and no snapshot."""
    replayed: AllocationRound | None = project_aggregate(
        None, register.events.get(round_aggregate_id(round_id))
    )
    if not isinstance(replayed, AllocationRound):
        raise DomainError("round_unknown", f"no round {round_id} was ever opened", "round_id")
    return replayed


def _verify(round_: AllocationRound) -> dict[str, Any]:
    differences: list[dict[str, Any]] = []
    for computation in round_.computations:
        where = {"step": computation["step"], "command_id": computation["command_id"]}
        try:
            result = apply_policy(
                computation["policy_version"], computation["inputs"], computation["waivers"]
            )
        except KeyError:
            differences.append(
                {
                    **where,
                    "path": "policy_version",
                    "recorded": computation["policy_version"],
                    "recomputed": None,
                    "message": "this policy version is unknown to the register's code",
                }
            )
            continue
        except (ValueError, TypeError, ArithmeticError) as error:
            differences.append(
                {
                    **where,
                    "path": "inputs",
                    "recorded": None,
                    "recomputed": None,
                    "message": f"the recorded inputs cannot be evaluated: {error}",
                }
            )
            continue
        for path, recorded, recomputed in [
            *_diff("ranking", computation["ranking"], result.ranking),
            *_diff("decisions", computation["decisions"], result.decisions),
        ]:
            differences.append(
                {
                    **where,
                    "path": path,
                    "recorded": recorded,
                    "recomputed": recomputed,
                    "message": f"{path}: recorded {recorded!r}, recomputed {recomputed!r}",
                }
            )
    return {
        "round_id": round_.round_id,
        "programme": round_.programme,
        "status": round_.status,
        "checked": len(round_.computations),
        "ok": not differences,
        "differences": differences[:MAX_DIFFERENCES],
    }


def _diff(path: str, recorded: Any, recomputed: Any) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(recorded, dict) and isinstance(recomputed, dict):
        for key in sorted({*recorded, *recomputed}, key=str):
            yield from _diff(f"{path}.{key}", recorded.get(key, MISSING), recomputed.get(key, MISSING))
    elif isinstance(recorded, list) and isinstance(recomputed, list) and len(recorded) == len(recomputed):
        for position, (one, other) in enumerate(zip(recorded, recomputed, strict=True)):
            yield from _diff(f"{path}[{position}]", one, other)
    elif recorded != recomputed or type(recorded) is not type(recomputed):
        yield (path, recorded, recomputed)
