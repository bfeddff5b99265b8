"""The allocation round: VAZG opens it, hospitals apply, a versioned policy decides, objections are ruled."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.allocation_policies import (
    CARE_REGIONS,
    CURRENT_POLICY,
    FLEMISH,
    GRANTED,
    NMR,
    OUTSIDE_FLEMISH_REGION,
    PROGRAMMES,
    REFUSED,
    PolicyResult,
    Province,
    apply_policy,
    check_capacity,
    check_provinces,
    exact,
)
from domain.errors import DomainError
from domain.identifiers import stable_id

OPEN = "open"
CLOSED = "closed"
DECIDED = "decided"
FINALISED = "finalised"

INTENT_TO_REFUSE = "intent_to_refuse"

ROUND_INDEX_ID = stable_id("round-index", "all")

PROGRAMME_INPUTS = {
    NMR: ("provinces", "reference_activity", "top_share", "new_services_only"),
    CARE_REGIONS: ("regions",),
}


def round_aggregate_id(round_id: str) -> UUID:
    return stable_id("round", round_id)


def as_utc(moment: datetime) -> datetime:
    """A moment without a zone is taken to be UTC, so deadlines and command times compare."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class RoundIndex(Aggregate):
    """Every round ever opened, so rounds can be listed and a care-region trimester found by period."""

    @staticmethod
    def create_id() -> UUID:
        return ROUND_INDEX_ID

    @event("Started")
    def __init__(self, source: str, command_id: str) -> None:
        self.rounds: list[dict[str, str]] = []

    def find(self, programme: str, period: str) -> str | None:
        for listed in self.rounds:
            if listed["programme"] == programme and listed["period"] == period:
                return listed["round_id"]
        return None

    @property
    def round_ids(self) -> list[str]:
        return [listed["round_id"] for listed in self.rounds]

    def check_period_free(self, programme: str, period: str) -> None:
        # A care-region ranking is asked for by period, so a period has one care-region round.
        taken = self.find(programme, period) if programme == CARE_REGIONS else None
        if taken is not None:
            raise DomainError(
                "conflict", f"round {taken} already ranks the care regions for {period}", "data.period"
            )

    def list_round(self, round_id: str, programme: str, period: str, source: str, command_id: str) -> None:
        self.check_period_free(programme, period)
        self._list_round(
            round_id=round_id, programme=programme, period=period, source=source, command_id=command_id
        )

    @event("RoundListed")
    def _list_round(self, round_id: str, programme: str, period: str, source: str, command_id: str) -> None:
        self.rounds = [*self.rounds, {"round_id": round_id, "programme": programme, "period": period}]


class AllocationRound(Aggregate):
    """One round of programmed capacity, from opening to final decisions.

    `decide` runs the programme's current policy on the inputs recorded so far and records
    those inputs, the policy version, the ranking and the decisions in one event, so any
    decision can be recomputed later. An upheld objection waives the refusal reason it
    contested and the round is recomputed with that waiver (see `rule_on_objection`).
    """

    @staticmethod
    def create_id(round_id: str) -> UUID:
        return round_aggregate_id(round_id)

    class Opened(Aggregate.Created):
        round_id: str
        programme: str
        period: str
        capacity: int
        deadline: datetime | None
        policy_inputs: dict[str, Any]
        source: str
        command_id: str

    @event(Opened)
    def __init__(
        self,
        round_id: str,
        programme: str,
        period: str,
        capacity: int,
        deadline: datetime | None,
        policy_inputs: dict[str, Any],
        source: str,
        command_id: str,
    ) -> None:
        self.round_id = round_id
        self.programme = programme
        self.period = period
        self.capacity = capacity
        self.deadline = deadline
        self.policy_inputs = copy.deepcopy(policy_inputs)
        self.status = OPEN
        self.applications: dict[str, dict[str, Any]] = {}
        self.withdrawals: list[dict[str, Any]] = []
        self.policy_version: str | None = None
        self.decided_inputs: dict[str, Any] | None = None
        self.ranking: dict[str, Any] | None = None
        self.decisions: list[dict[str, Any]] = []
        self.statuses: dict[str, str] = {}
        self.waivers: dict[str, list[str]] = {}
        self.objections: list[dict[str, Any]] = []
        self.computations: list[dict[str, Any]] = []
        self.grants: list[dict[str, Any]] = []

    @classmethod
    def open(
        cls,
        round_id: str,
        programme: str,
        period: str,
        capacity: int,
        deadline: datetime | None,
        policy_inputs: dict[str, Any],
        source: str,
        command_id: str,
    ) -> AllocationRound:
        check_policy_inputs(programme, capacity, deadline, policy_inputs)
        return cls(
            round_id=round_id,
            programme=programme,
            period=period,
            capacity=capacity,
            deadline=None if deadline is None else as_utc(deadline),
            policy_inputs={key: policy_inputs.get(key) for key in PROGRAMME_INPUTS[programme]},
            source=source,
            command_id=command_id,
        )

    # reading

    @property
    def regions(self) -> list[dict[str, Any]]:
        regions: list[dict[str, Any]] = self.policy_inputs.get("regions", [])
        return regions

    @property
    def province_names(self) -> set[str]:
        return {p["name"] for p in self.policy_inputs.get("provinces", [])}

    @property
    def granted_units(self) -> int:
        return sum(int(g["units"]) for g in self.grants)

    def decision_of(self, institution: str) -> dict[str, Any] | None:
        for decision in self.decisions:
            if decision["institution"] == institution:
                return {**decision, "status": self.statuses.get(institution)}
        return None

    def summary(self) -> dict[str, Any]:
        """The round in one line of a list: what it allocates, where it stands, how many applied."""
        return {
            "round_id": self.round_id,
            "programme": self.programme,
            "period": self.period,
            "status": self.status,
            "capacity": self.capacity,
            "deadline": None if self.deadline is None else self.deadline.isoformat(),
            "applications": len(self.applications),
            "policy_version": self.policy_version,
        }

    def decisions_with_status(self) -> list[dict[str, Any]]:
        return [{**d, "status": self.statuses.get(d["institution"])} for d in self.decisions]

    def pending_objection(self, institution: str) -> dict[str, Any] | None:
        for objection in self.objections:
            if objection["institution"] == institution and objection["ruling"] is None:
                return objection
        return None

    # guards

    def check_programme(self, programme: str, message: str, field: str = "data.round_id") -> None:
        if self.programme != programme:
            raise DomainError(
                "conflict", f"round {self.round_id} is a {self.programme} round: {message}", field
            )

    def check_accepting_applications(self, received_at: datetime) -> None:
        if self.status != OPEN:
            raise DomainError(
                "round_closed",
                f"round {self.round_id} is {self.status}: no more applications",
                "data.round_id",
            )
        assert self.deadline is not None
        if as_utc(received_at) > self.deadline:
            raise DomainError(
                "round_closed",
                f"received at {as_utc(received_at).isoformat()}, after round {self.round_id}'s deadline "
                f"{self.deadline.isoformat()} (the envelope's time is only the sender's claim)",
                "data.round_id",
            )

    def check_decided(self) -> None:
        if self.status == FINALISED:
            raise DomainError("round_closed", f"round {self.round_id} is finalised", "data.round_id")
        if self.status != DECIDED:
            raise DomainError(
                "conflict",
                f"round {self.round_id} is {self.status}: it has not been decided yet",
                "data.round_id",
            )

    def check_decidable(self) -> None:
        if self.status == FINALISED:
            raise DomainError("round_closed", f"round {self.round_id} is finalised", "data.round_id")
        if self.status == OPEN:
            raise DomainError(
                "conflict", f"round {self.round_id} is still open: close it before deciding", "data.round_id"
            )
        if self.status == DECIDED:
            raise DomainError("conflict", f"round {self.round_id} has already been decided", "data.round_id")

    def check_applicant_province(self, province: str, region: str) -> None:
        if region == FLEMISH and province not in self.province_names:
            known = ", ".join(sorted(self.province_names))
            raise DomainError(
                "schema", f"{province!r} is not one of this round's provinces ({known})", "data.province"
            )

    # commands

    def file_application(
        self,
        institution: str,
        campus: str,
        province: str,
        region: str,
        justified_activity_per_device: str,
        has_service_on_other_campus: bool,
        received_at: datetime,
        sent_at: datetime | None,
        source: str,
        command_id: str,
    ) -> None:
        self.check_programme(NMR, "care-region rounds take no applications from hospitals")
        self.check_accepting_applications(received_at)
        if institution in self.applications:
            raise DomainError(
                "conflict",
                f"{institution} has already applied to round {self.round_id}: withdraw first",
                "data.round_id",
            )
        self.check_applicant_province(province, region)
        self._file_application(
            institution=institution,
            campus=campus,
            province=province,
            region=region,
            justified_activity_per_device=str(exact(justified_activity_per_device)),
            has_service_on_other_campus=has_service_on_other_campus,
            sent_at=None if sent_at is None else as_utc(sent_at),
            received_at=as_utc(received_at),
            source=source,
            command_id=command_id,
        )

    @event("ApplicationFiled")
    def _file_application(
        self,
        institution: str,
        campus: str,
        province: str,
        region: str,
        justified_activity_per_device: str,
        has_service_on_other_campus: bool,
        sent_at: datetime | None,
        source: str,
        command_id: str,
        received_at: datetime | None = None,
    ) -> None:
        self.applications = {
            **self.applications,
            institution: {
                "institution": institution,
                "campus": campus,
                "province": province,
                "region": region,
                "justified_activity_per_device": justified_activity_per_device,
                "has_service_on_other_campus": has_service_on_other_campus,
            },
        }

    def withdraw_application(
        self, institution: str, received_at: datetime, source: str, command_id: str
    ) -> None:
        self.check_programme(NMR, "care-region rounds take no applications from hospitals")
        self.check_accepting_applications(received_at)
        if institution not in self.applications:
            raise DomainError(
                "conflict", f"{institution} has no application in round {self.round_id}", "data.round_id"
            )
        self._withdraw_application(institution=institution, source=source, command_id=command_id)

    @event("ApplicationWithdrawn")
    def _withdraw_application(self, institution: str, source: str, command_id: str) -> None:
        self.applications = {k: v for k, v in self.applications.items() if k != institution}
        self.withdrawals = [*self.withdrawals, {"institution": institution, "command_id": command_id}]

    def close(self, source: str, command_id: str) -> None:
        if self.status != OPEN:
            raise DomainError(
                "round_closed", f"round {self.round_id} is already {self.status}", "data.round_id"
            )
        self._close(source=source, command_id=command_id)

    @event("Closed")
    def _close(self, source: str, command_id: str) -> None:
        self.status = CLOSED

    def decision_inputs(self, filled: Mapping[str, int] | None = None) -> dict[str, Any]:
        """What the policy reads, as recorded; `filled` is the register's care-region count."""
        if self.programme == NMR:
            return {
                "capacity": self.capacity,
                "provinces": copy.deepcopy(self.policy_inputs["provinces"]),
                "reference_activity": dict(self.policy_inputs["reference_activity"]),
                "top_share": self.policy_inputs["top_share"],
                "new_services_only": self.policy_inputs["new_services_only"],
                "applications": [self.applications[i] for i in sorted(self.applications)],
            }
        figures = filled or {}
        missing = [r["name"] for r in self.regions if r["name"] not in figures]
        if missing:
            raise DomainError("conflict", f"no filled figure known for {', '.join(missing)}", "data.round_id")
        return {
            "capacity": self.capacity,
            "regions": [
                {"name": r["name"], "programme_figure": r["programme_figure"], "filled": figures[r["name"]]}
                for r in self.regions
            ],
        }

    def decide(self, source: str, command_id: str, filled: Mapping[str, int] | None = None) -> PolicyResult:
        self.check_decidable()
        inputs = self.decision_inputs(filled)
        version = CURRENT_POLICY[self.programme]
        result = apply_policy(version, inputs)
        self._decide(
            policy_version=version,
            inputs=inputs,
            ranking=result.ranking,
            decisions=result.decisions,
            source=source,
            command_id=command_id,
        )
        return result

    @event("Decided")
    def _decide(
        self,
        policy_version: str,
        inputs: dict[str, Any],
        ranking: dict[str, Any],
        decisions: list[dict[str, Any]],
        source: str,
        command_id: str,
    ) -> None:
        self.status = DECIDED
        self.policy_version = policy_version
        self.decided_inputs = copy.deepcopy(inputs)
        self._take_decisions(ranking, decisions)
        self.computations = [
            *self.computations,
            _computation("decide", command_id, policy_version, inputs, {}, ranking, decisions),
        ]

    def _take_decisions(self, ranking: dict[str, Any], decisions: list[dict[str, Any]]) -> None:
        # Until the round is finalised every refusal is an intent to refuse.
        self.ranking = copy.deepcopy(ranking)
        self.decisions = copy.deepcopy(decisions)
        self.statuses = {
            d["institution"]: GRANTED if d["outcome"] == GRANTED else INTENT_TO_REFUSE for d in decisions
        }

    def lodge_objection(self, institution: str, text: str, source: str, command_id: str) -> None:
        self.check_decided()
        decision = self.decision_of(institution)
        if decision is None:
            raise DomainError(
                "conflict", f"{institution} did not apply to round {self.round_id}", "data.round_id"
            )
        if decision["status"] != INTENT_TO_REFUSE:
            raise DomainError(
                "conflict",
                f"{institution} received no intent to refuse in round {self.round_id}",
                "data.round_id",
            )
        if self.pending_objection(institution) is not None:
            raise DomainError(
                "conflict", f"{institution}'s objection is still awaiting a ruling", "data.round_id"
            )
        against = decision["reason"]
        if any(o["institution"] == institution and o["against"] == against for o in self.objections):
            raise DomainError(
                "conflict", f"{institution} already objected to the refusal for {against}", "data.round_id"
            )
        self._lodge_objection(
            institution=institution, against=against, text=text, source=source, command_id=command_id
        )

    @event("ObjectionLodged")
    def _lodge_objection(
        self, institution: str, against: str, text: str, source: str, command_id: str
    ) -> None:
        self.objections = [
            *self.objections,
            {
                "institution": institution,
                "against": against,
                "text": text,
                "command_id": command_id,
                "ruling": None,
            },
        ]

    def rule_on_objection(
        self, institution: str, upheld: bool, reasoning: str, source: str, command_id: str
    ) -> list[dict[str, Any]]:
        """Records the advisory committee's ruling; returns the decisions it changed.

        Upheld: the refusal reason the objection contested is waived for that institution
        (an eligibility step lets it through; a priority step puts it ahead in that step)
        and the round is recomputed from its recorded inputs with every waiver so far, with
        the same policy version. The capacity stays what it is, so the objector may displace
        the last grantee, who then receives an intent to refuse and may object in turn.
        Not upheld: nothing changes; the intent to refuse becomes final at `finalise`.
        """
        self.check_decided()
        objection = self.pending_objection(institution)
        if objection is None:
            raise DomainError(
                "conflict", f"{institution} has no objection awaiting a ruling", "data.institution"
            )
        waivers: dict[str, list[str]] | None = None
        result: PolicyResult | None = None
        if upheld:
            waived = objection["against"]
            application = self.applications[institution]
            if waived == OUTSIDE_FLEMISH_REGION and application["province"] not in self.province_names:
                raise DomainError(
                    "conflict",
                    f"{institution}'s province {application['province']!r} has no NMR-index in this round, "
                    "so it cannot be ranked even if the objection is upheld",
                    "data.upheld",
                )
            waivers = {k: list(v) for k, v in self.waivers.items()}
            waivers[institution] = sorted({*waivers.get(institution, []), waived})
            assert self.policy_version is not None and self.decided_inputs is not None
            result = apply_policy(self.policy_version, self.decided_inputs, waivers)
        before = {d["institution"]: d["outcome"] for d in self.decisions}
        self._rule_on_objection(
            institution=institution,
            upheld=upheld,
            reasoning=reasoning,
            waivers=waivers,
            ranking=None if result is None else result.ranking,
            decisions=None if result is None else result.decisions,
            source=source,
            command_id=command_id,
        )
        return [
            {"institution": d["institution"], "before": before.get(d["institution"]), "after": d["outcome"]}
            for d in self.decisions
            if before.get(d["institution"]) != d["outcome"]
        ]

    @event("ObjectionRuled")
    def _rule_on_objection(
        self,
        institution: str,
        upheld: bool,
        reasoning: str,
        waivers: dict[str, list[str]] | None,
        ranking: dict[str, Any] | None,
        decisions: list[dict[str, Any]] | None,
        source: str,
        command_id: str,
    ) -> None:
        ruling = {"upheld": upheld, "reasoning": reasoning, "command_id": command_id}
        self.objections = [
            {**o, "ruling": ruling} if o["institution"] == institution and o["ruling"] is None else o
            for o in self.objections
        ]
        if waivers is not None and ranking is not None and decisions is not None:
            self.waivers = copy.deepcopy(waivers)
            self._take_decisions(ranking, decisions)
            assert self.policy_version is not None and self.decided_inputs is not None
            self.computations = [
                *self.computations,
                _computation(
                    "objection",
                    command_id,
                    self.policy_version,
                    self.decided_inputs,
                    waivers,
                    ranking,
                    decisions,
                ),
            ]

    def grant(self, region: str, institution: str | None, units: int, source: str, command_id: str) -> None:
        self.check_programme(
            CARE_REGIONS, "an MRI round grants through its decision; round.grant records care-region places"
        )
        self.check_decided()
        if region not in {r["name"] for r in self.regions}:
            raise DomainError("conflict", f"{region!r} is not ranked in round {self.round_id}", "data.region")
        if self.granted_units + units > self.capacity:
            raise DomainError(
                "conflict",
                f"round {self.round_id} has {self.capacity - self.granted_units} of {self.capacity} "
                f"places left, not {units}",
                "data.units",
            )
        self._grant(region=region, institution=institution, units=units, source=source, command_id=command_id)

    @event("Granted")
    def _grant(self, region: str, institution: str | None, units: int, source: str, command_id: str) -> None:
        self.grants = [
            *self.grants,
            {"region": region, "institution": institution, "units": units, "command_id": command_id},
        ]

    def finalise(self, source: str, command_id: str) -> list[str]:
        """Intents to refuse become final refusals; returns the institutions refused."""
        self.check_decided()
        pending = [o["institution"] for o in self.objections if o["ruling"] is None]
        if pending:
            raise DomainError(
                "conflict", f"objections still await a ruling: {', '.join(pending)}", "data.round_id"
            )
        refused = sorted(i for i, s in self.statuses.items() if s == INTENT_TO_REFUSE)
        self._finalise(refused=refused, source=source, command_id=command_id)
        return refused

    @event("Finalised")
    def _finalise(self, refused: list[str], source: str, command_id: str) -> None:
        self.status = FINALISED
        self.statuses = {i: REFUSED if i in refused else s for i, s in self.statuses.items()}


def _computation(
    step: str,
    command_id: str,
    policy_version: str,
    inputs: dict[str, Any],
    waivers: dict[str, list[str]],
    ranking: dict[str, Any],
    decisions: list[dict[str, Any]],
) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "step": step,
            "command_id": command_id,
            "policy_version": policy_version,
            "inputs": inputs,
            "waivers": waivers,
            "ranking": ranking,
            "decisions": decisions,
        }
    )


def check_policy_inputs(
    programme: str, capacity: int, deadline: datetime | None, inputs: Mapping[str, Any]
) -> None:
    """The opening's rules: each programme gets the policy inputs it needs and no others."""
    if programme not in PROGRAMMES:
        raise DomainError(
            "schema", f"programme is {' or '.join(PROGRAMMES)}, not {programme!r}", "data.programme"
        )
    if capacity < 0:
        raise DomainError("schema", "capacity cannot be negative", "data.capacity")
    if programme == NMR:
        _check_nmr_inputs(capacity, deadline, inputs)
    else:
        _check_care_region_inputs(inputs)


def _check_nmr_inputs(capacity: int, deadline: datetime | None, inputs: Mapping[str, Any]) -> None:
    if inputs.get("regions"):
        raise DomainError("schema", "an nmr round takes provinces, not care regions", "data.regions")
    if deadline is None:
        raise DomainError("schema", "an nmr round needs an application deadline", "data.deadline")
    check_capacity(capacity)
    provinces = inputs.get("provinces") or []
    check_provinces(
        [Province(p["name"], int(p["population"]), int(p["recognised_devices"])) for p in provinces]
    )
    names = [p["name"] for p in provinces]
    if len(set(names)) != len(names):
        raise DomainError("schema", "a province is listed twice", "data.provinces")
    if inputs.get("reference_activity") is None:
        raise DomainError(
            "schema", "an nmr round needs the reference activity per hospital", "data.reference_activity"
        )
    if not inputs.get("new_services_only") and not inputs["reference_activity"]:
        raise DomainError(
            "schema",
            "the top-share cut needs the activity of every Flemish hospital with an MRI",
            "data.reference_activity",
        )
    if inputs.get("top_share") is None or not isinstance(inputs.get("new_services_only"), bool):
        raise DomainError("schema", "an nmr round needs top_share and new_services_only", "data.top_share")
    share = exact(inputs["top_share"])
    if not 0 < share <= 1:
        raise DomainError(
            "schema", "top_share is a fraction above 0 and at most 1 (0.15 in the decree)", "data.top_share"
        )


def _check_care_region_inputs(inputs: Mapping[str, Any]) -> None:
    if inputs.get("provinces") or inputs.get("reference_activity"):
        raise DomainError(
            "schema", "a care-regions round takes regions, not provinces or activity", "data.provinces"
        )
    regions = inputs.get("regions") or []
    if not regions:
        raise DomainError(
            "schema", "a care-regions round needs the regions' programme figures", "data.regions"
        )
    names = [r["name"] for r in regions]
    if len(set(names)) != len(names):
        raise DomainError("schema", "a care region is listed twice", "data.regions")
    if any(int(r["programme_figure"]) < 1 for r in regions):
        raise DomainError("schema", "a programme figure is at least 1", "data.regions")
