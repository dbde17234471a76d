"""Functions run in child processes by the concurrency tests (importable by spawn)."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from otel_sentry_biz.rules import Aggregate, RuleSet
from otel_sentry_biz.rules.state import open_store

#: Fixed event time: every process adds to the same daily window.
EVENT_NS = 1_748_858_400 * 10**9


def add_to_total(url: str, times: int, amount: float) -> None:
    """Increment one shared record ``times`` times."""
    store = open_store(url)
    try:
        for _ in range(times):
            store.incr("shared-total", {"sum": amount, "count": 1.0}, 60.0)
    finally:
        store.close()


def bill_lines(url: str, times: int, amount: float, limit: float) -> tuple[int, int]:
    """Evaluate a daily-total rule over ``times`` spans: (violations raised, store errors)."""
    rules = RuleSet(
        [Aggregate(name="daily_total", attribute="amount", window="1d", above=limit)],
        state=url,
    )
    raised = 0
    try:
        for number in range(times):
            span = ReadableSpan(
                name="bill_line",
                context=SpanContext(trace_id=number + 1, span_id=number + 1, is_remote=False),
                attributes={"biz.amount": amount},
                start_time=EVENT_NS - 1000,
                end_time=EVENT_NS,
            )
            raised += len(rules.evaluate(span))
    finally:
        rules.close()
    return raised, rules.store_errors
