"""Spans from a real SDK pipeline -> Sentry events, each checked by Relay's normalizer."""

from __future__ import annotations

import pytest
from opentelemetry.context import attach, detach
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.sentry.events import EventDefaults, EventFactory
from otel_sentry_biz.sentry.segments import SegmentAssembler
from tests.relay_oracle import assert_valid, tags_of

RESOURCE = Resource.create(
    {
        "service.name": "billing",
        "service.version": "1.4.2",
        "deployment.environment.name": "staging",
    }
)


@pytest.fixture
def pipeline(use_processor):
    """A tracer whose spans carry RESOURCE, judged by BusinessSpanProcessor, kept in memory."""
    exporter = InMemorySpanExporter()
    processor = biz.BusinessSpanProcessor(next=SimpleSpanProcessor(exporter))
    use_processor.target = processor  # so biz.operation/capture spans land here too
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(processor)
    return provider.get_tracer("tests"), exporter


def _events(exporter, defaults=None):
    factory = EventFactory(defaults or EventDefaults())
    assembler = SegmentAssembler()
    segments = assembler.add(exporter.get_finished_spans()) + assembler.drain()
    out = {"transaction": [], "error": [], "violation": []}
    for segment in segments:
        out["transaction"] += factory.transactions(segment)
        out["error"] += factory.errors(segment)
        out["violation"] += factory.violations(segment)
    return out


def _request(tracer, fail=False):
    with tracer.start_as_current_span(
        "GET /orders/{id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/orders/{id}",
            "url.path": "/orders/7",
            "http.response.status_code": 500 if fail else 200,
        },
    ):
        with biz.context(customer="ACME", work_request="WR-7"):
            with tracer.start_as_current_span(
                "SELECT orders",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": "postgresql",
                    "db.query.text": "SELECT * FROM orders WHERE id = $1",
                },
            ):
                pass
            with tracer.start_as_current_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.method": "GET",
                    "http.url": "http://127.0.0.1:9/erp?token=x",
                    "http.status_code": 404,
                },
            ):
                pass


def test_request_becomes_one_valid_transaction_with_children(pipeline):
    tracer, exporter = pipeline
    _request(tracer)
    (event,) = _events(exporter)["transaction"]
    normalized = assert_valid(event)
    assert normalized["transaction"] == "GET /orders/{id}"
    assert normalized["transaction_info"]["source"] == "route"
    assert normalized["contexts"]["trace"]["op"] == "http.server"
    assert normalized["contexts"]["trace"]["status"] == "ok"
    ops = sorted(span["op"] for span in normalized["spans"])
    assert ops[0].startswith("db") and "http.client" in ops
    client = next(s for s in normalized["spans"] if s["op"] == "http.client")
    assert client["status"] == "not_found"
    assert "token" not in client["description"]
    assert normalized["release"] == "billing@1.4.2"
    assert normalized["environment"] == "staging"


def test_business_attributes_become_tags_and_the_rest_data(pipeline):
    tracer, exporter = pipeline
    _request(tracer)
    (event,) = _events(exporter)["transaction"]
    db = next(s for s in event["spans"] if s["op"].startswith("db"))
    assert db["tags"]["customer"] == "ACME"
    assert db["tags"]["work_request"] == "WR-7"
    assert db["data"]["db.system.name"] == "postgresql"


def test_explicit_environment_and_release_win_over_resource(pipeline):
    tracer, exporter = pipeline
    _request(tracer)
    (event,) = _events(exporter, EventDefaults(environment="prod", release="r9"))["transaction"]
    assert (event["environment"], event["release"]) == ("prod", "r9")


def test_remote_parent_keeps_parent_span_id_and_trace_id(pipeline):
    tracer, exporter = pipeline
    incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    token = attach(extract(incoming))
    try:
        _request(tracer)
    finally:
        detach(token)
    (event,) = _events(exporter)["transaction"]
    trace_context = assert_valid(event)["contexts"]["trace"]
    assert trace_context["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert trace_context["parent_span_id"] == "b7ad6b7169203331"


def test_transaction_over_span_limit_is_split_not_truncated(pipeline):
    tracer, exporter = pipeline
    with tracer.start_as_current_span("batch"):
        for index in range(25):
            with tracer.start_as_current_span(f"row {index}"):
                pass
    events = _events(exporter, EventDefaults(max_spans=10))["transaction"]
    assert len(events) == 3
    span_ids = [span["span_id"] for event in events for span in event["spans"]]
    assert len(span_ids) == len(set(span_ids)) == 25
    assert len({event["event_id"] for event in events}) == 3
    assert {event["tags"]["transaction_part"] for event in events} == {"1/3", "2/3", "3/3"}
    for event in events:
        assert_valid(event)
        assert event["contexts"]["trace"]["trace_id"] == events[0]["contexts"]["trace"]["trace_id"]


def _fail_nested(tracer):
    def charge():
        raise ConnectionError("payment gateway unreachable")

    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("charge_card") as inner:
            charge()
    return inner


def test_exception_in_nested_spans_reported_once_linked_to_innermost_span(pipeline):
    tracer, exporter = pipeline
    with pytest.raises(ConnectionError):
        _fail_nested(tracer)
    inner = next(s for s in exporter.get_finished_spans() if s.name == "charge_card")
    (error,) = _events(exporter)["error"]
    normalized = assert_valid(error)
    assert normalized["contexts"]["trace"]["span_id"] == f"{inner.context.span_id:016x}"
    value = normalized["exception"]["values"][-1]
    assert value["type"] == "ConnectionError"
    assert value["mechanism"]["handled"] is False
    frames = value["stacktrace"]["frames"]
    assert frames[-1]["function"] == "charge"
    assert any(f["function"] == "_fail_nested" for f in frames)  # the longest stack is kept
    assert tags_of(normalized)["business_impact"] == "CRITICAL"  # "payment": billing impact
    assert tags_of(normalized)["error_category"] == "integration"
    assert normalized["level"] == "fatal"
    assert normalized["transaction"] == "POST /checkout"


def test_exception_caught_inside_the_request_is_handled(pipeline):
    tracer, exporter = pipeline
    with tracer.start_as_current_span("job"):
        try:
            with tracer.start_as_current_span("step"):
                raise KeyError("missing")
        except KeyError:
            pass
    (error,) = _events(exporter)["error"]
    assert assert_valid(error)["exception"]["values"][-1]["mechanism"]["handled"] is True


def test_capture_error_keeps_its_event_id_and_impact(pipeline):
    tracer, exporter = pipeline
    with tracer.start_as_current_span("invoice"):
        event_id = biz.capture_error(ValueError("bad total"), impact="CRITICAL", order="O-1")
    (error,) = _events(exporter)["error"]
    normalized = assert_valid(error)
    assert normalized["event_id"] == event_id
    assert normalized["level"] == "fatal"
    assert tags_of(normalized)["order"] == "O-1"
    assert normalized["exception"]["values"][-1]["mechanism"]["handled"] is True


def test_violation_becomes_an_issue_with_stable_fingerprint(pipeline):
    tracer, exporter = pipeline
    for _ in range(2):
        with tracer.start_as_current_span("process_work_request"):
            with biz.context(work_request="WR-9"):
                biz.violation(
                    "work_request_limit",
                    "HIGH",
                    "WR-9 total $18,200 > $15,000",
                    group="WR-9",
                    amount=18200.0,
                )
    first, second = _events(exporter)["violation"]
    normalized = assert_valid(first)
    assert normalized["fingerprint"] == ["biz-violation", "work_request_limit", "WR-9"]
    assert first["fingerprint"] == second["fingerprint"]
    assert first["event_id"] != second["event_id"]
    assert normalized["level"] == "error"
    assert normalized["logentry"]["formatted"] == "WR-9 total $18,200 > $15,000"
    tags = tags_of(normalized)
    assert tags["business_impact"] == "HIGH"
    assert tags["violation_rule"] == "work_request_limit"
    assert tags["work_request"] == "WR-9"
    assert normalized["contexts"]["business_violation"]["data"]["biz.amount"] == 18200.0
