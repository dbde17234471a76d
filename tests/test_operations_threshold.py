"""operation(threshold_ms=...): a slow operation is a performance violation on its own span."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.operations import operation
from tests.pipelines import sentry_pipeline, tags_among, violations


def _span(finished: Any, name: str) -> Any:
    (span,) = [s for s in finished.get_finished_spans() if s.name == name]
    return span


def test_a_slow_operation_records_a_performance_violation_on_its_own_span(finished):
    @biz.operation("render_report", threshold_ms=5, report="sales")
    def render_report() -> str:
        time.sleep(0.03)
        return "pdf"

    assert render_report() == "pdf"
    span = _span(finished, "render_report")
    (found,) = violations(span)
    assert found["biz.violation.rule"] == "slow_operation"
    assert found["biz.violation.category"] == "performance"
    assert found["biz.violation.impact"] == "MEDIUM"
    assert found["biz.violation.group"] == "render_report"
    assert found["biz.violation.data.threshold_ms"] == 5.0
    assert 30 <= found["biz.violation.data.duration_ms"] < 30_000
    assert found["biz.report"] == "sales"  # the operation's business context comes along
    assert found["biz.violation.message"].startswith("render_report took ")
    assert span.status.status_code is StatusCode.UNSET


def test_an_operation_within_its_threshold_records_nothing(finished):
    with biz.operation("quick", threshold_ms=10_000):
        pass
    assert violations(_span(finished, "quick")) == []


def test_without_a_threshold_a_slow_operation_is_not_judged(finished):
    with biz.operation("unbounded"):
        time.sleep(0.01)
    assert violations(_span(finished, "unbounded")) == []


def test_an_async_operation_is_timed_across_its_awaits(finished):
    @biz.operation("sync_calendar", threshold_ms=5)
    async def sync_calendar() -> None:
        await asyncio.sleep(0.03)

    asyncio.run(sync_calendar())
    (found,) = violations(_span(finished, "sync_calendar"))
    assert found["biz.violation.data.duration_ms"] >= 30


def test_a_failed_slow_operation_reports_the_error_and_the_slowness(finished):
    with pytest.raises(TimeoutError), biz.operation("charge", threshold_ms=1, impact="CRITICAL"):
        time.sleep(0.01)
        raise TimeoutError("gateway")
    span = _span(finished, "charge")
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception", "biz.violation"]
    # Slowness keeps its own severity: the operation's impact is about its failure.
    assert violations(span)[0]["biz.violation.impact"] == "MEDIUM"


def test_expected_exceptions_pass_through_unreported(finished):
    class OutOfStock(Exception):
        pass

    with pytest.raises(OutOfStock), biz.operation("reserve", expected=(OutOfStock,)):
        raise OutOfStock("sku-1")
    span = _span(finished, "reserve")
    assert span.events == ()
    assert span.status.status_code is StatusCode.UNSET
    with pytest.raises(KeyError), biz.operation("reserve", expected=(OutOfStock,)):
        raise KeyError("other")
    assert [s.status.status_code for s in finished.get_finished_spans()][-1] is StatusCode.ERROR


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), True, "2000", [1]])
def test_a_bad_threshold_fails_at_decoration_time_naming_the_fix(bad):
    with pytest.raises(ConfigError, match=r"threshold_ms=.*milliseconds, a number greater than 0"):
        operation("render_report", threshold_ms=bad)


@pytest.mark.parametrize("bad", [KeyError("x"), "KeyError", (KeyError, "x"), [KeyError], int])
def test_bad_expected_types_fail_at_decoration_time(bad):
    with pytest.raises(ConfigError, match=r"expected=.*tuple of exception classes"):
        operation("reserve", expected=bad)


def test_one_expected_class_needs_no_tuple(finished):
    with pytest.raises(KeyError), biz.operation("lookup", expected=KeyError):
        raise KeyError("absent")
    assert _span(finished, "lookup").events == ()


def test_slow_operations_arrive_in_sentry_as_one_issue_per_operation(use_processor):
    with sentry_pipeline(use_processor) as sentry:
        for name in ("export_invoices", "export_invoices", "import_rates"):
            with biz.context(customer="ACME"), biz.operation(name, threshold_ms=1):
                time.sleep(0.005)
        issues = sentry.issues(6)

    assert sorted(tuple(issue["fingerprint"]) for issue in issues) == [
        ("biz-violation", "slow_operation", "export_invoices"),
        ("biz-violation", "slow_operation", "export_invoices"),
        ("biz-violation", "slow_operation", "import_rates"),
    ]
    expected = {
        "business_impact": "MEDIUM",
        "error_category": "performance",
        "violation_rule": "slow_operation",
        "customer": "ACME",
    }
    for issue in issues:
        assert tags_among(issue, expected) == expected
        assert issue["level"] == "warning"
        assert issue["contexts"]["business_violation"]["data"]["biz.threshold_ms"] == 1.0
