"""A register's whole life in commands, so that every kind of public domain event happens at least once."""

from __future__ import annotations

from tests.projections.scenario import CT_H001, LIFECYCLE, MORE, MRI_H001, ROUND, Step

CARE_ROUND = "care-regions-2030Q1"
APPLICATION = {
    "round_id": ROUND,
    "campus": "Hasselt",
    "province": "Limburg",
    "region": "flemish",
    "justified_activity_per_device": 100,
    "has_service_on_other_campus": False,
}

ROUND_STEPS = [
    # A third hospital applies and thinks better of it.
    Step("hospital/H003", "round.apply", APPLICATION, "r01-apply-h003"),
    Step("hospital/H003", "round.withdraw", {"round_id": ROUND}, "r02-withdraw-h003"),
    Step("hospital/H003", "round.apply", {**APPLICATION, "justified_activity_per_device": 99}, "r03-again"),
    # VAZG closes and decides the MRI round; the refused hospital objects, in vain; the round is final.
    Step("vazg", "round.close", {"round_id": ROUND}, "r04-close"),
    Step("vazg", "round.decide", {"round_id": ROUND}, "r05-decide"),
    Step("hospital/H003", "round.object", {"round_id": ROUND, "text": "we grew"}, "r06-object"),
    Step(
        "vazg",
        "round.rule-objection",
        {"round_id": ROUND, "institution": "H003", "upheld": False, "reasoning": "activity too low"},
        "r07-rule",
    ),
    Step("vazg", "round.finalise", {"round_id": ROUND}, "r08-finalise"),
    # A care-region trimester: opened with each region's figures, decided, places granted, a correction.
    Step(
        "vazg",
        "round.open",
        {
            "round_id": CARE_ROUND,
            "programme": "care-regions",
            "period": "2030Q1",
            "capacity": 10,
            "regions": [
                {"name": "Gent", "programme_figure": 12000, "filled": 11000},
                {"name": "Brugge", "programme_figure": 5383, "filled": 4007},
            ],
        },
        "r09-open-care",
    ),
    Step("vazg", "round.close", {"round_id": CARE_ROUND}, "r10-close-care"),
    Step("vazg", "round.decide", {"round_id": CARE_ROUND}, "r11-decide-care"),
    Step("vazg", "round.grant", {"round_id": CARE_ROUND, "region": "Brugge", "units": 4}, "r12-grant"),
    Step(
        "vazg",
        "capacity.correct",
        {"programme": "care-regions", "region": "Gent", "delta": -3, "reason": "counted twice"},
        "r13-correct",
    ),
]

DEVICE_STEPS = [
    # H001 cancels the MRI MID-ID it never used; FANC receives a transfer under the old number.
    Step("hospital/H001", "midid.cancel", {"mid_id": MRI_H001, "reason": "tender lost"}, "d01-cancel"),
    Step(
        "fanc",
        "fanc.transfer",
        {"identifier": "FANC-0042", "period": "2023Q2", "received_on": "2023-07-01"},
        "d02-transfer",
    ),
    Step(
        "fanc",
        "fanc.legacy-number",
        {"legacy_number": "FANC-0077", "mid_id": CT_H001},
        "d03-legacy-number",
    ),
]

ACCESS_STEPS = [
    # The FOD makes H001's local administrator; H001 grants a physicist the requester role, then revokes it.
    Step(
        "fod",
        "access.grant",
        {"person": "lea", "name": "Lea Peeters", "party": "hospital/H001", "role": "local-admin"},
        "a01-grant-admin",
    ),
    Step(
        "hospital/H001",
        "access.grant",
        {"person": "jan", "name": "Jan Claes", "party": "hospital/H001", "role": "requester"},
        "a02-grant-requester",
    ),
    Step(
        "hospital/H001",
        "access.revoke",
        {"person": "jan", "party": "hospital/H001", "role": "requester", "reason": "left the hospital"},
        "a03-revoke-requester",
    ),
]

FULL_LIFE = [*LIFECYCLE, *MORE, *DEVICE_STEPS, *ROUND_STEPS, *ACCESS_STEPS]
