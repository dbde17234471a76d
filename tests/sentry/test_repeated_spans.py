"""Spans that repeat (a query, a step, request after request) convert exactly as the first did.

The exporter remembers what it worked out for a span's name, kind, status and attributes
(``name_span`` and the factory's child-span shapes): these tests hold the remembered answer
to the one worked out afresh, for inputs that Python compares equal but that convert
differently (``1``, ``1.0``, ``True``, ``"1"``, ``0.0`` and ``-0.0``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from otel_sentry_biz.sentry import ops
from otel_sentry_biz.sentry.events import EventFactory
from otel_sentry_biz.sentry.ops import name_span
from otel_sentry_biz.sentry.segments import SegmentAssembler
from otel_sentry_biz.sentry.tags import TagMapper, TagPolicy, json_safe
from tests.relay_oracle import assert_valid

#: Values equal to one another in Python (and so in a dict key) that convert differently.
LOOKALIKES = [1, 1.0, True, "1", 0, 0.0, -0.0, False, "0", "", 200, 200.0, "200", 2**64, 2**63]
KEYS = [
    "http.request.method",
    "http.method",
    "http.route",
    "url.path",
    "url.full",
    "server.port",
    "http.response.status_code",
    "db.system",
    "db.query.text",
    "db.operation.name",
    "rpc.system",
    "rpc.grpc.status_code",
    "messaging.operation.type",
    "celery.task_name",
    "sentry.op",
    "sentry.name",
    "biz.plan",
    "biz.impact",
    "biz.category",
    "biz.count",
]
_values = st.one_of(
    st.sampled_from(LOOKALIKES),
    st.sampled_from(["GET", "postgresql", "grpc", "/a/{id}", "SELECT 1", "HIGH", "publish"]),
)
_attributes = st.dictionaries(st.sampled_from(KEYS), _values, max_size=5)
_kinds = st.sampled_from(list(SpanKind))
_statuses = st.sampled_from([StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR])


def _afresh(name: str, kind: SpanKind, attributes: dict[str, Any]) -> Any:
    """The naming worked out from scratch: name_span's general path, which it remembers."""
    return ops._infer(name, kind, attributes)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["GET", "SELECT", "", "step"]),
    kind=_kinds,
    base=_attributes,
    varied=st.sampled_from(KEYS),
    reverse=st.booleans(),
)
def test_a_remembered_naming_is_the_one_worked_out_afresh(
    name: str, kind: SpanKind, base: dict, varied: str, reverse: bool
) -> None:
    # The same attributes but for one value, set to each of its lookalikes in turn, twice.
    variants = [{**base, varied: value} for value in LOOKALIKES]
    for attributes in (variants[::-1] if reverse else variants) * 2:
        assert name_span(name, kind, attributes) == _afresh(name, kind, attributes)


def _spans(children: list[tuple[str, SpanKind, dict[str, Any], StatusCode]]) -> list[Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    root = tracer.start_span("GET /r", kind=SpanKind.SERVER, start_time=1_000)
    context = set_span_in_context(root)
    for index, (name, kind, attributes, status) in enumerate(children):
        span = tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=2_000 + index
        )
        span.set_status(Status(status))
        span.end(end_time=3_000 + index)
    root.end(end_time=9_000)
    return list(exporter.get_finished_spans())


def _children(factory: EventFactory, spans: list[Any]) -> list[dict[str, Any]]:
    (segment,) = SegmentAssembler().add(spans)
    (event,) = factory.transactions(segment)
    return event["spans"]


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["SELECT", "GET", "step"]),
    kind=_kinds,
    base=_attributes,
    varied=st.sampled_from(KEYS),
    status=_statuses,
    reverse=st.booleans(),
)
def test_a_child_span_converts_the_same_whether_its_shape_was_seen_or_not(
    name: str, kind: SpanKind, base: dict, varied: str, status: StatusCode, reverse: bool
) -> None:
    # Children alike but for one value, set to each of its lookalikes in turn, twice over.
    variants = [{**base, varied: value} for value in LOOKALIKES]
    children = [(name, kind, attributes, status) for attributes in variants]
    spans = _spans((children[::-1] if reverse else children) * 2)
    seasoned = EventFactory()
    for index, child in enumerate(_children(seasoned, spans)):
        alone = [spans[index], spans[-1]]  # the child and the root
        (fresh,) = _children(EventFactory(), alone)  # a factory that never saw this shape
        assert child == fresh


def test_a_remembered_shape_loses_its_tag_once_the_key_is_blocked() -> None:
    # max_distinct_values=1: a second value of biz.plan blocks the key for good, even for
    # a span whose shape (and tag) was remembered while the key was still admitted.
    factory = EventFactory(tags=TagMapper(TagPolicy(max_distinct_values=1)))
    plan = lambda value: ("step", SpanKind.INTERNAL, {"biz.plan": value}, StatusCode.UNSET)  # noqa: E731
    first, second, third = _children(factory, _spans([plan("gold"), plan("silver"), plan("gold")]))
    assert first["tags"] == {"plan": "gold"}
    assert "tags" not in second and "tags" not in third
    assert third["data"] == {"biz.plan": "gold"}


def test_remembered_children_make_a_valid_transaction() -> None:
    query = ("SELECT", SpanKind.CLIENT, {"db.system": "postgresql", "db.statement": "SELECT 1"})
    spans = _spans([(*query, StatusCode.UNSET)] * 3)
    (segment,) = SegmentAssembler().add(spans)
    (event,) = EventFactory().transactions(segment)
    assert_valid(event)
    assert [child["description"] for child in event["spans"]] == ["SELECT 1"] * 3
    assert len({child["span_id"] for child in event["spans"]}) == 3


@settings(max_examples=300, deadline=None)
@given(attributes=st.dictionaries(st.text(max_size=8), st.one_of(_values, st.binary(max_size=4))))
def test_tag_candidates_carry_the_json_safe_data_and_split_s_tags(attributes: dict) -> None:
    candidates, data = TagMapper().candidates(attributes)
    assert data == {key: json_safe(value) for key, value in attributes.items()}
    assert [type(value) for value in data.values()] == [
        type(json_safe(value)) for value in attributes.values()
    ]
    assert TagMapper().admitted(candidates) == TagMapper().split(attributes)[0]
