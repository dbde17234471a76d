"""Alert tiers and risk: how urgent a violation is and how much it adds to a trace's risk.

The billing seed escalates by impact: CRITICAL alerts immediately, HIGH within the hour, the
rest in a daily digest. The tier travels as violation data (``alert_tier``), so a Sentry alert
rule can route on the tag instead of re-deriving urgency from the impact.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Optional

from otel_sentry_biz.impact import Impact

DEFAULT_ALERT_TIERS: Mapping[Impact, str] = {
    Impact.CRITICAL: "immediate",
    Impact.HIGH: "within_1h",
    Impact.MEDIUM: "daily_digest",
    Impact.LOW: "daily_digest",
}

#: Risk a violation adds when its rule does not say; the billing seed's daily-limit rule adds 25.
DEFAULT_RISK: Mapping[Impact, float] = {
    Impact.CRITICAL: 25.0,
    Impact.HIGH: 10.0,
    Impact.MEDIUM: 5.0,
    Impact.LOW: 1.0,
}


def alert_tiers(overrides: Optional[Mapping[str, str]] = None) -> dict[Impact, str]:
    """The default tiers with ``overrides`` (``{"HIGH": "immediate"}``) applied.

    Raises ``ValueError`` listing every bad entry and the fix.
    """
    tiers = dict(DEFAULT_ALERT_TIERS)
    problems = []
    for impact, tier in (overrides or {}).items():
        try:
            parsed = Impact.parse(impact)
        except ValueError as exc:
            problems.append(f"alert_tiers: {exc}")
            continue
        if not isinstance(tier, str) or not tier.strip():
            problems.append(f'alert_tiers.{impact}: name a tier, e.g. "immediate"')
            continue
        tiers[parsed] = tier.strip()
    if problems:
        raise ValueError("; ".join(problems))
    return tiers


class TraceRisk:
    """Running risk score per trace, for the most recent ``capacity`` traces.

    Bounded memory: the least recently touched trace is forgotten first. Thread-safe.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._scores: OrderedDict[int, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, trace_id: int, delta: float) -> float:
        """Add ``delta`` to the trace's score and return the new score."""
        with self._lock:
            score = self._scores.pop(trace_id, 0.0) + delta
            self._scores[trace_id] = score
            if len(self._scores) > self._capacity:
                self._scores.popitem(last=False)
            return score

    def score(self, trace_id: int) -> float:
        """The trace's current score (0 for an unknown or forgotten trace)."""
        with self._lock:
            return self._scores.get(trace_id, 0.0)
