"""The running risk score of this process, per time window.

Every violation adds its risk (by impact: CRITICAL 25, HIGH 10, MEDIUM 5, LOW 1, or the
rule's own ``risk``) to the window it happens in. Windows are tumbling and aligned to the Unix
epoch, like the rules' windows: with the default ``"1h"`` the score is what this process has
seen since the top of the hour, and the last 24 hours are kept for trending.

>>> from otel_sentry_biz.rules import risk_snapshot
>>> snap = risk_snapshot()
>>> snap.score, snap.violations, snap.by_impact["CRITICAL"], snap.previous[:3]

The score of the violation's window travels with it as ``window_risk`` (violation data), so
the Sentry issue shows how risky the hour was when it fired. The billing seed alerts when the
risk score passes 50.

Memory is bounded: the current window keeps counts per impact and category and the risk of at
most 100 distinct rules (the rest are summed under ``"<other>"``); a closed window keeps its
start, score and count, for the ``history`` most recent windows. Thread-safe; one lock
acquisition per violation, nothing per span.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Optional, Union

from otel_sentry_biz.impact import Category, Impact
from otel_sentry_biz.rules.spec import Duration, duration_label, parse_duration
from otel_sentry_biz.rules.window import bucket

DEFAULT_RISK_WINDOW = "1h"
DEFAULT_RISK_HISTORY = 24
#: Distinct rule names tracked per window; the risk of any others is summed under OTHER_RULES.
MAX_RULES_PER_WINDOW = 100
OTHER_RULES = "<other>"


@dataclass(frozen=True)
class WindowSummary:
    """A closed window: when it ran, the risk it accumulated, how many violations."""

    start: float
    end: float
    score: float
    violations: int


@dataclass(frozen=True)
class RiskSnapshot:
    """The process's risk in the current window, and the windows before it (newest first)."""

    window: float
    start: float
    end: float
    score: float
    violations: int
    by_impact: Mapping[str, int]
    by_category: Mapping[str, int]
    by_rule: Mapping[str, float]
    previous: tuple[WindowSummary, ...] = ()

    @property
    def window_label(self) -> str:
        return duration_label(self.window)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy, e.g. for a health endpoint."""
        return {
            "window": self.window_label,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "violations": self.violations,
            "by_impact": dict(self.by_impact),
            "by_category": dict(self.by_category),
            "by_rule": dict(self.by_rule),
            "previous": [
                {"start": w.start, "end": w.end, "score": w.score, "violations": w.violations}
                for w in self.previous
            ],
        }


@dataclass
class _Current:
    index: int
    score: float = 0.0
    violations: int = 0
    by_impact: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, float] = field(default_factory=dict)


class WindowRisk:
    """Running risk score per fixed window, for one process.

    ``window`` is a duration (``"1h"``, ``"15m"``, seconds); ``history`` how many closed
    windows to keep. ``clock`` gives seconds since the epoch (``time.time``): the window of a
    violation is when it was found, since this is this process's own view of "now".
    """

    def __init__(
        self,
        window: Duration = DEFAULT_RISK_WINDOW,
        history: int = DEFAULT_RISK_HISTORY,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self.window = parse_duration(window)
        except ValueError as exc:
            raise ValueError(f"risk window: {exc}") from None
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ValueError(f"risk history must be an integer >= 0, not {history!r}")
        self.history = history
        self._clock = clock
        self._lock = threading.Lock()
        self._current = _Current(bucket(clock(), self.window))
        self._closed: deque[WindowSummary] = deque(maxlen=history)

    def add(
        self,
        risk: float,
        *,
        impact: Union[Impact, str, None] = None,
        category: Union[Category, str, None] = None,
        rule: Optional[str] = None,
    ) -> float:
        """Count one violation adding ``risk``; return the score of its window afterwards."""
        now = self._clock()
        impact_name = _name(impact)
        category_name = _name(category)
        with self._lock:
            current = self._roll(bucket(now, self.window))
            current.score += float(risk)
            current.violations += 1
            if impact_name:
                current.by_impact[impact_name] = current.by_impact.get(impact_name, 0) + 1
            if category_name:
                current.by_category[category_name] = current.by_category.get(category_name, 0) + 1
            if rule is not None:
                key = str(rule)
                if key not in current.by_rule and len(current.by_rule) >= MAX_RULES_PER_WINDOW:
                    key = OTHER_RULES
                current.by_rule[key] = current.by_rule.get(key, 0.0) + float(risk)
            return current.score

    def snapshot(self) -> RiskSnapshot:
        """The current window's score and breakdown, and the closed windows, newest first."""
        index = bucket(self._clock(), self.window)
        with self._lock:
            current = self._current
            closed = list(self._closed)
            if index > current.index:
                # Nothing added since the window turned: report an empty current window and
                # the last one among the closed ones, without changing the state.
                if current.violations:
                    closed.append(self._summary(current))
                current = _Current(index)
            by_impact = {impact.value: current.by_impact.get(impact.value, 0) for impact in Impact}
            by_category = {c.value: current.by_category.get(c.value, 0) for c in Category}
            snapshot = RiskSnapshot(
                window=self.window,
                start=current.index * self.window,
                end=(current.index + 1) * self.window,
                score=current.score,
                violations=current.violations,
                by_impact=MappingProxyType(by_impact),
                by_category=MappingProxyType(by_category),
                by_rule=MappingProxyType(dict(current.by_rule)),
                previous=tuple(reversed(closed[len(closed) - self.history :])),
            )
        return snapshot

    def score(self) -> float:
        """The current window's score (0 when nothing was added since it began)."""
        return self.snapshot().score

    def clear(self) -> None:
        """Forget everything (for tests, or after a deliberate reset)."""
        with self._lock:
            self._current = _Current(bucket(self._clock(), self.window))
            self._closed.clear()

    def _roll(self, index: int) -> _Current:
        current = self._current
        # A clock stepping back keeps counting in the current window.
        if index > current.index:
            if current.violations:
                self._closed.append(self._summary(current))
            current = self._current = _Current(index)
        return current

    def _summary(self, current: _Current) -> WindowSummary:
        start = current.index * self.window
        return WindowSummary(start, start + self.window, current.score, current.violations)


def _name(value: Union[Impact, Category, str, None]) -> Optional[str]:
    if value is None:
        return None
    return value.value if isinstance(value, (Impact, Category)) else str(value)


_process_risk = WindowRisk()
_process_lock = threading.Lock()


def process_risk() -> WindowRisk:
    """The tracker every RuleSet and ``validate_batch`` add to unless given their own."""
    return _process_risk


def configure_window_risk(
    window: Duration = DEFAULT_RISK_WINDOW, history: int = DEFAULT_RISK_HISTORY
) -> WindowRisk:
    """Replace the process tracker with one of ``window`` and ``history`` (starts empty).

    >>> configure_window_risk("15m", history=96)   # a day of quarter hours
    """
    global _process_risk
    tracker = WindowRisk(window, history)
    with _process_lock:
        _process_risk = tracker
    return tracker


def risk_snapshot() -> RiskSnapshot:
    """The process's risk score in the current window (default: this hour) and before it."""
    return _process_risk.snapshot()
