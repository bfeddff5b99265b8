"""Allocation rounds through the real command pipeline and event store, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from domain.allocation_policies import GRANTED, LOWER_ACTIVITY_IN_PROVINCE
from domain.allocation_round import INTENT_TO_REFUSE, round_aggregate_id
from domain.errors import DomainError
from services.register import Register
from services.rounds import list_rounds, ranking, series_commands, show_round, verify_rounds
from tests.conftest import SHARED_DATA, Sender
from tests.domain.test_allocation_policies import (
    PROVINCES_2023,
    PUBLISHED_2024,
    REFERENCE_2024,
    applications_2024,
)

ROUND_2024 = "nmr-2023"
OPENED = "2023-10-15T09:00:00+02:00"
APPLIED = "2023-12-01T09:00:00Z"
DEADLINE = "2024-01-15T23:59:59+01:00"
AFTER_DEADLINE = "2024-01-16T08:00:00+01:00"
DECIDED = "2024-03-01T10:00:00+01:00"


def series() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SHARED_DATA / "care_regions_2017h1.json").read_text())
    return document


def published_rankings() -> dict[str, list[dict[str, Any]]]:
    expected: dict[str, list[dict[str, Any]]] = json.loads(
        (SHARED_DATA / "care_regions_2017h1_expected.json").read_text()
    )
    return expected


def import_series(sender: Sender, document: dict[str, Any]) -> list[dict[str, Any]]:
    return [sender.send(c.source, c.type, c.data, c.command_id) for c in series_commands(document)]


def by_region(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["region"]: row for row in rows}


def send_at(
    sender: Sender, time: str, source: str, type_: str, data: Any, claimed: str | None = None
) -> dict[str, Any]:
    """Sends a command the register receives at `time`, its envelope claiming `claimed` (or `time`)."""
    envelope = json.loads(sender.envelope(source, type_, data))
    envelope["time"] = claimed or time
    received = datetime.fromisoformat(time)
    return sender.raw(json.dumps(envelope).encode(), sender.subject(source, type_), received_at=received)


def accepted_at(sender: Sender, time: str, source: str, type_: str, data: Any) -> dict[str, Any]:
    outcome = send_at(sender, time, source, type_, data)
    assert outcome["status"] == "accepted", outcome
    result: dict[str, Any] = outcome["result"]
    return result


def open_round_2024(sender: Sender, capacity: int = 2) -> dict[str, Any]:
    return accepted_at(
        sender,
        OPENED,
        "vazg",
        "round.open",
        {
            "round_id": ROUND_2024,
            "programme": "nmr",
            "period": "2023",
            "capacity": capacity,
            "deadline": DEADLINE,
            "provinces": PROVINCES_2023,
            "reference_activity": REFERENCE_2024,
            "top_share": 0.15,
            "new_services_only": False,
        },
    )


def application_data(application: dict[str, Any]) -> dict[str, Any]:
    return {
        "round_id": ROUND_2024,
        "campus": application["campus"],
        "province": application["province"],
        "region": application["region"],
        "justified_activity_per_device": int(application["justified_activity_per_device"]),
        "has_service_on_other_campus": application["has_service_on_other_campus"],
    }


def decide_round_2024(sender: Sender) -> dict[str, Any]:
    # VAZG opens the call, every hospital of the answer applies, VAZG closes and decides.
    open_round_2024(sender)
    for application in applications_2024():
        hospital = f"hospital/{application['institution']}"
        accepted_at(sender, APPLIED, hospital, "round.apply", application_data(application))
    accepted_at(sender, AFTER_DEADLINE, "vazg", "round.close", {"round_id": ROUND_2024})
    return accepted_at(sender, DECIDED, "vazg", "round.decide", {"round_id": ROUND_2024})


def alter_decided_event(
    register: Register, database_url: str, round_id: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Rewrites the stored JSON of a round's Decided event behind the register's back."""
    table = register.recorder.events_table_name  # type: ignore[attr-defined]
    aggregate_id = round_aggregate_id(round_id)

    def altered(state: bytes) -> bytes:
        document = json.loads(bytes(state))
        change(document)
        return json.dumps(document).encode()

    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            ((version, state),) = db.execute(
                f"SELECT originator_version, state FROM {table} WHERE originator_id = ? AND topic LIKE ?",
                (aggregate_id.hex, "%.Decided"),
            ).fetchall()
            db.execute(
                f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
                (altered(state), aggregate_id.hex, version),
            )
            db.commit()
        return
    import psycopg

    dsn, _, query = database_url.partition("?")
    schema = parse_qs(query)["schema"][0]
    with psycopg.connect(dsn, autocommit=True) as db:
        ((version, state),) = db.execute(
            f"SELECT originator_version, state FROM {schema}.{table} "
            "WHERE originator_id = %s AND topic LIKE %s",
            (aggregate_id, "%.Decided"),
        ).fetchall()
        db.execute(
            f"UPDATE {schema}.{table} SET state = %s WHERE originator_id = %s AND originator_version = %s",
            (altered(state), aggregate_id, version),
        )


# care-region rankings


def test_importing_the_2017_series_gives_exactly_the_published_rankings(
    sender: Sender, register: Register
) -> None:
    outcomes = import_series(sender, series())
    assert [o["status"] for o in outcomes] == ["accepted"] * len(outcomes)
    for period, published in published_rankings().items():
        assert by_region(ranking(register, period)) == by_region(published)


def test_the_ranking_lists_regions_priority_first(sender: Sender, register: Register) -> None:
    import_series(sender, series())
    rows = ranking(register, "2017Q2")
    assert [row["rank"] for row in rows] == list(range(1, 15))
    assert rows[0] == {
        "region": "Brugge",
        "programme_figure": 5383,
        "filled": 4007,
        "fill_rate": "74.44",
        "rank": 1,
    }


def test_importing_the_same_series_again_changes_nothing(sender: Sender, register: Register) -> None:
    first = import_series(sender, series())
    position = register.position()
    again = import_series(sender, series())
    assert again == first
    assert register.position() == position


def test_a_changed_series_file_is_refused_instead_of_silently_ignored(sender: Sender) -> None:
    import_series(sender, series())
    changed = series()
    changed["trimesters"][0]["granted"]["Oostende"] = 57
    outcomes = import_series(sender, changed)
    assert outcomes[0]["status"] == "rejected"
    assert outcomes[0]["errors"][0]["code"] == "conflict"


def test_a_correction_counts_in_its_own_trimesters_ranking(sender: Sender, register: Register) -> None:
    document = series()
    document["trimesters"][1]["corrections"] = [
        {"region": "Kortrijk", "delta": -500, "reason": "places counted twice in 2016"}
    ]
    import_series(sender, document)
    assert by_region(ranking(register, "2017Q1"))["Kortrijk"]["filled"] == 4679
    kortrijk = by_region(ranking(register, "2017Q2"))["Kortrijk"]
    assert kortrijk["filled"] == 4179
    assert kortrijk["fill_rate"] == "84.07"
    assert kortrijk["rank"] == 6


def test_a_starting_figure_that_disagrees_with_the_register_is_refused(sender: Sender) -> None:
    import_series(sender, series())
    regions = [{"name": "Oostende", "programme_figure": 3602, "filled": 2653}]
    opening = {"round_id": "care-regions-2017Q3", "programme": "care-regions", "period": "2017Q3"}
    sender.rejected("vazg", "round.open", {**opening, "capacity": 10, "regions": regions}, "conflict")
    regions[0]["filled"] = 2709
    sender.accepted("vazg", "round.open", {**opening, "capacity": 10, "regions": regions})


def test_a_ranking_before_the_decision_shows_the_registers_current_count(
    sender: Sender, register: Register
) -> None:
    import_series(sender, series())
    regions = [
        {"name": "Oostende", "programme_figure": 3602},
        {"name": "Brussel incl. BHG", "programme_figure": 9658},
    ]
    sender.accepted(
        "vazg",
        "round.open",
        {
            "round_id": "q3",
            "programme": "care-regions",
            "period": "2017Q3",
            "capacity": 10,
            "regions": regions,
        },
    )
    assert [(r["region"], r["filled"]) for r in ranking(register, "2017Q3")] == [
        ("Oostende", 2709),
        ("Brussel incl. BHG", 8359),
    ]


def test_the_ranking_of_a_period_without_a_round_is_round_unknown(register: Register) -> None:
    with pytest.raises(DomainError) as unknown:
        ranking(register, "2031Q1")
    assert unknown.value.code == "round_unknown"


def test_care_region_commands_are_checked(sender: Sender) -> None:
    import_series(sender, series())
    sender.rejected("vazg", "round.grant", {"round_id": "care-regions-2017Q1", "units": 5}, "schema")
    sender.rejected(
        "vazg",
        "capacity.correct",
        {"programme": "nmr", "region": "Antwerpen", "delta": 1, "reason": "x"},
        "schema",
    )
    sender.rejected(
        "vazg",
        "round.grant",
        {"round_id": "care-regions-2017Q1", "region": "Gent", "units": 5},
        "round_closed",
    )
    result = sender.accepted(
        "vazg",
        "capacity.correct",
        {"programme": "care-regions", "region": "Gent", "delta": -21, "reason": "audit"},
    )
    assert result == {"programme": "care-regions", "region": "Gent", "delta": -21, "filled": 11300}


# the 2024 MRI round


def test_the_2024_mri_round_gives_the_published_outcome_through_the_pipeline(
    sender: Sender, register: Register
) -> None:
    decided = decide_round_2024(sender)
    assert decided["status"] == "decided"
    assert decided["policy_version"] == "nmr/bvr-2023-08-31/v1"
    assert {d["institution"]: d["reason"] or d["outcome"] for d in decided["decisions"]} == PUBLISHED_2024
    assert {d["institution"]: d["status"] for d in decided["decisions"] if d["status"] == GRANTED} == {
        "AZSintMaarten": GRANTED,
        "AZKlina": GRANTED,
    }
    assert decided["ranking"]["provinces"][1]["province"] == "Antwerpen"
    # Nobody objected in 2024: finalising turns the fifteen intents to refuse into refusals.
    finalised = sender.accepted("vazg", "round.finalise", {"round_id": ROUND_2024})
    assert len(finalised["refused"]) == 15
    shown = show_round(register, ROUND_2024)
    assert shown["status"] == "finalised"
    assert shown["inputs"]["top_share"] == "3/20"
    assert len(shown["applications"]) == 17
    assert shown["objections"] == []
    assert list_rounds(register) == [
        {
            "round_id": ROUND_2024,
            "programme": "nmr",
            "period": "2023",
            "status": "finalised",
            "capacity": 2,
            "deadline": "2024-01-15T23:59:59+01:00",
            "applications": 17,
            "policy_version": "nmr/bvr-2023-08-31/v1",
        }
    ]
    assert verify_rounds(register) == [
        {
            "round_id": ROUND_2024,
            "programme": "nmr",
            "status": "finalised",
            "checked": 1,
            "ok": True,
            "differences": [],
        }
    ]


def test_an_application_sent_after_the_deadline_is_refused_as_round_closed(sender: Sender) -> None:
    open_round_2024(sender)
    late = send_at(
        sender, AFTER_DEADLINE, "hospital/ZNA", "round.apply", application_data(applications_2024()[0])
    )
    assert late["status"] == "rejected"
    assert late["errors"][0]["code"] == "round_closed"


def test_a_late_application_backdated_in_its_envelope_is_still_refused_as_round_closed(
    sender: Sender, register: Register
) -> None:
    open_round_2024(sender)
    zna, uza = applications_2024()[:2]
    # Received after the deadline, the envelope claiming a moment well before it.
    late = send_at(
        sender,
        AFTER_DEADLINE,
        f"hospital/{zna['institution']}",
        "round.apply",
        application_data(zna),
        APPLIED,
    )
    assert late["status"] == "rejected"
    assert late["errors"][0]["code"] == "round_closed"
    assert "received at 2024-01-16T08:00:00+01:00" in late["errors"][0]["message"]
    # Received in time, whatever the envelope claims: accepted, the claim kept beside the receipt.
    on_time = send_at(
        sender,
        APPLIED,
        f"hospital/{uza['institution']}",
        "round.apply",
        application_data(uza),
        AFTER_DEADLINE,
    )
    assert on_time["status"] == "accepted", on_time
    assert [a["institution"] for a in show_round(register, ROUND_2024)["applications"]] == [
        uza["institution"]
    ]
    filed = [e for e in register.events.get(round_aggregate_id(ROUND_2024)) if "sent_at" in e.__dict__]
    assert [(e.sent_at.isoformat(), e.received_at.isoformat()) for e in filed] == [
        ("2024-01-16T08:00:00+01:00", "2023-12-01T09:00:00+00:00")
    ]


def test_a_withdrawn_application_is_left_out_of_the_decision(sender: Sender) -> None:
    open_round_2024(sender)
    zna = next(a for a in applications_2024() if a["institution"] == "ZNA")
    accepted_at(sender, APPLIED, "hospital/ZNA", "round.apply", application_data(zna))
    withdrawn = accepted_at(sender, APPLIED, "hospital/ZNA", "round.withdraw", {"round_id": ROUND_2024})
    assert withdrawn["applications"] == 0
    accepted_at(sender, AFTER_DEADLINE, "vazg", "round.close", {"round_id": ROUND_2024})
    assert accepted_at(sender, DECIDED, "vazg", "round.decide", {"round_id": ROUND_2024})["decisions"] == []


def test_commands_for_a_round_never_opened_are_refused_as_round_unknown(
    sender: Sender, register: Register
) -> None:
    sender.rejected("vazg", "round.close", {"round_id": "nmr-1999"}, "round_unknown")
    sender.rejected("hospital/ZNA", "round.object", {"round_id": "nmr-1999", "text": "x"}, "round_unknown")
    with pytest.raises(DomainError) as unknown:
        show_round(register, "nmr-1999")
    assert unknown.value.code == "round_unknown"


def test_commands_in_the_wrong_order_are_refused(sender: Sender) -> None:
    open_round_2024(sender)
    # Opening the same round again, deciding or objecting before closing: conflicts.
    sender.rejected(
        "vazg",
        "round.open",
        {"round_id": ROUND_2024, "programme": "nmr", "period": "x", "capacity": 1},
        "conflict",
    )
    sender.rejected("vazg", "round.decide", {"round_id": ROUND_2024}, "conflict")
    sender.rejected("hospital/ZNA", "round.object", {"round_id": ROUND_2024, "text": "x"}, "conflict")
    sender.rejected("vazg", "round.finalise", {"round_id": ROUND_2024}, "conflict")
    # After finalising, the round is closed to everything.
    sender.accepted("vazg", "round.close", {"round_id": ROUND_2024})
    sender.rejected("vazg", "round.close", {"round_id": ROUND_2024}, "round_closed")
    sender.accepted("vazg", "round.decide", {"round_id": ROUND_2024})
    sender.accepted("vazg", "round.finalise", {"round_id": ROUND_2024})
    sender.rejected("hospital/ZNA", "round.object", {"round_id": ROUND_2024, "text": "x"}, "round_closed")
    sender.rejected("vazg", "round.finalise", {"round_id": ROUND_2024}, "round_closed")


def test_only_vazg_runs_rounds_and_only_hospitals_apply_and_object(sender: Sender) -> None:
    sender.rejected(
        "hospital/ZNA",
        "round.open",
        {"round_id": "x", "programme": "nmr", "period": "x", "capacity": 1},
        "forbidden",
    )
    sender.rejected("fod", "round.decide", {"round_id": "x"}, "forbidden")
    sender.rejected("vazg", "round.apply", {"round_id": "x"}, "forbidden")
    sender.rejected("supplier/S1", "round.object", {"round_id": "x", "text": "x"}, "forbidden")


def test_an_upheld_objection_changes_the_outcome_and_the_round_still_verifies(
    sender: Sender, register: Register
) -> None:
    decide_round_2024(sender)
    # ZOL Genk objects to its intent to refuse (not among the top share).
    lodged = sender.accepted(
        "hospital/ZOLGenk", "round.object", {"round_id": ROUND_2024, "text": "undercounted"}
    )
    assert lodged["against"] == "not_in_top_share"
    # The advisory committee upholds it: ZOL Genk, in the lowest province, now has priority.
    ruled = sender.accepted(
        "vazg",
        "round.rule-objection",
        {"round_id": ROUND_2024, "institution": "ZOLGenk", "upheld": True, "reasoning": "activity recounted"},
    )
    assert ruled["changed"] == [
        {"institution": "ZOLGenk", "before": "refused", "after": GRANTED},
        {"institution": "AZKlina", "before": GRANTED, "after": "refused"},
    ]
    assert ruled["decision"]["status"] == GRANTED
    klina = next(d for d in ruled["decisions"] if d["institution"] == "AZKlina")
    assert (klina["status"], klina["reason"]) == (INTENT_TO_REFUSE, LOWER_ACTIVITY_IN_PROVINCE)
    shown = show_round(register, ROUND_2024)
    assert shown["objections"][0]["ruling"]["upheld"] is True
    assert shown["waivers"] == {"ZOLGenk": ["not_in_top_share"]}
    (verified,) = verify_rounds(register, ROUND_2024)
    assert (verified["ok"], verified["checked"]) == (True, 2)


def test_verify_reports_a_decision_whose_recorded_ranking_was_altered_in_the_store(
    sender: Sender, register: Register, database_url: str
) -> None:
    decide_round_2024(sender)
    assert verify_rounds(register, ROUND_2024)[0]["ok"] is True

    def promote_west_flanders(decided: dict[str, Any]) -> None:
        provinces = decided["ranking"]["provinces"]
        provinces[0]["rank"], provinces[3]["rank"] = provinces[3]["rank"], provinces[0]["rank"]

    alter_decided_event(register, database_url, ROUND_2024, promote_west_flanders)
    (verified,) = verify_rounds(register)
    assert verified["ok"] is False
    assert {d["path"] for d in verified["differences"]} == {
        "ranking.provinces[0].rank",
        "ranking.provinces[3].rank",
    }
    assert verified["differences"][0]["step"] == "decide"
    assert verified["differences"][0]["recorded"] == 4
    assert verified["differences"][0]["recomputed"] == 1


def test_verify_reports_an_altered_care_region_ranking(
    sender: Sender, register: Register, database_url: str
) -> None:
    import_series(sender, series())

    def swap_first_two(decided: dict[str, Any]) -> None:
        regions = decided["ranking"]["regions"]
        regions[0], regions[1] = copy.deepcopy(regions[1]), copy.deepcopy(regions[0])

    alter_decided_event(register, database_url, "care-regions-2017Q1", swap_first_two)
    verified = {v["round_id"]: v for v in verify_rounds(register)}
    assert verified["care-regions-2017Q2"]["ok"] is True
    assert verified["care-regions-2017Q1"]["ok"] is False
    assert "ranking.regions[0].region" in {d["path"] for d in verified["care-regions-2017Q1"]["differences"]}
