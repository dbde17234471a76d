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


def test_attributes_of_reads_what_span_attributes_holds() -> None:
    from opentelemetry.attributes import BoundedAttributes

    from otel_sentry_biz.spans import attributes_of

    tracer = TracerProvider().get_tracer("tests")
    ended = tracer.start_span("ended", attributes={"a": 1, "b": ("x", "y"), "c": "text"})
    ended.set_attribute("d", 2.5)
    ended.end()
    assert attributes_of(ended) == dict(ended.attributes)
    # A ReadableSpan as BusinessSpanProcessor copies one (a plain dict), or with none at all.
    copied = ReadableSpan(name="copy", attributes={"x": 1})
    assert attributes_of(copied) == {"x": 1}
    assert attributes_of(ReadableSpan(name="bare")) == {}
    bounded = ReadableSpan(name="b", attributes=BoundedAttributes(attributes={"k": "v"}))
    assert attributes_of(bounded) == {"k": "v"}


def test_attributes_of_an_object_with_only_the_public_property() -> None:
    from types import MappingProxyType, SimpleNamespace

    from otel_sentry_biz.spans import attributes_of

    span = SimpleNamespace(attributes=MappingProxyType({"k": "v"}))
    assert attributes_of(span) == {"k": "v"}
    assert attributes_of(SimpleNamespace(attributes=None)) == {}
