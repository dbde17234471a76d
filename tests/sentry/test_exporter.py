"""SentrySpanExporter end to end: real spans in, a real Sentry-protocol receiver out.

Every event that arrives is also run through Relay's normalizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Tracer

import otel_sentry_biz as biz
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from tests.relay_oracle import assert_valid, tags_of


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


def _pipeline(receiver: LocalReceiver, **settings: Any) -> tuple[TracerProvider, Tracer]:
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "billing",
                "service.version": "1.4.2",
                "deployment.environment.name": "staging",
            }
        )
    )
    exporter = SentrySpanExporter(dsn=receiver.dsn, **settings)
    provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
    return provider, provider.get_tracer("tests")


def _delivered(receiver: LocalReceiver, provider: TracerProvider, count: int) -> list[dict]:
    assert provider.force_flush(10_000)
    assert receiver.wait_for(lambda r: len(r.events()) >= count, timeout=10)
    return receiver.events()


def test_transaction_error_and_violation_arrive_valid_and_linked(receiver: LocalReceiver) -> None:
    provider, tracer = _pipeline(receiver)
    with biz.context(customer_id="C-17", work_request="WR-7"):
        with tracer.start_as_current_span("POST /invoices", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "POST")
            root.set_attribute("http.route", "/invoices")
            with tracer.start_as_current_span("INSERT invoices", kind=SpanKind.CLIENT) as db:
                db.set_attribute("db.system.name", "postgresql")
                db.set_attribute("db.query.text", "INSERT INTO invoices VALUES ($1)")
            with pytest.raises(ValueError):
                with tracer.start_as_current_span("price invoice") as pricing:
                    raise ValueError("unit price 0.00 for line 3")
            with tracer.start_as_current_span("check limits"):
                biz.violation("work_request_limit", "HIGH", "WR-7 over $15,000", group="WR-7")
    provider.shutdown()
    assert receiver.wait_for(lambda r: len(r.events()) >= 3, timeout=10)

    transactions = receiver.events("transaction")
    errors = [e for e in receiver.events("event") if "exception" in e]
    issues = [e for e in receiver.events("event") if "exception" not in e]
    assert len(transactions) == 1 and len(errors) == 1 and len(issues) == 1
    for event in receiver.events():
        assert_valid(event)

    transaction = transactions[0]
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert transaction["transaction"] == "POST /invoices"
    assert transaction["contexts"]["trace"]["trace_id"] == trace_id
    assert transaction["release"] == "billing@1.4.2"
    assert transaction["environment"] == "staging"
    assert sorted(span["op"] for span in transaction["spans"]) == ["db", "function", "function"]
    assert transaction["tags"]["customer_id"] == "C-17"

    error = errors[0]
    assert error["exception"]["values"][-1]["type"].endswith("ValueError")
    # Linked to the trace and to the span that recorded the exception.
    assert error["contexts"]["trace"]["trace_id"] == trace_id
    assert error["contexts"]["trace"]["span_id"] == f"{pricing.get_span_context().span_id:016x}"
    normalized = assert_valid(error)
    assert {"business_impact", "error_category", "customer_id"} <= set(tags_of(normalized))

    issue = issues[0]
    assert issue["fingerprint"] == ["biz-violation", "work_request_limit", "WR-7"]
    assert tags_of(assert_valid(issue))["business_impact"] == "HIGH"


def test_a_child_that_ends_after_its_root_still_arrives_in_the_same_trace(
    receiver: LocalReceiver,
) -> None:
    provider, tracer = _pipeline(receiver)
    root = tracer.start_span("GET /report", kind=SpanKind.SERVER)
    with trace.use_span(root, end_on_exit=False):
        straggler = tracer.start_span("render pdf")
    root.end()
    provider.force_flush(10_000)
    straggler.end()
    events = _delivered(receiver, provider, 2)
    by_name = {event["transaction"]: event for event in events}
    late = by_name["render pdf"]
    root_id = f"{root.get_span_context().span_id:016x}"
    assert late["contexts"]["trace"]["parent_span_id"] == root_id
    assert (
        late["contexts"]["trace"]["trace_id"]
        == by_name["GET /report"]["contexts"]["trace"]["trace_id"]
    )
    for event in events:
        assert_valid(event)


def test_a_transaction_over_the_span_limit_is_split_not_truncated(
    receiver: LocalReceiver,
) -> None:
    provider, tracer = _pipeline(receiver, max_spans_per_transaction=5)
    with tracer.start_as_current_span("nightly import", kind=SpanKind.SERVER):
        for n in range(12):
            with tracer.start_as_current_span(f"row {n}"):
                pass
    events = _delivered(receiver, provider, 3)
    assert len(events) == 3
    names = sorted(span["description"] for event in events for span in event["spans"])
    assert names == sorted(f"row {n}" for n in range(12))
    assert sorted(event["tags"]["transaction_part"] for event in events) == ["1/3", "2/3", "3/3"]
    for event in events:
        assert_valid(event)


def test_hostile_attribute_values_still_arrive_as_valid_events(receiver: LocalReceiver) -> None:
    provider, tracer = _pipeline(receiver)
    with tracer.start_as_current_span("odd", kind=SpanKind.SERVER) as span:
        span.set_attribute("biz.note", "x" * 5000)
        span.set_attribute("biz.customer\nid", "C-1")
        span.set_attribute("big", 2**70)
        span.set_attribute("ratio", float("nan"))
        span.set_attribute("blob", b"\xff\xfe")
        span.set_attribute("ids", [1, 2, 3])
    (event,) = _delivered(receiver, provider, 1)
    assert_valid(event)


def test_a_missing_dsn_is_a_start_up_error_naming_the_fix(monkeypatch: Any) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    with pytest.raises(ConfigError, match="SENTRY_DSN"):
        SentrySpanExporter()


def test_secrets_never_reach_sentry(receiver: LocalReceiver) -> None:
    secrets = [
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZw",
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "sk_live_51HbC0d3LzVxQz9yq2W4aB7c",
        "hunter2-secret",
    ]
    provider, tracer = _pipeline(receiver)
    with pytest.raises(RuntimeError):
        with tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.header.authorization", secrets[0])
            span.set_attribute("biz.customer_email", secrets[1])
            span.set_attribute("url.full", f"http://127.0.0.1/pay?api_key={secrets[3]}&n=1")
            span.set_attribute("biz.password", secrets[4])
            raise RuntimeError(f"card {secrets[2]} declined for {secrets[1]}")
    events = _delivered(receiver, provider, 2)
    assert {e.get("type", "error") for e in events} == {"transaction", "error"}
    text = repr(events)
    for secret in secrets:
        assert secret not in text
        assert secret.replace(" ", "") not in text
    assert "[Filtered]" in text
    for event in events:
        assert_valid(event)


def test_capture_message_becomes_a_message_event_linked_to_its_span(
    receiver: LocalReceiver,
) -> None:
    provider, tracer = _pipeline(receiver)
    with biz.context(batch="B-12"):
        with tracer.start_as_current_span("nightly import", kind=SpanKind.SERVER) as span:
            event_id = biz.capture_message("import finished, 3 rows skipped", "warning", rows=3)
            assert biz.capture_message("odd level", "loud") is not None  # sent as info
    events = _delivered(receiver, provider, 3)
    messages = {e["logentry"]["formatted"]: e for e in events if "logentry" in e}
    message = messages["import finished, 3 rows skipped"]
    assert message["event_id"] == event_id
    assert message["level"] == "warning"
    assert message["tags"]["batch"] == "B-12" and message["tags"]["rows"] == "3"
    assert message["contexts"]["trace"]["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert messages["odd level"]["level"] == "info"
    for event in events:
        assert_valid(event)


def test_log_records_and_span_events_become_breadcrumbs_of_the_error(
    receiver: LocalReceiver,
) -> None:
    import logging

    from otel_sentry_biz.log_breadcrumbs import install_breadcrumbs, uninstall_breadcrumbs

    install_breadcrumbs()
    logger = logging.getLogger("shop.checkout")
    logger.setLevel(logging.INFO)
    try:
        provider, tracer = _pipeline(receiver, max_breadcrumbs=3)
        logger.info("outside any span: not a breadcrumb")
        with pytest.raises(ValueError):
            with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as span:
                for step in range(3):
                    logger.info("step %d done", step)
                span.add_event("cart.loaded", {"items": 3})
                logger.warning("payment slow")
                raise ValueError("card expired")
        events = _delivered(receiver, provider, 2)
    finally:
        uninstall_breadcrumbs()  # the handler hooks Logger.callHandlers, not the root logger
    (error,) = [e for e in events if "exception" in e]
    crumbs = error["breadcrumbs"]["values"]
    # The latest three (SENTRY_MAX_BREADCRUMBS), oldest first.
    assert [c["message"] for c in crumbs] == ["step 2 done", "cart.loaded", "payment slow"]
    assert crumbs[0]["category"] == "shop.checkout" and crumbs[0]["level"] == "info"
    assert crumbs[1]["data"] == {"items": 3}
    assert crumbs[2]["level"] == "warning"
    assert_valid(error)
