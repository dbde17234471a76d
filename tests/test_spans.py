"""events_of: the same events as span.events, without the copy when there are none."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from otel_sentry_biz.spans import events_of


def test_events_of_matches_span_events_on_live_and_readable_spans() -> None:
    tracer = TracerProvider().get_tracer("tests")
    quiet = tracer.start_span("quiet")
    quiet.end()
    busy = tracer.start_span("busy")
    busy.add_event("one", {"n": 1})
    busy.add_event("two")
    busy.end()
    assert events_of(quiet) == () == tuple(quiet.events)
    assert [e.name for e in events_of(busy)] == ["one", "two"]
    readable = ReadableSpan(name="copy", events=busy.events)
    assert [e.name for e in events_of(readable)] == ["one", "two"]
    assert events_of(ReadableSpan(name="empty")) == ()
