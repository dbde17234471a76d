"""Security events, the security monitor, and the shipped ``security`` rule set end to end.

The rules run in a real BusinessSpanProcessor over the spans security_event() records, loaded
by name the way OTEL_SENTRY_BIZ_RULES loads them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.monitors import api_endpoint
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.rules import RuleSet
from otel_sentry_biz.rules.loader import rules_from_setting, validate_rules_setting
from otel_sentry_biz.security import security_event, security_monitor
from tests.pipelines import sentry_pipeline, tags_among, violations
from tests.relay_oracle import assert_valid, tags_of


class InvalidToken(PermissionError):
    """An auth error that subclasses PermissionError: it must count as an auth failure."""


def _security_spans(finished: InMemorySpanExporter) -> list[Any]:
    return [s for s in finished.get_finished_spans() if s.name.startswith("security.")]


# -- security_event -----------------------------------------------------------------------


def test_a_security_event_is_a_short_span_with_a_breadcrumb_event(finished, tracer):
    with tracer.start_as_current_span("POST /login") as request:
        security_event("auth_failure", user="alice", ip="10.0.0.7", reason="bad password")
    (span,) = _security_spans(finished)
    assert span.name == "security.auth_failure"
    assert span.parent.span_id == request.get_span_context().span_id
    assert span.attributes["sentry.op"] == "security"
    assert span.attributes["biz.security.event"] == "auth_failure"
    assert span.attributes["biz.category"] == "security"
    assert span.attributes["biz.security.user"] == "alice"
    assert span.attributes["biz.security.client_ip"] == "10.0.0.7"
    (event,) = span.events
    assert event.name == "security.auth_failure"
    assert event.attributes["biz.security.user"] == "alice"


def test_the_user_defaults_to_the_business_context(finished):
    with biz.context(user_id="u-42"):
        security_event("permission_denied", action="export")
    (span,) = _security_spans(finished)
    assert span.attributes["biz.security.user"] == "u-42"
    assert span.attributes["biz.action"] == "export"


def test_an_unknown_kind_is_logged_and_recorded_as_suspicious(finished, caplog):
    with caplog.at_level(logging.ERROR, logger="otel_sentry_biz.security"):
        security_event("brute_force", user="bob")
    assert "use one of auth_failure, permission_denied, suspicious_activity" in caplog.text
    (span,) = _security_spans(finished)
    assert span.name == "security.suspicious_activity"
    assert span.attributes["biz.reported_kind"] == "brute_force"


def test_secrets_in_event_data_never_reach_the_span(finished):
    security_event("auth_failure", user="carol", password="hunter2", token="abc123def456")
    (span,) = _security_spans(finished)
    assert span.attributes["biz.password"] == "[Filtered]"
    assert span.attributes["biz.token"] == "[Filtered]"


# -- security_monitor ---------------------------------------------------------------------


def test_the_monitor_reports_a_permission_error_and_re_raises_it(finished):
    denied = PermissionError("not an admin")

    @security_monitor(area="admin")
    def export_customers() -> None:
        raise denied

    with biz.context(user_id="u-7"), pytest.raises(PermissionError) as raised:
        export_customers()
    assert raised.value is denied
    (span,) = _security_spans(finished)
    assert span.name == "security.permission_denied"
    assert span.attributes["biz.security.user"] == "u-7"
    assert span.attributes["biz.area"] == "admin"
    assert span.attributes["biz.action"].endswith("export_customers")
    assert span.attributes["biz.error_type"] == "builtins.PermissionError"


def test_an_auth_error_type_is_an_auth_failure_even_as_a_permission_error(finished):
    @security_monitor(auth_errors=(InvalidToken,))
    async def read_profile() -> None:
        await asyncio.sleep(0)
        raise InvalidToken("expired")

    with pytest.raises(InvalidToken):
        asyncio.run(read_profile())
    (span,) = _security_spans(finished)
    assert span.name == "security.auth_failure"


def test_the_monitor_ignores_other_exceptions_and_success(finished):
    @security_monitor()
    def handler(fail: bool) -> str:
        if fail:
            raise ValueError("not security")
        return "ok"

    assert handler(False) == "ok"
    with pytest.raises(ValueError):
        handler(True)
    assert _security_spans(finished) == []


def test_the_monitor_is_a_context_manager_too(finished):
    with pytest.raises(PermissionError), security_monitor(user="dave"):
        raise PermissionError("read-only project")
    (span,) = _security_spans(finished)
    assert span.attributes["biz.security.user"] == "dave"


@pytest.mark.parametrize("bad", [{"auth_errors": "InvalidToken"}, {"permission_errors": [1]}])
def test_bad_monitor_arguments_fail_where_declared(bad):
    with pytest.raises(ConfigError, match="tuple of exception classes"):
        security_monitor(**bad)


# -- the shipped security rule set --------------------------------------------------------


def _clear_of_window_edge(window_seconds: float) -> None:
    """Windows are tumbling: keep one burst of events inside one window."""
    remaining = window_seconds - time.time() % window_seconds
    if remaining < 2.0:
        time.sleep(remaining + 0.05)


@pytest.fixture
def judged(use_processor: Any) -> Iterator[InMemorySpanExporter]:
    """Spans judged by the shipped security rules (loaded by name), collected in memory."""
    rules = rules_from_setting("security", state="memory://")
    assert isinstance(rules, RuleSet)
    exporter = InMemorySpanExporter()
    use_processor.target = BusinessSpanProcessor(next=SimpleSpanProcessor(exporter), rules=[rules])
    yield exporter
    rules.close()


def _violation_counts(exporter: InMemorySpanExporter) -> list[int]:
    return [len(violations(span)) for span in _security_spans(exporter)]


def test_six_auth_failures_of_one_user_in_five_minutes_raise_one_high_violation(judged):
    _clear_of_window_edge(300)
    for _ in range(7):
        security_event("auth_failure", user="alice")
    security_event("auth_failure", user="bob")  # another user: another count
    assert _violation_counts(judged) == [0, 0, 0, 0, 0, 1, 0, 0]
    (found,) = violations(_security_spans(judged)[5])
    assert found["biz.violation.rule"] == "auth_failures_per_user"
    assert found["biz.violation.impact"] == "HIGH"
    assert found["biz.violation.category"] == "security"
    assert found["biz.violation.group"] == "alice"
    assert found["biz.violation.message"] == (
        "6 failed authentications for user alice within 5m (limit 5)"
    )


def test_permission_denials_are_counted_per_client_address(judged):
    _clear_of_window_edge(60)
    for _ in range(21):
        security_event("permission_denied", user="u-1", ip="10.0.0.7")
    for _ in range(20):
        security_event("permission_denied", ip="10.0.0.8")
    counts = _violation_counts(judged)
    assert counts[:21] == [0] * 20 + [1]
    assert counts[21:] == [0] * 20
    (found,) = violations(_security_spans(judged)[20])
    assert found["biz.violation.rule"] == "permission_denials_per_client"


def test_password_guessing_across_users_from_one_address_is_caught(judged):
    # Each user fails only once, so the per-user rule stays quiet; the address does not.
    _clear_of_window_edge(300)
    for number in range(21):
        security_event("auth_failure", user=f"user-{number}", ip="203.0.113.7")
    counts = _violation_counts(judged)
    assert counts == [0] * 20 + [1]
    (found,) = violations(_security_spans(judged)[20])
    assert found["biz.violation.rule"] == "auth_failures_per_client"
    assert found["biz.violation.message"] == (
        "21 failed authentications from one client within 5m (limit 20)"
    )


def test_events_without_the_grouping_key_are_not_counted(judged):
    _clear_of_window_edge(300)
    for _ in range(10):
        security_event("auth_failure")  # no user given, none in the context
        security_event("permission_denied")  # no address
    assert set(_violation_counts(judged)) == {0}


def test_suspicious_activity_is_a_violation_at_once(judged):
    _clear_of_window_edge(60)
    security_event("suspicious_activity", reason="SQL in a search box")
    (found,) = violations(_security_spans(judged)[0])
    assert found["biz.violation.rule"] == "suspicious_activity"
    assert found["biz.violation.impact"] == "HIGH"


def test_security_combines_with_billing_in_one_setting():
    assert validate_rules_setting("billing,security") == "billing,security"
    combined = rules_from_setting("billing,security", state="memory://")
    assert combined is not None
    try:
        names = {spec.name for spec in combined.specs}
        assert {"auth_failures_per_user", "work_request_limit"} <= names
    finally:
        combined.close()


def test_an_auth_failure_burst_becomes_a_sentry_issue_without_the_address(use_processor, tracer):
    rules = rules_from_setting("billing,security", state="memory://")
    assert rules is not None
    _clear_of_window_edge(300)
    with sentry_pipeline(use_processor, rules=[rules]) as sentry:
        for attempt in range(6):
            with tracer.start_as_current_span("POST /login", kind=SpanKind.SERVER):
                security_event("auth_failure", user="alice", ip="10.0.0.7", attempt=attempt)
        events = sentry.events(7)
    rules.close()

    assert len(events) == 7  # six requests, one issue
    (issue,) = [e for e in events if e.get("type") != "transaction"]
    assert issue["fingerprint"] == ["biz-violation", "auth_failures_per_user", "alice"]
    assert issue["level"] == "error"
    expected = {
        "business_impact": "HIGH",
        "error_category": "security",
        "violation_rule": "auth_failures_per_user",
        "security.event": "auth_failure",
        "security.user": "alice",
    }
    assert tags_among(issue, expected) == expected
    # The client address is personal data: scrubbed from every event (send_default_pii off).
    for event in events:
        assert "10.0.0.7" not in json.dumps(event)
        assert_valid(event)


def test_a_denied_request_error_carries_the_security_breadcrumb(use_processor):
    @api_endpoint("delete_project")
    @security_monitor()
    def delete_project() -> None:
        raise PermissionError("not the owner")

    with sentry_pipeline(use_processor) as sentry:
        with biz.context(user_id="u-9"), pytest.raises(PermissionError):
            delete_project()
        (error,) = sentry.issues(1)

    (crumb,) = error["breadcrumbs"]["values"]
    assert crumb["message"] == "security.permission_denied"
    assert crumb["data"]["biz.security.user"] == "u-9"
    assert tags_of(assert_valid(error))["endpoint"] == "delete_project"
