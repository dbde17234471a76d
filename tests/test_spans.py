"""Cheap reads of finished spans (events_of, attributes_of) and their compact copies."""

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


def _read(span: ReadableSpan) -> dict:
    """Everything a ReadableSpan shows an exporter."""
    return {
        "json": span.to_json(),
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "scope": span.instrumentation_scope,
        "resource": span.resource,
        "attributes": dict(span.attributes or {}),
        "events": [(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events],
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
    }


def test_compact_copies_read_exactly_as_the_sdk_spans_they_copy() -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, SpanProcessor
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    from otel_sentry_biz.spans import attributes_of, compact

    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop"}),
        span_limits=SpanLimits(max_span_attributes=3, max_events=2, max_links=1),
    )
    tracer = provider.get_tracer("tests", "1.2")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        plain = tracer.start_span("plain", attributes={"db.system.name": "postgresql"})
        plain.end()
        full = tracer.start_span(
            "full",
            kind=SpanKind.CLIENT,
            links=[Link(root.get_span_context(), {"why": "retry"})] * 2,  # one dropped
        )
        for n in range(5):  # two dropped
            full.set_attribute(f"a{n}", n)
        for n in range(3):  # one dropped
            full.add_event(f"e{n}", {"n": n})
        full.set_status(Status(StatusCode.ERROR, "boom"))
        full.end()
    ended: list[ReadableSpan] = []  # what span processors' on_end are given

    class Seen(SpanProcessor):
        def on_end(self, span):
            ended.append(span)

    provider.add_span_processor(Seen())
    again = tracer.start_span("again", attributes={"x": 1})
    again.add_event("once")
    again.end()
    for span in (plain, full, root, *ended):
        copy = compact(span)
        assert copy is span or type(copy) is ReadableSpan
        assert _read(copy) == _read(span)
        assert attributes_of(copy) == attributes_of(span)
        assert events_of(copy) == events_of(span) or list(events_of(copy)) == list(span.events)
    assert _read(compact(full))["dropped"] == (2, 1, 1)
    # What on_end is given is slimmed: its attributes are the plain dict they hold.
    assert ended and all(type(compact(span)._attributes) is dict for span in ended)
    already = ReadableSpan(name="a copy already")
    assert compact(already) is already


def test_the_buffer_holds_few_objects_for_the_collector_to_walk() -> None:
    import gc

    from opentelemetry.sdk.trace.export import SpanExporter

    from otel_sentry_biz import BufferedSpanProcessor

    processor = BufferedSpanProcessor(
        SpanExporter(), batch_size=10**6, schedule_delay_millis=60_000
    )  # the worker stays asleep: everything stays buffered
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2000):
        tracer.start_span("held", attributes={"n": n}).end()
    gc.collect()
    per_span = (len(gc.get_objects()) - before) / 2000
    assert processor.buffered_spans == 2000
    # What on_end is given keeps 11 here (its bounded containers, their deques and locks).
    assert per_span <= 4, per_span
    processor.shutdown()
