"""Business-aware sampling: failed traces reach Sentry even when their trace was sampled out."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

import otel_sentry_biz as biz
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sampling import BusinessAwareSampler
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.span_buffer import BufferedSpanProcessor


def _decide(sampler: BusinessAwareSampler, trace_id: int, parent=None) -> Decision:
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None
    return sampler.should_sample(context, trace_id, "span").decision


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3, 1.0])
def test_roots_are_sampled_by_trace_id_as_the_ratio_sampler_decides(rate: float) -> None:
    sampler = BusinessAwareSampler(rate)
    ratio = TraceIdRatioBased(rate)
    # 128-bit ids too: only their low 64 bits decide, for both.
    for trace_id in [*range(1, 2**64, 2**57 + 12345), *range(2**64 + 7, 2**128, 2**121 + 99)]:
        expected = ratio.should_sample(None, trace_id, "span").decision.is_sampled()
        decision = _decide(sampler, trace_id)
        assert decision.is_sampled() == expected
        assert decision.is_recording()  # recorded either way


@pytest.mark.parametrize("sampled", [True, False])
def test_an_incoming_parent_decision_wins(sampled: bool) -> None:
    parent = SpanContext(
        trace_id=0xABC,
        span_id=0x1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
    )
    for rate in (0.0, 1.0):
        decision = _decide(BusinessAwareSampler(rate), 0xABC, parent)
        assert decision.is_sampled() is sampled
        assert decision.is_recording()


def test_sampled_out_traces_keep_their_failures_and_nothing_else() -> None:
    other = InMemorySpanExporter()
    with LocalReceiver() as receiver:
        provider = TracerProvider(sampler=BusinessAwareSampler(0.0))
        exporter = SentrySpanExporter(dsn=receiver.dsn)
        provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
        provider.add_span_processor(SimpleSpanProcessor(other))  # any other OTel exporter
        tracer = provider.get_tracer("tests")
        for n in range(3):
            with tracer.start_as_current_span(f"GET /ok/{n}", kind=SpanKind.SERVER):
                pass
        with pytest.raises(KeyError):
            with tracer.start_as_current_span("GET /broken", kind=SpanKind.SERVER):
                raise KeyError("customer")
        with tracer.start_as_current_span("POST /invoice", kind=SpanKind.SERVER):
            biz.violation("work_request_limit", "HIGH", "over the limit", group="WR-1")
        provider.shutdown()
        assert receiver.wait_for(lambda r: len(r.client_reports()) >= 1, timeout=10)
        transactions = {e["transaction"] for e in receiver.events("transaction")}
        errors = [e for e in receiver.events("event") if "exception" in e]
        reports = receiver.client_reports()
    assert transactions == {"GET /broken", "POST /invoice"}
    assert len(errors) == 1
    discarded = [d for r in reports for d in r["discarded_events"]]
    assert {"reason": "sample_rate", "category": "transaction", "quantity": 3} in discarded
    # Exporters behind the SDK's processors still see sampled spans only: none here.
    assert other.get_finished_spans() == ()
