"""Allocation policies (MRI programming, care-region ranking): pure functions over recorded inputs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from domain.errors import DomainError

NMR = "nmr"
CARE_REGIONS = "care-regions"
PROGRAMMES = (NMR, CARE_REGIONS)

NMR_POLICY_VERSION = "nmr/bvr-2023-08-31/v1"
CARE_REGIONS_POLICY_VERSION = "care-regions/bvr-2013-12-20/v1"
CURRENT_POLICY = {NMR: NMR_POLICY_VERSION, CARE_REGIONS: CARE_REGIONS_POLICY_VERSION}

FLEMISH = "flemish"

GRANTED = "granted"
REFUSED = "refused"

OUTSIDE_FLEMISH_REGION = "outside_flemish_region"
SERVICE_ON_OTHER_CAMPUS = "service_on_other_campus"
HAS_SERVICE = "has_service"
NOT_IN_TOP_SHARE = "not_in_top_share"
PROVINCE_NOT_PRIORITISED = "province_not_prioritised"
LOWER_ACTIVITY_IN_PROVINCE = "lower_activity_in_province"
REFUSAL_REASONS = (
    OUTSIDE_FLEMISH_REGION,
    SERVICE_ON_OTHER_CAMPUS,
    HAS_SERVICE,
    NOT_IN_TOP_SHARE,
    PROVINCE_NOT_PRIORITISED,
    LOWER_ACTIVITY_IN_PROVINCE,
)

INHABITANTS_PER_INDEX_UNIT = 100_000


# exact numbers


def exact(value: str | int | Fraction) -> Fraction:
    """A recorded number ("1234", "2469/2", "0.15") as an exact fraction."""
    return Fraction(value)


def exact_text(value: Fraction) -> str:
    """How an exact number is recorded in events: "1234" or "2469/2", never a float."""
    return str(value)


def decimal_text(value: Fraction, places: int) -> str:
    """A fraction shown with `places` decimals, rounded half-up (away from zero): 93.005 → "93.01"."""
    scale = 10**places
    magnitude = math.floor(abs(value) * scale + Fraction(1, 2))
    sign = "-" if value < 0 and magnitude else ""
    whole, part = divmod(magnitude, scale)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"


def number_text(value: Fraction) -> str:
    """A number for a human sentence: whole numbers as such, others with two decimals."""
    return str(value.numerator) if value.denominator == 1 else decimal_text(value, 2)


@dataclass(frozen=True)
class PolicyResult:
    """What a policy computed: the ranking it used and one decision per application."""

    ranking: dict[str, Any]
    decisions: list[dict[str, Any]]


Waivers = Mapping[str, Sequence[str]]
Policy = Callable[[Mapping[str, Any], Waivers], PolicyResult]


# MRI programming (NMR), decree of the Flemish Government of 31 August 2023


@dataclass(frozen=True)
class Province:
    name: str
    population: int
    recognised_devices: int


@dataclass(frozen=True)
class Application:
    institution: str
    campus: str
    province: str
    region: str
    justified_activity_per_device: Fraction
    has_service_on_other_campus: bool


@dataclass(frozen=True)
class NmrInputs:
    """Everything an MRI round's decision depends on, as recorded in its decision event."""

    capacity: int
    provinces: tuple[Province, ...]
    reference_activity: Mapping[str, Fraction]
    top_share: Fraction
    new_services_only: bool
    applications: tuple[Application, ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> NmrInputs:
        return cls(
            capacity=int(record["capacity"]),
            provinces=tuple(
                Province(p["name"], int(p["population"]), int(p["recognised_devices"]))
                for p in record["provinces"]
            ),
            reference_activity={k: exact(v) for k, v in record["reference_activity"].items()},
            top_share=exact(record["top_share"]),
            new_services_only=bool(record["new_services_only"]),
            applications=tuple(
                Application(
                    institution=a["institution"],
                    campus=a["campus"],
                    province=a["province"],
                    region=a["region"],
                    justified_activity_per_device=exact(a["justified_activity_per_device"]),
                    has_service_on_other_campus=bool(a["has_service_on_other_campus"]),
                )
                for a in record["applications"]
            ),
        )


@dataclass(frozen=True)
class ProvinceStanding:
    """A province's NMR-index: recognised MRI devices per inhabitant relative to the Flemish average."""

    name: str
    population: int
    recognised_devices: int
    index: Fraction
    rank: int

    @property
    def devices_per_100k(self) -> Fraction:
        return Fraction(self.recognised_devices * INHABITANTS_PER_INDEX_UNIT, self.population)

    def as_record(self) -> dict[str, Any]:
        return {
            "province": self.name,
            "population": self.population,
            "recognised_devices": self.recognised_devices,
            "devices_per_100k": decimal_text(self.devices_per_100k, 3),
            "nmr_index": decimal_text(self.index, 4),
            "nmr_index_exact": exact_text(self.index),
            "rank": self.rank,
        }


def check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise DomainError("schema", "an nmr round hands out at least one device", "data.capacity")


def check_provinces(provinces: Sequence[Province]) -> None:
    """What an NMR-index needs: provinces with inhabitants, and some recognised device among them
    (the index is relative to their average)."""
    if not provinces:
        raise DomainError(
            "schema", "an nmr round needs the provinces' population and recognised devices", "data.provinces"
        )
    for position, province in enumerate(provinces):
        if province.population < 1 or province.recognised_devices < 0:
            raise DomainError(
                "schema",
                f"{province.name} needs inhabitants and a count of recognised devices that is not negative",
                f"data.provinces.{position}",
            )
    if sum(p.recognised_devices for p in provinces) < 1:
        raise DomainError(
            "schema",
            "the NMR-index is relative to the Flemish average: some province must have a device",
            "data.provinces",
        )


def rank_provinces(provinces: Iterable[Province]) -> list[ProvinceStanding]:
    """Lowest NMR-index first (rank 1 has priority); equal indices go by province name."""
    provinces = list(provinces)
    check_provinces(provinces)
    total_devices = sum(p.recognised_devices for p in provinces)
    total_population = sum(p.population for p in provinces)
    average = Fraction(total_devices, total_population)
    indexed = [(Fraction(p.recognised_devices, p.population) / average, p) for p in provinces]
    indexed.sort(key=lambda pair: (pair[0], pair[1].name))
    return [
        ProvinceStanding(p.name, p.population, p.recognised_devices, index, rank)
        for rank, (index, p) in enumerate(indexed, start=1)
    ]


@dataclass(frozen=True)
class TopShare:
    """The hospitals with the highest justified activity per recognised MRI device.

    `places` = ceil(share * hospitals). A hospital is in the top share when its competition
    rank (1 + the number of hospitals with strictly higher activity) is within `places`, so
    hospitals tied with the last place are all in: equal activity cannot be ranked lower.
    """

    share: Fraction
    hospitals: int
    places: int
    ranks: Mapping[str, int]
    cut_activity: Fraction | None

    def includes(self, institution: str) -> bool:
        rank = self.ranks.get(institution)
        return rank is not None and rank <= self.places

    @property
    def members(self) -> list[str]:
        return sorted(i for i in self.ranks if self.includes(i))

    def as_record(self) -> dict[str, Any]:
        return {
            "share": exact_text(self.share),
            "hospitals": self.hospitals,
            "places": self.places,
            "cut_activity": None if self.cut_activity is None else exact_text(self.cut_activity),
            "institutions": self.members,
        }


def top_share_of(reference_activity: Mapping[str, Fraction], share: Fraction) -> TopShare:
    activities = sorted(reference_activity.values(), reverse=True)
    places = math.ceil(share * len(activities))
    ranks = {
        institution: 1 + sum(1 for other in activities if other > activity)
        for institution, activity in reference_activity.items()
    }
    cut = activities[places - 1] if 0 < places <= len(activities) else None
    return TopShare(share, len(activities), places, ranks, cut)


@dataclass(frozen=True)
class _Candidate:
    application: Application
    province: ProvinceStanding
    activity: Fraction
    waived: frozenset[str]

    @property
    def institution(self) -> str:
        return self.application.institution

    def priority_key(self) -> tuple[int, int, Fraction, str]:
        # An upheld objection waives a priority step: the candidate goes ahead in that step.
        province_key = 0 if PROVINCE_NOT_PRIORITISED in self.waived else self.province.rank
        activity_key = 0 if LOWER_ACTIVITY_IN_PROVINCE in self.waived else 1
        return (province_key, activity_key, -self.activity, self.institution)


def _decision(
    application: Application,
    outcome: str,
    reason: str | None,
    message: str,
    waived: frozenset[str],
    place: int | None = None,
    priority_province: str | None = None,
) -> dict[str, Any]:
    return {
        "institution": application.institution,
        "campus": application.campus,
        "province": application.province,
        "region": application.region,
        "outcome": outcome,
        "reason": reason,
        "message": message,
        "place": place,
        "priority_province": priority_province,
        "waived": sorted(waived),
    }


def _eligibility_refusal(
    application: Application, inputs: NmrInputs, share: TopShare, waived: frozenset[str]
) -> tuple[str, str] | None:
    """The first eligibility step the application fails (reason code, sentence), if any."""
    name = application.institution
    if application.region != FLEMISH and OUTSIDE_FLEMISH_REGION not in waived:
        return (
            OUTSIDE_FLEMISH_REGION,
            f"{name} is not on the territory of the Flemish Region (region: {application.region}) and "
            "cannot claim MRI programming in the Flemish Region (niet op het grondgebied van het Vlaams "
            "Gewest).",
        )
    if inputs.new_services_only:
        if application.has_service_on_other_campus and SERVICE_ON_OTHER_CAMPUS not in waived:
            return (
                SERVICE_ON_OTHER_CAMPUS,
                f"{name} already has a recognised MRI service on another campus than {application.campus}; "
                "this round is reserved for hospitals without an MRI service.",
            )
        if name in inputs.reference_activity and HAS_SERVICE not in waived:
            return (
                HAS_SERVICE,
                f"{name} already has a recognised MRI service; this round is reserved for hospitals "
                "without an MRI service.",
            )
        return None
    if not share.includes(name) and NOT_IN_TOP_SHARE not in waived:
        percent = number_text(share.share * 100)
        top = f"the {share.places} of {share.hospitals} Flemish hospitals ({percent}%)"
        if name not in inputs.reference_activity:
            detail = "it has no justified activity per recognised MRI device on the reference list"
        else:
            activity = inputs.reference_activity[name]
            cut = "" if share.cut_activity is None else f"; the cut is at {number_text(share.cut_activity)}"
            detail = f"its activity per device is {number_text(activity)}, rank {share.ranks[name]}{cut}"
        return (
            NOT_IN_TOP_SHARE,
            f"{name} is not among {top} with the highest justified activity per recognised MRI device "
            f"({detail}).",
        )
    return None


def _activity_of(application: Application, inputs: NmrInputs) -> Fraction:
    # VAZG's reference figure counts (for an association, the campus hosting the MRI service);
    # the declared figure only where there is none, as for hospitals without an MRI service.
    if inputs.new_services_only:
        return application.justified_activity_per_device
    return inputs.reference_activity.get(application.institution, application.justified_activity_per_device)


def decide_nmr(record: Mapping[str, Any], waivers: Waivers | None = None) -> PolicyResult:
    """The MRI programming rules of 31 August 2023, applied to a round's recorded inputs.

    1. Eligibility: on Flemish territory; in new-services-only rounds no MRI service (on this or
       another campus) and no top-share step (such hospitals have no activity per recognised
       device); otherwise among the top share of `reference_activity`.
    2. Eligible applicants are ranked by their province's NMR-index (lowest first), then by
       justified activity per device (highest first), then by institution id (ties).
    3. One device each, in that order, until the capacity is used.
    `waivers` (institution → reason codes) are upheld objections: the named step is waived.
    """
    inputs = NmrInputs.from_record(record)
    waived_by = {institution: frozenset(codes) for institution, codes in (waivers or {}).items()}
    check_capacity(inputs.capacity)
    provinces = rank_provinces(inputs.provinces)
    standing = {p.name: p for p in provinces}
    share = top_share_of(inputs.reference_activity, inputs.top_share)

    refused_early: list[dict[str, Any]] = []
    candidates: list[_Candidate] = []
    for application in sorted(inputs.applications, key=lambda a: a.institution):
        waived = waived_by.get(application.institution, frozenset())
        refusal = _eligibility_refusal(application, inputs, share, waived)
        if refusal is not None:
            refused_early.append(_decision(application, REFUSED, refusal[0], refusal[1], waived))
            continue
        if application.province not in standing:
            raise ValueError(f"{application.institution}'s province {application.province} has no NMR-index")
        activity = _activity_of(application, inputs)
        candidates.append(_Candidate(application, standing[application.province], activity, waived))

    order = sorted(candidates, key=_Candidate.priority_key)
    granted = order[: inputs.capacity]
    granted_provinces = list(dict.fromkeys(c.province.name for c in granted))
    last_priority = granted[-1].province if granted else None

    decisions: list[dict[str, Any]] = []
    for place, candidate in enumerate(order, start=1):
        decisions.append(
            _nmr_decision(candidate, place, order, granted, granted_provinces, last_priority, len(provinces))
        )
    decisions.extend(refused_early)

    ranking = {
        "provinces": [p.as_record() for p in provinces],
        "top_share": None if inputs.new_services_only else share.as_record(),
        "priority": [
            {
                "place": place,
                "institution": c.institution,
                "province": c.province.name,
                "province_rank": c.province.rank,
                "activity": exact_text(c.activity),
                "outcome": GRANTED if c in granted else REFUSED,
            }
            for place, c in enumerate(order, start=1)
        ],
        "capacity": inputs.capacity,
        "granted": len(granted),
        "unused_capacity": inputs.capacity - len(granted),
    }
    return PolicyResult(ranking, decisions)


def _nmr_decision(
    candidate: _Candidate,
    place: int,
    order: list[_Candidate],
    granted: list[_Candidate],
    granted_provinces: list[str],
    last_priority: ProvinceStanding | None,
    province_count: int,
) -> dict[str, Any]:
    name = candidate.institution
    province = candidate.province
    where = f"{province.name} (NMR-index rank {province.rank} of {province_count})"
    activity = number_text(candidate.activity)
    upheld = (
        f" An upheld objection waived: {', '.join(sorted(candidate.waived))}." if candidate.waived else ""
    )
    if candidate in granted:
        return _decision(
            candidate.application,
            GRANTED,
            None,
            f"{name} is granted one MRI device: eligible, in {where}, place {place} in the priority order "
            f"with a justified activity per device of {activity}.{upheld}",
            candidate.waived,
            place=place,
        )
    same_province_granted = [g for g in granted if g.province.name == province.name]
    devices = f"{len(granted)} device{'s' if len(granted) != 1 else ''}"
    if same_province_granted:
        ahead = " and ".join(g.institution for g in same_province_granted)
        tied = [g.institution for g in same_province_granted if g.activity == candidate.activity]
        tie = (
            f" Its activity equals that of {' and '.join(tied)}; equal activity goes by institution id order."
            if tied
            else ""
        )
        return _decision(
            candidate.application,
            REFUSED,
            LOWER_ACTIVITY_IN_PROVINCE,
            f"{name} is in {where}, a province that had priority, but ranks lower on justified activity "
            f"per MRI device ({activity}) than {ahead}, granted before the capacity of {devices} was used "
            f"(lager gerangschikt op verantwoorde activiteit per NMR).{tie}{upheld}",
            candidate.waived,
            place=place,
        )
    # A refused candidate after the capacity was used: someone was granted, so there was a last priority.
    assert last_priority is not None
    had_priority = (
        f"{' then '.join(granted_provinces)} (NMR-index rank {last_priority.rank}), whose applicants "
        f"used the capacity of {devices}"
    )
    return _decision(
        candidate.application,
        REFUSED,
        PROVINCE_NOT_PRIORITISED,
        f"{name} is in {where}, not in the province that had priority: {had_priority} (behoort niet tot "
        f"de provincie met voorrang).{upheld}",
        candidate.waived,
        place=place,
        priority_province=last_priority.name,
    )


# Residential-care places (woonzorgcentra): ranking of care regions per trimester


@dataclass(frozen=True)
class RegionFigures:
    name: str
    programme_figure: int
    filled: int

    @property
    def fill_rate(self) -> Fraction:
        return Fraction(self.filled, self.programme_figure)


def fill_rate_text(fill_rate: Fraction) -> str:
    """A fill rate as the published percentage with two decimals, half-up: 93,00% → "93.00"."""
    return decimal_text(fill_rate * 100, 2)


def rank_care_regions(regions: Iterable[RegionFigures]) -> list[dict[str, Any]]:
    """Lowest fill rate first (rank 1 = priority); exact fractions compared; ties by region name."""
    regions = list(regions)
    for position, region in enumerate(regions):
        if region.programme_figure < 1 or region.filled < 0:
            raise DomainError(
                "schema",
                f"{region.name} needs a programme figure of at least 1 and a count of places that is "
                "not negative: its fill rate is places over programme figure",
                f"data.regions.{position}",
            )
    ordered = sorted(regions, key=lambda r: (r.fill_rate, r.name))
    return [
        {
            "region": r.name,
            "programme_figure": r.programme_figure,
            "filled": r.filled,
            "fill_rate": fill_rate_text(r.fill_rate),
            "fill_rate_exact": exact_text(r.fill_rate),
            "rank": rank,
        }
        for rank, r in enumerate(ordered, start=1)
    ]


def decide_care_regions(record: Mapping[str, Any], waivers: Waivers | None = None) -> PolicyResult:
    """The trimester's ranking; places are then granted by VAZG, so there are no per-applicant decisions."""
    regions = [
        RegionFigures(r["name"], int(r["programme_figure"]), int(r["filled"])) for r in record["regions"]
    ]
    return PolicyResult({"regions": rank_care_regions(regions)}, [])


POLICIES: dict[str, Policy] = {
    NMR_POLICY_VERSION: decide_nmr,
    CARE_REGIONS_POLICY_VERSION: decide_care_regions,
}


def apply_policy(version: str, inputs: Mapping[str, Any], waivers: Waivers | None = None) -> PolicyResult:
    """Runs the policy of that version; a KeyError names a version this code no longer knows."""
    return POLICIES[version](inputs, waivers or {})
