"""The real pipeline in tests: the global provider's spans through BusinessSpanProcessor,
BufferedSpanProcessor and SentrySpanExporter into a real LocalReceiver."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.rules import Rule
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from tests.relay_oracle import assert_valid, tags_of


class Delivered:
    """What a :func:`sentry_pipeline` delivered to its receiver."""

    def __init__(self, receiver: LocalReceiver, processor: _Watched) -> None:
        self.receiver = receiver
        self.processor = processor

    def ended(self, name: str, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` spans named ``name`` have ended (a server ends its span after
        answering: flushing earlier would send its children ahead of it)."""
        with self.processor.changed:
            assert self.processor.changed.wait_for(
                lambda: self.processor.ended.count(name) >= count, timeout
            ), f"{name!r} ended {self.processor.ended.count(name)} times, not {count}"

    def events(self, at_least: int) -> list[dict[str, Any]]:
        """Every event received once everything buffered is flushed (at least ``at_least``)."""
        assert self.processor.force_flush(10_000)
        assert self.receiver.wait_for(lambda r: len(r.events()) >= at_least, timeout=10)
        return self.receiver.events()

    def issues(self, at_least: int) -> list[dict[str, Any]]:
        """The error and issue events (not transactions), each checked by Relay."""
        self.events(at_least)
        found = self.receiver.events("event")
        for event in found:
            assert_valid(event)
        return found


class _Watched(SpanProcessor):
    """Passes spans on to the pipeline and notes the names of those that ended."""

    def __init__(self, pipeline: SpanProcessor) -> None:
        self._pipeline = pipeline
        self.ended: list[str] = []
        self.changed = threading.Condition()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self._pipeline.on_start(span, parent_context)

    def on_end(self, span: Any) -> None:
        self._pipeline.on_end(span)
        with self.changed:
            self.ended.append(span.name)
            self.changed.notify_all()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._pipeline.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._pipeline.shutdown()


@contextmanager
def sentry_pipeline(switch: Any, rules: Sequence[Rule] = ()) -> Iterator[Delivered]:
    """The global provider's spans go through the real pipeline to a real receiver."""
    with LocalReceiver() as receiver:
        exporter = SentrySpanExporter(dsn=receiver.dsn)
        processor = _Watched(BusinessSpanProcessor(BufferedSpanProcessor(exporter), rules=rules))
        switch.target = processor
        try:
            yield Delivered(receiver, processor)
        finally:
            switch.target = None
            processor.shutdown()


def tags_among(event: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The ``keys`` tags of ``event`` as Relay normalized it (failing if Relay complains)."""
    tags = tags_of(assert_valid(event))
    return {key: tags.get(key) for key in keys}


def violations(span: Any) -> list[dict[str, Any]]:
    return [dict(event.attributes) for event in span.events if event.name == "biz.violation"]
