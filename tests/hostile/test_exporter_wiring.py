"""A bug the hostile harness tripped over while wiring its own outbox into the exporter
(``outbox or default`` replaced any empty outbox); fixed meanwhile, kept as a regression test."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_sentry_biz.config import Settings
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.sentry.outbox import MemoryOutbox
from tests.hostile.harness import DSN


def test_the_outbox_passed_in_is_the_one_used() -> None:
    # An outbox defines __len__: one that is empty when passed in (always, at start-up) is
    # falsy, and must still be the one used.
    mine = MemoryOutbox(max_items=10)
    exporter = SentrySpanExporter(settings=Settings.load({}, dsn=DSN), outbox=mine)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with provider.get_tracer("t").start_as_current_span("GET /"):
            pass
        assert len(mine) == 1, "the transaction went to another outbox"
    finally:
        exporter.shutdown(timeout_millis=100)
