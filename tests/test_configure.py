"""configure(): rule sets by name and other processors beside Sentry, end to end."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_sentry_biz as biz
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.security import security_event
from tests.pipelines import violations


def test_configure_takes_rule_set_names_as_a_string(use_processor: Any):
    from opentelemetry.sdk.trace import TracerProvider

    from otel_sentry_biz.receiver import LocalReceiver

    provider = TracerProvider()
    with LocalReceiver() as receiver:
        # A string is the OTEL_SENTRY_BIZ_RULES setting, not a sequence of one-letter rules.
        pipeline = biz.configure(
            tracer_provider=provider,
            rules="security",
            dsn=receiver.dsn,
            rules_state="memory://",
            environ={"OTEL_SENTRY_BIZ_RULES": "billing"},
        )
        use_processor.target = pipeline.processor  # the tests' global provider feeds it
        try:
            with provider.get_tracer("t").start_as_current_span("request"):
                security_event("suspicious_activity", reason="probe")
        finally:
            pipeline.shutdown()
        issues = [e for e in receiver.events() if e.get("type") != "transaction"]
    rules = [e["contexts"]["business_violation"]["rule"] for e in issues]
    assert rules == ["suspicious_activity"]
    with pytest.raises(ConfigError, match="no_such_set"):
        biz.configure(tracer_provider=TracerProvider(), rules="no_such_set", environ={})


def test_configure_feeds_other_processors_the_same_judged_spans(use_processor: Any):
    from opentelemetry.sdk.trace import TracerProvider

    from otel_sentry_biz.receiver import LocalReceiver

    beside = InMemorySpanExporter()  # stands for an OTLP BatchSpanProcessor
    with LocalReceiver() as receiver:
        pipeline = biz.configure(
            tracer_provider=TracerProvider(),
            rules="security",
            processors=[SimpleSpanProcessor(beside)],
            dsn=receiver.dsn,
            rules_state="memory://",
            environ={},
        )
        use_processor.target = pipeline.processor
        try:
            with biz.context(tenant="acme"):
                security_event("suspicious_activity", reason="probe")
        finally:
            pipeline.shutdown()
        assert [e["contexts"]["business_violation"]["rule"] for e in receiver.events("event")] == [
            "suspicious_activity"
        ]
    (span,) = beside.get_finished_spans()
    assert span.attributes["biz.tenant"] == "acme"
    assert [v["biz.violation.rule"] for v in violations(span)] == ["suspicious_activity"]


def test_configure_tells_the_app_of_each_violation_its_rules_find(use_processor: Any):
    from opentelemetry.sdk.trace import TracerProvider

    from otel_sentry_biz.receiver import LocalReceiver
    from otel_sentry_biz.rules import FailureBudget, RuleSet

    paused: list[str] = []

    def pause_monitor(violation: biz.Violation) -> None:
        if violation.rule == "monitor_failures":
            paused.append(str(violation.group))

    budget = FailureBudget(name="monitor_failures", group_by="monitor_id", failures=2)
    with LocalReceiver() as receiver:
        pipeline = biz.configure(
            tracer_provider=TracerProvider(),
            rules=[RuleSet([budget])],
            on_violation=pause_monitor,
            dsn=receiver.dsn,
            environ={},
        )
        use_processor.target = pipeline.processor
        try:
            for monitor_id in ("mon-a", "mon-b", "mon-a"):
                with pytest.raises(TimeoutError), biz.operation("check", monitor_id=monitor_id):
                    raise TimeoutError("feed did not answer")
        finally:
            pipeline.shutdown()
        issues = [e for e in receiver.events("event") if "business_violation" in e["contexts"]]
    assert paused == ["mon-a"]
    # The app is told, and Sentry still gets the issue.
    assert [
        (e["contexts"]["business_violation"]["rule"], e["tags"]["monitor_id"]) for e in issues
    ] == [("monitor_failures", "mon-a")]
