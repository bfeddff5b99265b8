"""Hypothesis profiles: a bounded run in CI, the full campaign with KADASTER_RELIABILITY=full."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "full", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("full" if os.environ.get("KADASTER_RELIABILITY") == "full" else "ci")
