"""The allocation rounds' queries (`rounds`, `ranking`), answered from the round aggregates."""

from __future__ import annotations

from typing import Any

from domain.errors import DomainError
from projections.queries import Queries, QueryError, QuerySpec
from services import rounds


def _answer(run: Any) -> Any:
    try:
        return run()
    except DomainError as error:
        detail = error.details[0]
        raise QueryError(detail.code, detail.message, detail.field) from None


def rounds_query(queries: Queries, filters: dict[str, Any]) -> Any:
    round_id = filters.get("round_id")
    if round_id:
        return _answer(lambda: rounds.show_round(queries.register, str(round_id)))
    return {"items": _answer(lambda: rounds.list_rounds(queries.register))}


def ranking_query(queries: Queries, filters: dict[str, Any]) -> Any:
    period, round_id = filters.get("period"), filters.get("round_id")
    if period:
        return {"period": period, "items": _answer(lambda: rounds.ranking(queries.register, str(period)))}
    if round_id:
        shown = _answer(lambda: rounds.show_round(queries.register, str(round_id)))
        return {"round_id": round_id, "ranking": shown["ranking"], "decisions": shown["decisions"]}
    raise QueryError("schema", 'ranking needs {"round_id": "..."} or {"period": "2017Q1"}', "round_id")


ROUND_QUERIES = [
    QuerySpec(
        "rounds",
        "Allocation rounds; with round_id: inputs, ranking, decisions with reasons, objections",
        {"round_id": "one round", "institution": "ignored: rounds are public"},
        rounds_query,
    ),
    QuerySpec(
        "ranking",
        "A round's ranking and decisions (round_id), or a trimester's care-region ranking (period)",
        {
            "round_id": "the round",
            "period": "care-region trimester, e.g. 2017Q1",
            "institution": "ignored: rankings are public",
        },
        ranking_query,
    ),
]
