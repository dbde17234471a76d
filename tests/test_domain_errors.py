"""The domain capture helpers, checked by what the span holds and what Sentry receives."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.domain_errors import (
    capture_booking_error,
    capture_business_error,
    capture_integration_error,
    capture_payment_error,
    capture_performance_issue,
)
from tests.pipelines import sentry_pipeline, violations
from tests.relay_oracle import assert_valid, tags_of

CARD = "4111 1111 1111 1111"


class CardDeclined(Exception):
    pass


def _exception_event(finished: Any) -> dict[str, Any]:
    (event,) = [e for s in finished.get_finished_spans() for e in s.events if e.name == "exception"]
    return dict(event.attributes)


def _by_id(events: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    (event,) = [e for e in events if e["event_id"] == event_id]
    return event


def test_each_domain_arrives_in_sentry_with_its_judgement_and_facts(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
            payment = capture_payment_error(
                CardDeclined("insufficient funds"),
                amount=Decimal("129.00"),
                currency="EUR",
                provider="stripe",
                payment_id="pay_123",
                decline_code="insufficient_funds",
            )
            booking = capture_booking_error(
                LookupError("slot taken"), booking_id="b-7", location="downtown"
            )
            integration = capture_integration_error(
                ConnectionError("calendar unreachable"),
                service="google_calendar",
                endpoint="events.sync",
                status_code=503,
            )
            business = capture_business_error(
                ValueError("negative quantity"), rule="positive_quantity", operation="adjust"
            )
        events = sentry.issues(4)

    expected = {
        payment: ("CRITICAL", "business_logic", "fatal", "payment"),
        booking: ("HIGH", "business_logic", "error", "booking"),
        integration: ("HIGH", "integration", "error", "integration"),
        business: ("HIGH", "business_logic", "error", "business"),
    }
    assert len(events) == 4
    for event_id, (impact, category, level, domain) in expected.items():
        event = _by_id(events, event_id)  # the id each helper returned is the event's
        tags = tags_of(assert_valid(event))
        assert (tags["business_impact"], tags["error_category"]) == (impact, category)
        assert (event["level"], tags["error_domain"]) == (level, domain)
    assert tags_of(_by_id(events, payment))["currency"] == "EUR"
    assert tags_of(_by_id(events, payment))["payment_provider"] == "stripe"
    assert tags_of(_by_id(events, payment))["payment_id"] == "pay_123"
    amount = _by_id(events, payment)["contexts"]["span"]["attributes"]["biz.amount"]
    assert amount == 129.0  # a Decimal stays a number: rules and Sentry compare it
    assert tags_of(_by_id(events, booking))["booking_id"] == "b-7"
    tags = tags_of(_by_id(events, integration))
    assert (tags["integration"], tags["integration_endpoint"]) == ("google_calendar", "events.sync")
    assert tags["integration_status"] == "503"
    assert tags_of(_by_id(events, business))["business_rule"] == "positive_quantity"


def test_card_data_never_reaches_a_span_nor_sentry(use_processor, finished):
    capture_payment_error(CardDeclined("declined"), card_number=CARD, note=f"card {CARD} bounced")
    attributes = _exception_event(finished)
    assert attributes["biz.card_number"] == "[Filtered]"
    assert attributes["biz.note"] == "card [Filtered] bounced"

    with sentry_pipeline(use_processor) as sentry:
        capture_payment_error(CardDeclined("declined"), card_number=CARD, pan=4111111111111111)
        (event,) = sentry.issues(1)
    payload = json.dumps(event)
    assert "4111" not in payload
    assert tags_of(assert_valid(event))["business_impact"] == "CRITICAL"


def test_the_caller_may_override_a_domain_judgement(finished):
    capture_payment_error(TimeoutError("psp"), impact="HIGH", category="integration")
    attributes = _exception_event(finished)
    assert (attributes["biz.impact"], attributes["biz.category"]) == ("HIGH", "integration")


def test_a_business_error_message_is_one_issue_per_rule(use_processor):
    with sentry_pipeline(use_processor) as sentry:
        returned = [
            capture_business_error(
                f"Insufficient stock for order {order}",
                rule="stock_available",
                order=order,
                requested=5,
            )
            for order in ("SO-1", "SO-2")
        ]
        returned.append(
            capture_business_error("Credit limit exceeded", impact="CRITICAL", customer="ACME")
        )
        issues = sentry.issues(3)

    assert sorted(returned) == sorted(issue["event_id"] for issue in issues)  # ids to quote

    fingerprints = sorted(tuple(issue["fingerprint"]) for issue in issues)
    assert fingerprints == [
        ("biz-violation", "business_logic_error", "Credit limit exceeded"),
        ("biz-violation", "stock_available"),
        ("biz-violation", "stock_available"),
    ]
    for issue in issues:
        tags = tags_of(assert_valid(issue))
        assert tags["error_category"] == "business_logic"
        assert tags["error_domain"] == "business"
    credit = next(i for i in issues if "Credit" in i["logentry"]["formatted"])
    assert (credit["level"], tags_of(credit)["customer"]) == ("fatal", "ACME")
    stock = next(i for i in issues if "SO-2" in i["logentry"]["formatted"])
    assert (stock["level"], tags_of(stock)["order"]) == ("error", "SO-2")


def test_context_named_like_a_violation_argument_is_kept_not_raised(finished, tracer):
    with tracer.start_as_current_span("close_period"):
        capture_business_error(
            "period locked", group="finance", risk="high", message="m", propagate="x"
        )
    (span,) = finished.get_finished_spans()
    (found,) = violations(span)
    assert (found["biz.group"], found["biz.risk"], found["biz.propagate"]) == (
        "finance",
        "high",
        "x",
    )
    assert found["biz.violation.message"] == "period locked"


def test_a_performance_issue_over_its_threshold_is_a_slow_operation_issue(use_processor):
    with sentry_pipeline(use_processor) as sentry:
        with biz.context(report_type="sales_summary"):
            event_id = capture_performance_issue("generate_report", 7250.4, 5000, rows=120_000)
            assert capture_performance_issue("generate_report", 4000, 5000) is None  # within
        (issue,) = sentry.issues(1)

    assert issue["event_id"] == event_id

    assert issue["fingerprint"] == ["biz-violation", "slow_operation", "generate_report"]
    assert issue["logentry"]["formatted"] == "generate_report took 7,250 ms, over its 5000 ms limit"
    tags = tags_of(assert_valid(issue))
    assert (tags["error_category"], tags["business_impact"]) == ("performance", "MEDIUM")
    assert (tags["report_type"], tags["rows"]) == ("sales_summary", "120000")  # the context
    data = issue["contexts"]["business_violation"]["data"]
    assert (data["biz.duration_ms"], data["biz.threshold_ms"]) == (7250.4, 5000.0)
    assert not {"duration_ms", "threshold_ms"} & set(tags)  # findings are not tags


@pytest.mark.parametrize(
    ("duration", "threshold"), [("slow", 10), (20, 0), (20, -1), (float("nan"), 10), (20, None)]
)
def test_bad_performance_numbers_are_logged_never_raised(finished, caplog, duration, threshold):
    with caplog.at_level(logging.ERROR, logger="otel_sentry_biz.domain_errors"):
        assert capture_performance_issue("import", duration, threshold) is None
    assert "give milliseconds as numbers" in caplog.text
    assert finished.get_finished_spans() == ()


def test_a_hostile_context_never_raises_into_the_caller(finished, caplog):
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    event_id = capture_booking_error(LookupError("x"), booking_id=Hostile(), nested=[[Hostile()]])
    assert isinstance(event_id, str)
    assert _exception_event(finished)["biz.booking_id"] == "<unprintable Hostile>"
