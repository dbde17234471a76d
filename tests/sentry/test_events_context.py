"""What an error or violation event takes from its trace: its own span's context (not its
siblings'), the rule's findings as data (not tags), ``handled``, the event id promised to the
caller. Every event through the real pipeline into a LocalReceiver, checked by Relay."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz.rules import Violation
from tests.pipelines import sentry_pipeline
from tests.relay_oracle import assert_valid, tags_of


class InvoiceError(Exception):
    pass


def test_an_error_is_tagged_by_its_own_spans_not_by_a_sibling(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        with tracer.start_as_current_span("POST /invoices", kind=SpanKind.SERVER):
            with biz.context(customer="ACME"):
                with tracer.start_as_current_span("invoice"):
                    with biz.context(item="bolt", foreman="joe"):
                        with tracer.start_as_current_span("line 1"):
                            pass
                    with biz.context(invoice="INV-7"):
                        try:
                            with tracer.start_as_current_span("total"):
                                raise InvoiceError("total does not add up")
                        except InvoiceError:
                            pass
        (error,) = sentry.issues(1)

    tags = tags_of(assert_valid(error))
    assert (tags["invoice"], tags["customer"]) == ("INV-7", "ACME")  # its span, its ancestors
    assert "item" not in tags and "foreman" not in tags  # the line beside it is not its context


def test_the_transaction_is_still_tagged_with_what_its_spans_carry(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        with tracer.start_as_current_span("POST /invoices", kind=SpanKind.SERVER):
            with biz.context(item="bolt"):
                with tracer.start_as_current_span("line 1"):
                    pass
        (transaction,) = [e for e in sentry.events(1) if e["type"] == "transaction"]
    assert tags_of(assert_valid(transaction))["item"] == "bolt"


class _FailureBudget:
    """A rule whose findings are named like business keys (``operation``, ``key``)."""

    name = "failure_budget"

    def evaluate(self, span: Any) -> list[Violation]:
        if span.name != "close month":
            return []
        data = {
            "operation": "budget_window",  # a finding value, named like the span's business key
            "key": "k-1",
            "breach": "failures",
            "limit": 3,
            "value": 5,
            "alert_tier": "within_1h",
        }
        return [Violation("failure_budget", "HIGH", "5 failures > 3", data=data)]


def test_a_violations_findings_are_data_and_never_replace_the_spans_tags(use_processor, tracer):
    with sentry_pipeline(use_processor, rules=[_FailureBudget()]) as sentry:
        with biz.context(operation="close_month", customer="ACME"):
            with tracer.start_as_current_span("close month"):
                pass
        (issue,) = sentry.issues(1)

    tags = tags_of(assert_valid(issue))
    assert (tags["operation"], tags["customer"]) == ("close_month", "ACME")
    assert (tags["violation_rule"], tags["business_impact"]) == ("failure_budget", "HIGH")
    assert tags["alert_tier"] == "within_1h"  # the one finding that routes alerts
    assert not {"key", "breach", "limit", "value"} & set(tags)
    data = issue["contexts"]["business_violation"]["data"]
    assert (data["biz.operation"], data["biz.key"], data["biz.limit"]) == (
        "budget_window",
        "k-1",
        3,
    )


def test_violation_returns_the_event_id_sentry_gets(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        with tracer.start_as_current_span("import"):
            with biz.context(batch="B-1", amount=12.5):
                event_id = biz.violation("import_total", "LOW", "total off", delta=0.5)
        (issue,) = sentry.issues(1)

    assert issue["event_id"] == event_id
    assert tags_of(assert_valid(issue))["batch"] == "B-1"
    violation = issue["contexts"]["business_violation"]
    assert violation["data"]["biz.delta"] == 0.5
    assert violation["business"]["biz.amount"] == 12.5  # no tag (an amount), still shown


def _request_failing_like_fastapi(tracer: Any, escaped: Any) -> None:
    """FastAPI's own tracing fails its SERVER span without a status description; the HTTP
    instrumentor records the exception that escaped the app on it, flagged as escaping."""
    with tracer.start_as_current_span(
        "GET /bookings/{id}/receipt",
        kind=SpanKind.SERVER,
        record_exception=False,
        set_status_on_exception=False,
    ) as server:
        try:
            with tracer.start_as_current_span("render receipt"):
                raise AttributeError("'NoneType' object has no attribute 'total'")
        except AttributeError as exc:
            server.record_exception(exc, escaped=escaped)
            server.set_status(Status(StatusCode.ERROR))


@pytest.mark.parametrize("escaped", [True, "True"])
def test_an_exception_recorded_as_escaping_the_failed_request_is_unhandled(
    use_processor, tracer, escaped
):
    with sentry_pipeline(use_processor) as sentry:
        _request_failing_like_fastapi(tracer, escaped)
        (error,) = sentry.issues(1)
    value = assert_valid(error)["exception"]["values"][-1]
    assert value["mechanism"]["handled"] is False


def test_an_exception_recorded_as_not_escaping_stays_handled(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        _request_failing_like_fastapi(tracer, False)
        (error,) = sentry.issues(1)
    assert assert_valid(error)["exception"]["values"][-1]["mechanism"]["handled"] is True


def test_an_exception_escaping_only_an_inner_span_of_a_request_that_did_not_fail_is_handled(
    use_processor, tracer
):
    with sentry_pipeline(use_processor) as sentry:
        with tracer.start_as_current_span("POST /sync", kind=SpanKind.SERVER):
            try:
                with tracer.start_span("call partner") as inner:  # records escaped=True
                    raise TimeoutError("partner")
            except TimeoutError:
                pass
        (error,) = sentry.issues(1)
    assert inner.events[0].attributes["exception.escaped"] == "True"
    assert assert_valid(error)["exception"]["values"][-1]["mechanism"]["handled"] is True
