"""A batch under its quality floor arrives in Sentry as a valid, searchable issue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.rules import risk
from otel_sentry_biz.rules.measurement import measurements
from otel_sentry_biz.rules.risk import WindowRisk, process_risk
from otel_sentry_biz.sentry.events import EventFactory
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.sentry.segments import Segment
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from tests.relay_oracle import assert_valid, tags_of

LINES = biz.Schema(
    {"work_request": {"type": "str", "pattern": r"WR-\d+"}, "amount": {"type": "number", "min": 0}},
    name="billing_lines",
)
ROWS = [{"work_request": f"WR-{n}", "amount": 10.0 + n} for n in range(6)] + [
    {"work_request": "7", "amount": -1},
    {"amount": "lots"},
]


@pytest.fixture(autouse=True)
def fresh_process_risk() -> Iterator[None]:
    previous = process_risk()
    risk._process_risk = WindowRisk(clock=lambda: 1_748_858_400.0)
    yield
    risk._process_risk = previous


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


def test_a_batch_under_the_floor_becomes_a_valid_sentry_issue(receiver: LocalReceiver) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
    exporter = SentrySpanExporter(dsn=receiver.dsn)
    provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
    tracer = provider.get_tracer("tests")
    with biz.context(customer="ACME"):
        with tracer.start_as_current_span("POST /imports", kind=SpanKind.SERVER):
            with tracer.start_as_current_span("validate lines"):
                result = biz.validate_batch(ROWS, LINES)
    provider.shutdown()
    assert result.score < 80
    assert receiver.wait_for(lambda r: len(r.events()) >= 2, timeout=10)

    (issue,) = receiver.events("event")
    normalized = assert_valid(issue)
    assert issue["fingerprint"] == ["biz-violation", "data_quality", "billing_lines"]
    assert issue["level"] == "warning"  # MEDIUM
    tags = tags_of(normalized)
    assert tags["business_impact"] == "MEDIUM"
    assert tags["error_category"] == "data_quality"
    assert tags["violation_rule"] == "data_quality"
    assert tags["batch"] == "billing_lines"
    assert tags["alert_tier"] == "daily_digest"
    assert tags["customer"] == "ACME"
    violation = issue["contexts"]["business_violation"]
    assert violation["group"] == "billing_lines"
    assert violation["data"]["biz.score"] == result.score
    assert violation["data"]["biz.window_risk"] == 5.0
    assert "under the floor of 80" in issue["logentry"]["formatted"]
    (transaction,) = receiver.events("transaction")
    assert_valid(transaction)


def test_the_score_becomes_a_transaction_measurement_sentry_accepts() -> None:
    """The wiring events.py needs: ``event["measurements"] = measurements(segment spans)``."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(BusinessSpanProcessor(SimpleSpanProcessor(memory)))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("POST /imports", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("validate lines"):
            result = biz.validate_batch(ROWS, LINES)
    provider.shutdown()
    child, root = memory.get_finished_spans()
    segment = Segment(root, [child])
    (transaction,) = EventFactory().transactions(segment)
    transaction["measurements"] = measurements([segment.root, *segment.spans])
    normalized = assert_valid(transaction)
    assert normalized["measurements"] == {
        "data_quality_score": {"value": result.score, "unit": "none"}
    }
