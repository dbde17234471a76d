"""Shared fixtures: one global TracerProvider whose processors each test chooses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Optional

import pytest
from hypothesis import settings as hypothesis_settings
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_sentry_biz import BusinessSpanProcessor

# CI runs the same examples every time (a red run must be reproducible, not a lottery);
# HYPOTHESIS_PROFILE=explore searches new ones, many more, when hunting bugs locally.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("explore", max_examples=1000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class SwitchableProcessor(SpanProcessor):
    """The global provider can be set once per process; tests swap what sits behind it."""

    def __init__(self) -> None:
        self.target: Optional[SpanProcessor] = None

    def on_start(self, span: Span, parent_context: object = None) -> None:
        if self.target is not None:
            self.target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.target.force_flush(timeout_millis) if self.target else True


_switch = SwitchableProcessor()
_provider = TracerProvider()
_provider.add_span_processor(_switch)
trace.set_tracer_provider(_provider)


@pytest.fixture
def use_processor() -> Iterator[SwitchableProcessor]:
    """Route the global provider's spans to ``use_processor.target`` for one test."""
    yield _switch
    _switch.target = None


@pytest.fixture
def finished(use_processor: SwitchableProcessor) -> InMemorySpanExporter:
    """Spans judged by a default BusinessSpanProcessor, collected in memory."""
    exporter = InMemorySpanExporter()
    use_processor.target = BusinessSpanProcessor(next=SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def tracer() -> trace.Tracer:
    return trace.get_tracer("tests")
