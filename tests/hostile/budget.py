"""How hard the suite looks: CI runs it in well under a minute; a local hunt scales it up.

HOSTILE_SCALE=20 pytest -q tests/hostile      # 20x the examples of every property
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("HOSTILE_SCALE", "1"))


def budget(examples: int) -> settings:
    """``settings`` for a property worth ``examples`` examples in CI.

    No deadline: one example may build, serialise and normalise events with 100 KB values, and
    a slow example is not a failure here (test_blocking.py measures time on purpose). The
    too_slow health check is suppressed for the same reason: generation is cheap, but the
    health check counts the first examples' Relay round trips against it.
    """
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
