"""Per-issue caps: unit behaviour, and through the exporter to the receiver."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.sentry.issue_cap import IssueCap, issue_key
from otel_sentry_biz.span_buffer import BufferedSpanProcessor


def test_admits_limit_events_per_key_per_window() -> None:
    now = [0.0]
    cap = IssueCap(2, window=60, clock=lambda: now[0])
    assert [cap.admit("a") for _ in range(3)] == [True, True, False]
    assert cap.admit("b")  # another issue has its own budget
    now[0] = 61.0
    assert cap.admit("a")  # a new window


def test_remembers_a_bounded_number_of_issues() -> None:
    cap = IssueCap(1, max_issues=2)
    assert cap.admit("a") and cap.admit("b") and cap.admit("c")
    assert cap.admit("a")  # "a" was forgotten, so it starts again


def test_issue_keys_follow_sentry_grouping_closely_enough() -> None:
    frame = {"abs_path": "/app/billing.py", "function": "price"}
    first = {
        "exception": {
            "values": [{"type": "KeyError", "value": "a", "stacktrace": {"frames": [frame]}}]
        }
    }
    second = {
        "exception": {
            "values": [{"type": "KeyError", "value": "b", "stacktrace": {"frames": [frame]}}]
        }
    }
    assert issue_key(first) == issue_key(second)  # the value does not split an issue
    assert issue_key({"fingerprint": ["biz-violation", "r", "g"]}) != issue_key(first)
    assert issue_key({"logentry": {"formatted": "x"}}) == ("message", "x")


def test_a_failing_loop_sends_at_most_the_cap_and_reports_the_rest() -> None:
    with LocalReceiver() as receiver:
        provider = TracerProvider()
        exporter = SentrySpanExporter(dsn=receiver.dsn, max_events_per_issue=3)
        provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
        tracer = provider.get_tracer("tests")
        for n in range(10):
            with pytest.raises(ConnectionError):
                with tracer.start_as_current_span(f"sync {n}", kind=SpanKind.SERVER):
                    raise ConnectionError(f"ERP down (attempt {n})")
            with tracer.start_as_current_span("check", kind=SpanKind.SERVER):
                biz.violation("work_request_limit", "HIGH", "over", group="WR-1")
        provider.shutdown()
        assert receiver.wait_for(lambda r: len(r.client_reports()) >= 1, timeout=10)
        errors = [e for e in receiver.events("event") if "exception" in e]
        issues = [e for e in receiver.events("event") if "exception" not in e]
        discarded = [d for r in receiver.client_reports() for d in r["discarded_events"]]
    assert len(errors) == 3 and len(issues) == 3
    assert {"reason": "event_processor", "category": "error", "quantity": 14} in discarded
