"""Point-in-time answers: every query as the register gave it at a past moment, replayed from events."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from eventsourcing.application import project_aggregate

from adapters.bootstrap import all_projections
from adapters.cli.main import build_parser
from adapters.round_queries import ROUND_QUERIES
from domain.device import device_id
from projections.audit_history import AuditHistory
from projections.projector import Projector
from projections.queries import Queries, QueryError
from projections.replay import parse_as_of, replay
from projections.store import ReadModelStore
from services.register import Register
from tests.conftest import Sender
from tests.projections import scenario
from tests.projections.scenario import CT_H001, PETCT_H002, ROUND


def record_with_moments(sender: Sender) -> dict[str, datetime]:
    """Sends the scripted lifecycle one step at a time; the moment just after each step, by command id."""
    moments = {}
    for step in scenario.LIFECYCLE:
        time.sleep(0.002)
        outcome = sender.send(step.source, step.type, step.data, step.command_id)
        assert outcome["status"] == "accepted", outcome
        moments[step.command_id] = datetime.now(UTC)
        time.sleep(0.002)
    return moments


@pytest.fixture
def moments(sender: Sender) -> dict[str, datetime]:
    return record_with_moments(sender)


@pytest.fixture
def queries(moments: dict[str, datetime], register: Register, tmp_path: Path) -> Iterator[Queries]:
    store = ReadModelStore(f"sqlite:///{tmp_path / 'live.db'}")
    projector = Projector(register, store, all_projections())
    projector.catch_up()
    yield Queries(register, store, projector, extra=ROUND_QUERIES)
    store.close()


def at(moment: datetime) -> str:
    return moment.isoformat()


def device_from_events(register: Register, mid_id: str, moment: datetime) -> Any:
    """The oracle: the Device aggregate folded from its own events recorded by `moment`."""
    events = [e for e in register.events.get(device_id(mid_id)) if e.timestamp <= moment]
    return project_aggregate(None, events)


def test_a_devices_state_as_of_several_moments_matches_the_events_up_to_each(
    queries: Queries, register: Register, moments: dict[str, datetime]
) -> None:
    expected_status = {
        "s06-notice": "announced",
        "s07-report": "reported",
        "s08-link": "linked",
        "s09-licence": "linked",
        "s10-billing": "linked",
        "s11-move": "linked",
        "s12-decommission": "decommissioned",
    }
    for command_id, status in expected_status.items():
        moment = moments[command_id]
        answer = queries.run("device", {"mid_id": CT_H001, "as_of": at(moment)})
        device = device_from_events(register, CT_H001, moment)
        assert answer["as_of"] == at(moment)
        assert answer["status"] == device.status == status, command_id
        assert answer["billing_number"] == device.billing_number, command_id
        assert answer["campus"] == (device.record or {}).get("campus"), command_id
        assert answer["serial_number"] == (device.record or {}).get("serial_number"), command_id
    # Step by step the same device: no billing number before RIZIV, one after, none once decommissioned.
    billing = [
        queries.run("device", {"mid_id": CT_H001, "as_of": at(moments[c])})["billing_number"]
        for c in ("s09-licence", "s10-billing", "s11-move", "s12-decommission")
    ]
    assert billing == [None, "7001", "7001", None]


def test_before_a_device_was_reported_the_register_knew_no_such_device(
    queries: Queries, moments: dict[str, datetime]
) -> None:
    with pytest.raises(QueryError) as refused:
        queries.run("device", {"mid_id": PETCT_H002, "as_of": at(moments["s12-decommission"])})
    assert refused.value.detail.code == "device_unknown"
    # Today it is there.
    assert queries.run("device", {"mid_id": PETCT_H002})["status"] == "linked"


def test_a_hospitals_mid_ids_as_of_a_moment_show_the_status_they_had_then(
    queries: Queries, moments: dict[str, datetime]
) -> None:
    def statuses(command_id: str) -> dict[str, str]:
        answer = queries.run("midids", {"as_of": at(moments[command_id])}, institution="H001")
        return {item["mid_id"]: item["status"] for item in answer["items"]}

    assert statuses("s03-open-round") == {}
    assert statuses("s04-issue-ct") == {CT_H001: "issued"}
    assert statuses("s08-link")[CT_H001] == "linked"


def test_the_history_as_of_a_moment_ends_with_what_was_recorded_by_then(
    queries: Queries, moments: dict[str, datetime]
) -> None:
    full = queries.run("history", {"mid_id": CT_H001})["items"]
    then = queries.run("history", {"mid_id": CT_H001, "as_of": at(moments["s08-link"])})["items"]
    assert then == [row for row in full if row["recorded_at"] <= at(moments["s08-link"])]
    assert {row["command_id"] for row in then} >= {"s04-issue-ct", "s06-notice", "s07-report", "s08-link"}
    assert "s09-licence" not in {row["command_id"] for row in then}


def test_a_round_as_of_a_moment_holds_only_the_applications_made_by_then(
    queries: Queries, moments: dict[str, datetime]
) -> None:
    before = queries.run("rounds", {"round_id": ROUND, "as_of": at(moments["s20-apply-h001"])})
    now = queries.run("rounds", {"round_id": ROUND})
    assert [a["institution"] for a in before["applications"]] == ["H001"]
    assert sorted(a["institution"] for a in now["applications"]) == ["H001", "H002"]
    with pytest.raises(QueryError) as refused:
        queries.run("rounds", {"round_id": ROUND, "as_of": at(moments["s02-register-h002"])})
    assert refused.value.detail.code == "round_unknown"


def test_a_moment_inside_a_store_transaction_sees_the_round_before_or_after_all_of_it(
    queries: Queries, moments: dict[str, datetime], register: Register
) -> None:
    # Opening the round recorded the round, then listed it in the index, in one store transaction.
    assert register.recordings is not None
    opened = next(
        transaction
        for transaction in register.recordings.between(0, register.position())
        if any(
            type(register.mapper.to_domain_event(n)).__qualname__ == "AllocationRound.Opened"
            for n in register.recorder.select_notifications(
                start=transaction.first, limit=100, stop=transaction.last
            )
        )
    )
    stamps: list[datetime] = [
        cast(Any, register.mapper.to_domain_event(n)).timestamp
        for n in register.recorder.select_notifications(start=opened.first, limit=100, stop=opened.last)
    ]
    assert len(stamps) > 1 and stamps[0] < max(stamps) < datetime.fromisoformat(opened.moment)
    before = queries.run("rounds", {"as_of": at(moments["s02-register-h002"])})
    assert before["items"] == []
    # Moments after some of its events were stamped, before it was recorded: none of it.
    for inside in (stamps[0], max(stamps)):
        assert queries.run("rounds", {"as_of": at(inside)})["items"] == []
        with pytest.raises(QueryError) as refused:
            queries.run("rounds", {"round_id": ROUND, "as_of": at(inside)})
        assert refused.value.detail.code == "round_unknown"
    # The moment it was recorded: all of it.
    after = queries.run("rounds", {"as_of": opened.moment})
    assert [item["round_id"] for item in after["items"]] == [ROUND]
    assert queries.run("rounds", {"round_id": ROUND, "as_of": opened.moment})["applications"] == []


def test_an_outcome_as_of_a_moment_before_the_command_was_received_is_not_found(
    queries: Queries, moments: dict[str, datetime]
) -> None:
    filters = {"command_id": "s10-billing", "source": "riziv"}
    assert queries.run("outcome", {**filters, "as_of": at(moments["s10-billing"])})["status"] == "accepted"
    with pytest.raises(QueryError) as refused:
        queries.run("outcome", {**filters, "as_of": at(moments["s09-licence"])})
    assert refused.value.detail.code == "not_found"


def test_discrepancies_as_of_a_moment_are_judged_on_that_day(
    queries: Queries, moments: dict[str, datetime]
) -> None:
    answer = queries.run("discrepancies", {"as_of": at(moments["s07-report"]), "status": "all"})
    assert answer["today"] == moments["s07-report"].date().isoformat()
    kinds = {item["kind"] for item in answer["items"] if item["mid_id"] == CT_H001}
    # The supplier said SN-1002, the hospital SN-1001: recorded by then.
    assert "statement_mismatch" in kinds


def test_now_or_later_gives_the_live_read_models_answer(queries: Queries) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    live = queries.run("devices", {})
    answer = queries.run("devices", {"as_of": at(later), "in_force_on": live["in_force_on"]})
    assert answer.pop("as_of") == at(later)
    assert answer == live


def test_a_moment_that_is_not_a_timestamp_is_refused_as_schema(queries: Queries) -> None:
    for bad in ("yesterday", "2024-13-01", 20240101):
        with pytest.raises(QueryError) as refused:
            queries.run("devices", {"as_of": bad})
        assert refused.value.detail.code == "schema"
        assert refused.value.detail.field == "as_of"


def test_a_past_moment_is_answered_from_the_row_versions_without_any_replay(
    queries: Queries,
    moments: dict[str, datetime],
    sender: Sender,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_scratch(*args: object, **kwargs: object) -> None:
        raise AssertionError("an as-of question made a scratch database")

    moment = at(moments["s10-billing"])
    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkdtemp", no_scratch)
        patched.setattr(tempfile, "mkstemp", no_scratch)
        for name, filters in (
            ("devices", {}),
            ("device", {"mid_id": CT_H001}),
            ("midids", {}),
            ("capacity", {}),
        ):
            queries.run(name, {**filters, "as_of": moment})
    first = queries.run("devices", {"as_of": moment})
    sender.accepted("hospital/H001", "midid.issue", {"modality": "PET"})
    # Later events change nothing about what the register said then.
    assert queries.run("devices", {"as_of": moment}) == first
    # Nothing was written beside the live read models to answer it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("live")) == [
        "live.db",
        "live.db-shm",
        "live.db-wal",
    ]


# the auditors' commands


@pytest.fixture
def audit(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    monkeypatch.setenv("KADASTER_DATABASE_URL", database_url)
    monkeypatch.setenv("KADASTER_DATA_DIR", str(tmp_path / "data"))
    parser = build_parser()

    def run(*argv: str) -> int:
        args = parser.parse_args(["audit", *argv])
        result: int = args.func(args)
        return result

    return run


def test_audit_replay_rebuilds_every_read_model_as_of_a_moment_into_a_database_of_its_own(
    moments: dict[str, datetime],
    register: Register,
    audit: Callable[..., int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    until = moments["s12-decommission"]
    out = tmp_path / "replayed"
    assert audit("replay", "--until", at(until), "--out", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    replayed = ReadModelStore(f"sqlite:///{out / 'kadaster.readmodels.db'}")
    try:
        devices = Queries(register, replayed).run("devices", {})["items"]
    finally:
        replayed.close()
    assert [(d["mid_id"], d["status"]) for d in devices] == [(CT_H001, "decommissioned")]
    assert summary["events"] == sum(
        1
        for n in register.recorder.select_notifications(start=None, limit=10**6)
        if register.mapper.to_domain_event(n).timestamp <= until
    )
    assert json.loads((out / "replay.json").read_text())["events"] == summary["events"]
    # A second replay into the same folder would mix two moments: it is refused.
    assert audit("replay", "--until", at(until), "--out", str(out)) == 2
    assert "already exists" in capsys.readouterr().err


def test_audit_replay_gives_what_the_as_of_queries_give(
    moments: dict[str, datetime],
    register: Register,
    queries: Queries,
    audit: Callable[..., int],
    tmp_path: Path,
) -> None:
    until = moments["s17-report-ct"]
    out = tmp_path / "replayed"
    assert audit("replay", "--until", at(until), "--out", str(out)) == 0
    replayed = ReadModelStore(f"sqlite:///{out / 'kadaster.readmodels.db'}")
    try:
        from_replay = Queries(register, replayed).run("devices", {"sort": "mid_id"})
    finally:
        replayed.close()
    as_of = queries.run("devices", {"sort": "mid_id", "as_of": at(until)})
    assert as_of.pop("as_of") == at(until)
    assert from_replay == as_of


def test_audit_history_tells_a_mid_ids_story_from_the_stored_events(
    moments: dict[str, datetime], audit: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert audit("history", CT_H001.lower().replace("-", ""), "--json") == 0
    story = json.loads(capsys.readouterr().out)
    assert story["mid_id"] == CT_H001
    commands = [row["command_id"] for row in story["items"]]
    for command_id in ("s04-issue-ct", "s06-notice", "s07-report", "s08-link", "s12-decommission"):
        assert command_id in commands
    assert [row["position"] for row in story["items"]] == sorted(row["position"] for row in story["items"])
    assert all(row["command_id"] and row["recorded_at"] for row in story["items"])
    # Every statement names who made it (taking the number from the sequence is the register's own).
    assert all(row["source"] for row in story["items"] if row["aggregate_type"] != "MidIdSequence")

    assert audit("history", CT_H001, "--as-of", at(moments["s08-link"]), "--json") == 0
    then = [row["command_id"] for row in json.loads(capsys.readouterr().out)["items"]]
    assert then[-1] == "s08-link"

    assert audit("history", ROUND) == 0
    shown = capsys.readouterr().out
    assert "s20-apply-h001" in shown and "s21-apply-h002" in shown


def replayed_history(register: Register, filters: dict[str, str], moment: datetime | None) -> list[Any]:
    """The oracle: the history replayed from the events recorded by `moment` into a database of its own."""
    with tempfile.TemporaryDirectory() as scratch:
        store = ReadModelStore(f"sqlite:///{Path(scratch) / 'oracle.db'}", scratch=True)
        try:
            replay(register, store, [AuditHistory()], moment)
            return list(Queries(register, store).run("history", {**filters, "limit": 1000})["items"])
        finally:
            store.close()


def test_audit_history_as_of_any_moment_tells_what_a_replay_to_that_moment_tells(
    moments: dict[str, datetime],
    register: Register,
    audit: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    asked = [None, moments["s04-issue-ct"], moments["s08-link"], moments["s12-decommission"]]
    for subject, filters in ((CT_H001, {"mid_id": CT_H001}), (ROUND, {"round_id": ROUND})):
        for moment in asked:
            extra = () if moment is None else ("--as-of", at(moment))
            assert audit("history", subject, *extra, "--json") == 0
            told = json.loads(capsys.readouterr().out)
            assert told["as_of"] == (None if moment is None else at(moment))
            assert told["items"] == replayed_history(register, filters, moment), (subject, moment)
            assert told["items"]


def test_audit_history_reads_the_live_read_models_and_creates_no_database_of_its_own(
    moments: dict[str, datetime],
    register: Register,
    database_url: str,
    tmp_path: Path,
    audit: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opened: list[str] = []
    constructor = ReadModelStore.__init__

    def recorded(store: ReadModelStore, url: str, scratch: bool = False) -> None:
        opened.append(url)
        constructor(store, url, scratch)

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("audit history made a temporary database")

    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkdtemp", refused)
        patched.setattr(tempfile, "mkstemp", refused)
        patched.setattr(ReadModelStore, "__init__", recorded)
        assert audit("history", CT_H001, "--as-of", at(moments["s08-link"]), "--json") == 0
        assert audit("history", ROUND, "--json") == 0
    capsys.readouterr()
    # Only the configured read models, brought up to date with the log (beside a SQLite event store).
    live = (
        f"sqlite:///{tmp_path / 'kadaster.readmodels.db'}"
        if database_url.startswith("sqlite:///")
        else database_url
    )
    assert opened == [live, live]
    store = ReadModelStore(live)
    try:
        with store.reading() as tx:
            positions = tx.execute("SELECT name, position FROM rm_positions").all()
    finally:
        store.close()
    assert {row["name"]: int(row["position"]) for row in positions} == {
        projection.name: register.position() for projection in all_projections()
    }


def test_audit_history_refuses_a_read_model_built_by_another_version_of_the_code(
    moments: dict[str, datetime],
    database_url: str,
    tmp_path: Path,
    audit: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert audit("history", CT_H001) == 0
    live = (
        f"sqlite:///{tmp_path / 'kadaster.readmodels.db'}"
        if database_url.startswith("sqlite:///")
        else database_url
    )
    store = ReadModelStore(live)
    try:
        with store.transaction() as tx:
            tx.execute("UPDATE rm_positions SET version = 1 WHERE name = 'audit_history'")
    finally:
        store.close()
    capsys.readouterr()
    assert audit("history", CT_H001) == 2
    assert "kadaster projections rebuild audit_history" in capsys.readouterr().err


def test_audit_history_refuses_a_mistyped_mid_id_and_an_unknown_round(
    moments: dict[str, datetime], audit: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    typo = CT_H001[:-1] + str((int(CT_H001[-1]) + 1) % 10)
    assert audit("history", typo) == 2
    assert "check" in capsys.readouterr().err.lower()
    assert audit("history", "nmr-1999") == 1
    assert "round_unknown" in capsys.readouterr().err


def test_parse_as_of_reads_iso_moments_and_dates() -> None:
    assert parse_as_of("2023-10-01") == datetime(2023, 10, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_as_of("2023-10-01T02:00:00+02:00") == datetime(2023, 10, 1, tzinfo=UTC)


def test_replaying_everything_gives_the_live_read_models(
    moments: dict[str, datetime], register: Register, queries: Queries, tmp_path: Path
) -> None:
    store = ReadModelStore(f"sqlite:///{tmp_path / 'all.db'}")
    try:
        done = replay(register, store, all_projections())
        assert done.position == register.position()
        assert scenario.dump(store, all_projections()) == scenario.dump(queries.store, all_projections())
    finally:
        store.close()
