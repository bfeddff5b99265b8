"""What the fuzzers share: the contract's error codes, and a tally of the inputs they tried."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

CONTRACT_CODES = frozenset(
    {
        "malformed",
        "schema",
        "unknown_type",
        "source_mismatch",
        "forbidden",
        "modality_not_in_scope",
        "midid_checksum",
        "midid_unknown",
        "midid_not_yours",
        "midid_already_linked",
        "midid_cancelled",
        "device_unknown",
        "device_decommissioned",
        "requirements_not_met",
        "legacy_number_expired",
        "not_in_fanc_scope",
        "round_closed",
        "round_unknown",
        "conflict",
    }
)

TALLY_FILE = "KADASTER_RELIABILITY_TALLY"
"""Where the campaign wants the tally written when the test session ends."""

_tally: Counter[str] = Counter()


def tally(what: str, n: int = 1) -> None:
    """Counts inputs actually tried, so the campaign's figures are what ran, not what was asked for."""
    _tally[what] += n


def write_tally() -> None:
    path = os.environ.get(TALLY_FILE)
    if path:
        Path(path).write_text(json.dumps(dict(_tally), sort_keys=True) + "\n")
