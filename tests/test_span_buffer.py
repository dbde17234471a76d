from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_sentry_biz import BufferedSpanProcessor
from otel_sentry_biz.pacer import Pacer


class Collecting(SpanExporter):
    def __init__(self, delay: float = 0.0) -> None:
        self.names: list[str] = []
        self.threads: set[str] = set()
        self.delay = delay
        self.flushed = 0
        self.shut = 0

    def export(self, spans):
        time.sleep(self.delay)
        self.threads.add(threading.current_thread().name)
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis=30000):
        self.flushed += 1
        return True

    def shutdown(self):
        self.shut += 1


def _tracer(processor):
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider.get_tracer("t")


def test_burst_far_beyond_batch_queue_size_is_delivered_whole():
    exporter = Collecting()
    processor = BufferedSpanProcessor(exporter, batch_size=64)
    tracer = _tracer(processor)
    for index in range(5000):  # BatchSpanProcessor would drop past 2,048
        tracer.start_span(f"s{index}").end()
    assert processor.force_flush(10_000)
    assert len(exporter.names) == 5000
    assert processor.dropped_spans == 0
    processor.shutdown()


def test_over_budget_spans_are_dropped_and_counted_never_blocking():
    exporter = Collecting(delay=0.5)
    processor = BufferedSpanProcessor(
        exporter, max_buffered_spans=100, batch_size=1000, schedule_delay_millis=10_000
    )
    tracer = _tracer(processor)
    started = time.perf_counter()
    for index in range(300):
        tracer.start_span(f"s{index}").end()
    assert time.perf_counter() - started < 0.5  # the app never waited for the exporter
    assert processor.dropped_spans == 200
    processor.shutdown()
    assert len(exporter.names) == 100


def test_worker_exports_in_background_without_flush():
    exporter = Collecting()
    processor = BufferedSpanProcessor(exporter, batch_size=10, schedule_delay_millis=50)
    tracer = _tracer(processor)
    for index in range(25):
        tracer.start_span(f"s{index}").end()
    deadline = time.monotonic() + 5
    while len(exporter.names) < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(exporter.names) == 25
    assert exporter.threads == {"otel_sentry_biz.span_buffer"}
    processor.shutdown()


def test_shutdown_exports_the_rest_and_is_idempotent():
    exporter = Collecting()
    processor = BufferedSpanProcessor(exporter, schedule_delay_millis=60_000)
    tracer = _tracer(processor)
    tracer.start_span("last").end()
    processor.shutdown()
    processor.shutdown()
    assert exporter.names == ["last"]
    assert exporter.shut == 1
    assert processor.force_flush() is False


def test_invalid_arguments_name_the_problem():
    with pytest.raises(ValueError, match="must be positive"):
        BufferedSpanProcessor(Collecting(), max_buffered_spans=0)
    with pytest.raises(ValueError, match="duty_cycle"):
        Pacer(duty_cycle=0)


class LongRests(Pacer):
    """A pacer that rests five seconds after every piece of work that is not urgent."""

    def rest(self, cpu_seconds, *, urgent=False, until=None):
        if urgent:
            return
        if until is None:
            time.sleep(5.0)
        else:
            until.wait(5.0)


def test_a_buffer_reaching_its_urgent_mark_ends_the_workers_rest():
    # After its first batch the worker rests 5 s, in which this app (a span every ~2 ms)
    # would fill the whole budget; reaching three quarters of it (300 spans) must end the
    # rest, with 100 spans (~200 ms) to spare before anything is dropped.
    exporter = Collecting()
    processor = BufferedSpanProcessor(
        exporter, max_buffered_spans=400, batch_size=50, pacer=LongRests()
    )
    tracer = _tracer(processor)
    for index in range(600):
        tracer.start_span(f"s{index}").end()
        time.sleep(0.002)
    assert processor.dropped_spans == 0
    assert processor.force_flush(10_000)
    assert len(exporter.names) == 600
    processor.shutdown()
