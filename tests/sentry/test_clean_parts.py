"""Parts scrubbed once (span shapes, resource contexts) leave events exactly as before.

With the exporter's scrubber, the factory scrubs what repeats from event to event when it
first sees it and marks it (``Scrubbed``) so the walk of each event skips it. These tests hold
the result to the one of a factory without a scrubber, whose events the walk scrubs whole:
the same bytes must leave the process, secrets planted anywhere a span or resource can put
them, shapes seen before or not.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from otel_sentry_biz.scrub import Scrubber, ScrubConfig
from otel_sentry_biz.scrub.scrubber import Scrubbed
from otel_sentry_biz.sentry.events import EventFactory
from otel_sentry_biz.sentry.limits import MAX_CONTEXT_BYTES, _size, fit_event
from otel_sentry_biz.sentry.segments import SegmentAssembler
from otel_sentry_biz.sentry.tags import TagMapper, TagPolicy
from tests.relay_oracle import assert_valid

CARD = "4111 1111 1111 1111"
SECRETS = [
    CARD,
    4111111111111111,
    "jane.doe@example.com",
    "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "password=hunter2",
    "my password is hunter2",
    "SELECT * FROM users WHERE email = 'jane@example.com' AND pin = 1234",
    "https://u:p4ss@127.0.0.1/pay?card=4111111111111111&token=abc",
]
KEYS = [
    "db.statement",
    "db.query.text",
    "db.system",
    "url.full",
    "http.request.method",
    "password",
    "api_key",
    "biz.customer_email",
    "biz.plan",
    "biz.token",
    "description",
    "message",
    "value",
    "type",
    "sentry.op",
]
_values = st.one_of(
    st.sampled_from(SECRETS),
    st.sampled_from(["GET", "postgresql", "gold", "SELECT 1", "", "[Filtered]", "%s"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=12),
)
_attributes = st.dictionaries(st.sampled_from(KEYS), _values, max_size=6)
_names = st.sampled_from(["SELECT", "GET", "step", CARD, "password=hunter2", "INSERT"])
_kinds = st.sampled_from([SpanKind.CLIENT, SpanKind.INTERNAL, SpanKind.PRODUCER])
#: Scrubbers whose rules reach the fields a child span's own (ids, origin, tags), or not.
CONFIGS = [
    ScrubConfig(),
    ScrubConfig(denylist=("tags",)),
    ScrubConfig(denylist=("id",)),
    ScrubConfig(denylist=("origin", "plan")),
    ScrubConfig(patterns={"ours": r"otel_sentry_biz", "gold": r"\bgold\b"}),
    ScrubConfig(safe_keys=("password", "api_key")),
    ScrubConfig(send_default_pii=True),
    ScrubConfig(max_depth=4),
]


def _segments(
    children: list[tuple[str, SpanKind, dict[str, Any], StatusCode]],
    resource: Resource,
    roots: int = 2,
) -> list[Any]:
    """``roots`` traces, each a SERVER root with every child in ``children`` under it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    for trace in range(roots):
        root = tracer.start_span(
            "GET /r", kind=SpanKind.SERVER, attributes={"url.path": f"/r/{trace}"}
        )
        context = set_span_in_context(root)
        for name, kind, attributes, status in children:
            span = tracer.start_span(name, context=context, kind=kind, attributes=attributes)
            if status is StatusCode.ERROR:  # an error event too, with a card in its text
                span.record_exception(ValueError(f"declined {CARD} for {name}"))
            span.set_status(Status(status))
            span.end()
        root.end()
    return SegmentAssembler().add(list(exporter.get_finished_spans()))


def _sent(factory: EventFactory, scrubber: Scrubber, segments: list[Any]) -> list[Any]:
    """What the exporter makes of each segment's events: scrubbed, then fitted.

    Error events (which share the resource's contexts) are in, without their event ids,
    which are random for each factory.
    """
    sent = []
    for segment in segments:
        for event in [*factory.errors(segment), *factory.transactions(segment)]:
            event = fit_event(scrubber.scrub_event(event))
            if event.get("type") != "transaction":
                del event["event_id"]
            sent.append(event)
    return sent


def _factories(scrubber: Scrubber, **tag_policy: Any) -> tuple[EventFactory, EventFactory]:
    tags = lambda: TagMapper(TagPolicy(**tag_policy))  # noqa: E731 (each its own admission)
    return EventFactory(tags=tags(), scrubber=scrubber), EventFactory(tags=tags())


@settings(max_examples=300, deadline=None)
@given(
    children=st.lists(
        st.tuples(_names, _kinds, _attributes, st.sampled_from(list(StatusCode))),
        min_size=1,
        max_size=4,
    ),
    resource=st.dictionaries(st.sampled_from([*KEYS, "service.name"]), _values, max_size=4),
    config=st.sampled_from(CONFIGS),
)
def test_events_are_the_same_with_parts_scrubbed_once(
    children: list[Any], resource: dict[str, Any], config: ScrubConfig
) -> None:
    scrubber = Scrubber(config)
    cleaning, plain = _factories(scrubber)
    # Two traces of the same children: the second meets every shape already scrubbed.
    segments = _segments(children, Resource.create(resource))
    assert _sent(cleaning, scrubber, segments) == _sent(plain, scrubber, segments)


def test_the_repeated_parts_are_really_skipped_and_the_events_valid() -> None:
    scrubber = Scrubber()
    cleaning, _ = _factories(scrubber)
    query = {
        "db.system": "postgresql",
        "db.statement": "SELECT * FROM t WHERE pan = 4111111111111111",
    }
    segments = _segments(
        [("SELECT", SpanKind.CLIENT, query, StatusCode.UNSET)],
        Resource.create({"deployment.environment": "prod", "api_key": "sk_live_abc"}),
    )
    events = [cleaning.transactions(segment)[0] for segment in segments]
    first, second = events
    # Marked before the walk: the children and the resource's contexts, shared by events.
    assert all(type(child) is Scrubbed for child in first["spans"])
    assert first["contexts"]["otel"] is second["contexts"]["otel"]
    sent = [fit_event(scrubber.scrub_event(event)) for event in events]
    for event in sent:
        assert_valid(event)
        (child,) = event["spans"]
        assert child["description"] == "SELECT * FROM t WHERE pan = %s"
        assert event["contexts"]["otel"]["resource"]["api_key"] == "[Filtered]"
    assert sent[0]["contexts"]["otel"] is sent[1]["contexts"]["otel"]


def test_a_resource_context_over_relays_size_is_cut_once_the_same_way() -> None:
    scrubber = Scrubber()
    cleaning, plain = _factories(scrubber)
    resource = Resource.create({f"k{i}": "x" * 300 for i in range(40)})
    segments = _segments([("step", SpanKind.INTERNAL, {}, StatusCode.UNSET)], resource)
    sent = _sent(cleaning, scrubber, segments)
    assert sent == _sent(plain, scrubber, segments)
    assert _size(sent[0]["contexts"]["otel"]) <= MAX_CONTEXT_BYTES
    # Cut when the resource was first met, and marked so: fit_event leaves it alone.
    (transaction,) = cleaning.transactions(segments[0])
    assert transaction["contexts"]["otel"].fitted


@pytest.mark.parametrize(
    ("config", "skipped"),
    [
        (ScrubConfig(), True),
        (ScrubConfig(max_depth=4), True),
        # A walk that stops above a span's tags, or rules reaching the fields the factory
        # makes itself: each span is left to the walk.
        (ScrubConfig(max_depth=3), False),
        (ScrubConfig(max_depth=1), False),
        (ScrubConfig(denylist=("tags",)), False),
        (ScrubConfig(denylist=("span_id",)), False),
        (ScrubConfig(patterns={"ours": r"otel_sentry_biz"}), False),
    ],
)
def test_spans_skip_the_walk_only_where_it_would_leave_them_so(
    config: ScrubConfig, skipped: bool
) -> None:
    scrubber = Scrubber(config)
    cleaning, plain = _factories(scrubber)
    attributes = {"db.statement": "SELECT 1", "biz.plan": "gold", "password": "x"}
    segments = _segments([("SELECT", SpanKind.CLIENT, attributes, StatusCode.OK)], Resource({}))
    (child,) = cleaning.transactions(segments[0])[0]["spans"]
    assert (type(child) is Scrubbed) is skipped
    assert _sent(cleaning, scrubber, segments) == _sent(plain, scrubber, segments)


def test_tag_admission_still_decides_per_span() -> None:
    # One distinct value per key: the second plan blocks the tag even on a cleaned shape.
    scrubber = Scrubber()
    cleaning, plain = _factories(scrubber, max_distinct_values=1)
    plan = lambda value: ("step", SpanKind.INTERNAL, {"biz.plan": value}, StatusCode.UNSET)  # noqa: E731
    segments = _segments([plan("gold"), plan("silver"), plan("gold")], Resource({}), roots=1)
    sent = _sent(cleaning, scrubber, segments)
    assert sent == _sent(plain, scrubber, segments)
    assert [child.get("tags") for child in sent[0]["spans"]] == [{"plan": "gold"}, None, None]


def test_only_the_scrubber_that_made_a_part_at_that_depth_trusts_it() -> None:
    made = Scrubber().clean({"note": "card 4111 1111 1111 1111"}, 3)
    assert made == {"note": "card [Filtered]"}
    # A part claiming to be scrubbed, with a secret in it: another scrubber walks it, and so
    # does its own at another depth; only its own at its depth takes it as it is.
    forged = Scrubbed.made({"note": CARD}, made.by, 3)
    event = {"type": "transaction", "contexts": {"app": forged}}
    assert Scrubber().scrub_event(event)["contexts"]["app"] == {"note": "[Filtered]"}
    deeper = {"type": "transaction", "contexts": {"app": {"inner": forged}}}
    assert made.by.scrub_event(deeper)["contexts"]["app"]["inner"] == {"note": "[Filtered]"}
    assert made.by.scrub_event(event)["contexts"]["app"] is forged
