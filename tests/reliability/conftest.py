"""Hypothesis profiles (bounded in CI, full with KADASTER_RELIABILITY=full) and the tally of inputs tried."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.reliability.fuzzing import write_tally

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "full", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("full" if os.environ.get("KADASTER_RELIABILITY") == "full" else "ci")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    write_tally()
