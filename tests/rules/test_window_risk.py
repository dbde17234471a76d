"""The running risk score per process window: bounded, thread-safe, on every violation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from opentelemetry import trace

import otel_sentry_biz as biz
from otel_sentry_biz.rules import Threshold
from otel_sentry_biz.rules import risk as risk_module
from otel_sentry_biz.rules.risk import (
    MAX_RULES_PER_WINDOW,
    OTHER_RULES,
    WindowRisk,
    configure_window_risk,
    process_risk,
    risk_snapshot,
)
from tests.rules.conftest import MONDAY_10H


class Clock:
    def __init__(self, now: float = MONDAY_10H) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_process_risk() -> Iterator[None]:
    previous = process_risk()
    # A fixed clock: a test running across the top of the hour must not see two windows.
    risk_module._process_risk = WindowRisk(clock=Clock())
    yield
    risk_module._process_risk = previous


def test_scores_add_up_within_a_window_and_roll_into_history():
    clock = Clock(MONDAY_10H + 60)
    tracker = WindowRisk("1h", history=2, clock=clock)
    assert tracker.add(25, impact="CRITICAL", category="data_quality", rule="a") == 25
    assert tracker.add(10, impact="HIGH", category="business_logic", rule="b") == 35
    snap = tracker.snapshot()
    assert (snap.start, snap.end, snap.score, snap.violations) == (
        MONDAY_10H,
        MONDAY_10H + 3600,
        35,
        2,
    )
    assert snap.by_impact == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 0}
    assert snap.by_category["data_quality"] == 1 and snap.by_rule == {"a": 25, "b": 10}
    clock.now += 3600  # the next hour: nothing yet
    snap = tracker.snapshot()
    assert (snap.score, snap.violations, snap.start) == (0, 0, MONDAY_10H + 3600)
    assert [(w.start, w.score, w.violations) for w in snap.previous] == [(MONDAY_10H, 35, 2)]
    assert tracker.add(1, impact="LOW") == 1
    clock.now += 7200  # skip an hour; closed windows keep only the two newest
    tracker.add(5, impact="MEDIUM")
    clock.now += 3600
    tracker.add(5, impact="MEDIUM")
    snap = tracker.snapshot()
    assert snap.score == 5 and [w.score for w in snap.previous] == [5, 1]
    assert snap.as_dict()["window"] == "1h"
    assert snap.as_dict()["previous"][0]["score"] == 5


def test_memory_is_bounded_per_window():
    tracker = WindowRisk("1h", history=0, clock=Clock())
    for number in range(MAX_RULES_PER_WINDOW + 50):
        tracker.add(1, rule=f"rule-{number}")
    snap = tracker.snapshot()
    assert len(snap.by_rule) == MAX_RULES_PER_WINDOW + 1
    assert snap.by_rule[OTHER_RULES] == 50 and snap.score == MAX_RULES_PER_WINDOW + 50
    assert snap.previous == ()


def test_a_clock_stepping_back_keeps_counting_in_the_current_window():
    clock = Clock()
    tracker = WindowRisk("1h", clock=clock)
    tracker.add(5)
    clock.now -= 7200
    assert tracker.add(5) == 10


def test_concurrent_adds_are_all_counted():
    tracker = WindowRisk("1h", clock=Clock())

    def work() -> None:
        for _ in range(2000):
            tracker.add(1, impact="LOW", rule="r")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = tracker.snapshot()
    assert snap.score == 16_000 and snap.violations == 16_000 and snap.by_impact["LOW"] == 16_000


def test_bad_settings_fail_with_the_fix():
    with pytest.raises(ValueError, match="risk window: bad duration '1 hour'"):
        WindowRisk("1 hour")
    with pytest.raises(ValueError, match="history must be an integer >= 0"):
        WindowRisk("1h", history=-1)


def test_every_rule_violation_carries_the_window_risk_across_traces(judge):
    tracker = WindowRisk("1h", clock=Clock())
    rules = judge.use(
        Threshold(name="big", attribute="amount", above=100, impact="HIGH"),
        Threshold(name="huge", attribute="amount", above=1000, impact="CRITICAL"),
        window_risk=tracker,
    )
    first = judge.span(amount=500)  # one trace: HIGH
    second = judge.span(amount=5000)  # another trace: HIGH + CRITICAL
    assert [v["biz.violation.data.trace_risk"] for v in first + second] == [10, 10, 35]
    assert [v["biz.violation.data.window_risk"] for v in first + second] == [10, 20, 45]
    assert judge.span(amount=5) == []
    snap = rules.risk_snapshot()
    assert (snap.score, snap.violations) == (45, 3)
    assert snap.by_rule == {"big": 20, "huge": 25}
    assert risk_snapshot().violations == 0  # an own tracker keeps the process's clean


def test_by_default_rules_and_batches_share_the_process_window(judge):
    judge.use(Threshold(name="big", attribute="amount", above=100, impact="HIGH"))
    assert judge.span(amount=500)[0]["biz.violation.data.window_risk"] == 10
    with trace.get_tracer("tests").start_as_current_span("import"):
        result = biz.validate_batch([{"amount": None}], {"amount": "number"}, name="b")
    assert result.window_risk == 15
    snap = biz.risk_snapshot()
    assert (snap.score, snap.violations) == (15, 2)
    assert snap.by_category == {
        "data_quality": 1,
        "business_logic": 1,
        "integration": 0,
        "system_resource": 0,
        "security": 0,
        "performance": 0,
    }
    assert judge.rules is not None and judge.rules.risk_snapshot().score == 15


def test_configure_window_risk_replaces_the_process_tracker():
    tracker = configure_window_risk("15m", history=96)
    assert process_risk() is tracker and risk_snapshot().window == 900
    assert tracker.snapshot().score == 0
    assert risk_snapshot().window_label == "15m"
