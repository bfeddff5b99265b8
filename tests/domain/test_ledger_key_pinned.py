"""The ledger's signing keys pinned: a rotation is recorded with what it says, and a rotation that
says no reason or names a key already signing the ledger is refused with the contract's code and field.

Codes and fields are literals copied from the integration contract, never the code's constants.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import DomainError
from domain.ledger_key import LedgerKeys

BY = "operator/ops-1"


def started() -> LedgerKeys:
    keys = LedgerKeys()
    keys.collect_events()
    return keys


def rotated_to(key_id: str, previous_key_id: str | None = None) -> LedgerKeys:
    keys = started()
    keys.rotate(previous_key_id, key_id, "scheduled rotation", BY)
    keys.collect_events()
    return keys


def refusal(keys: LedgerKeys, *args: Any) -> tuple[str, str, str | None]:
    with pytest.raises(DomainError) as refused:
        keys.rotate(*args)
    assert keys.collect_events() == []
    (detail,) = refused.value.details
    return detail.code, detail.message, detail.field


def test_a_new_record_of_ledger_keys_knows_no_key_and_no_rotation() -> None:
    keys = LedgerKeys()
    assert [type(event).__qualname__ for event in keys.collect_events()] == ["LedgerKeys.Started"]
    assert (keys.current_key_id, keys.rotations) == (None, [])


def test_a_rotation_records_the_previous_key_the_new_key_the_trimmed_reason_and_who_did_it() -> None:
    keys = started()
    keys.rotate("key-old", "key-new", "  key file replaced  ", BY)
    (event,) = keys.collect_events()
    assert type(event).__qualname__ == "LedgerKeys.Rotated"
    assert (event.previous_key_id, event.key_id, event.reason, event.by) == (  # type: ignore[attr-defined]
        "key-old",
        "key-new",
        "key file replaced",
        BY,
    )
    assert keys.current_key_id == "key-new"
    assert keys.rotations == [
        {"previous_key_id": "key-old", "key_id": "key-new", "reason": "key file replaced", "by": BY}
    ]


def test_each_rotation_is_kept_in_order_and_the_last_one_names_the_signing_key() -> None:
    keys = rotated_to("key-1")
    keys.rotate("key-1", "key-2", "yearly rotation", BY)
    keys.collect_events()
    assert keys.current_key_id == "key-2"
    assert [(r["previous_key_id"], r["key_id"]) for r in keys.rotations] == [
        (None, "key-1"),
        ("key-1", "key-2"),
    ]


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_rotation_without_a_reason_is_refused_and_records_nothing(reason: str) -> None:
    assert refusal(started(), None, "key-1", reason, BY) == (
        "schema",
        "a key rotation says why it was done",
        "reason",
    )


def test_rotating_to_the_key_that_already_signs_the_ledger_is_a_conflict() -> None:
    keys = rotated_to("key-1")
    assert refusal(keys, "key-0", "key-1", "again", BY) == (
        "conflict",
        "key key-1 already signs the ledger",
        "key_id",
    )
    assert keys.current_key_id == "key-1"


def test_rotating_to_the_key_named_as_the_previous_one_is_a_conflict() -> None:
    keys = rotated_to("key-1")
    assert refusal(keys, "key-2", "key-2", "same key", BY) == (
        "conflict",
        "key key-2 already signs the ledger",
        "key_id",
    )
    assert keys.current_key_id == "key-1"
