"""Property 1: hostile attribute values, through the OTel API and through the business API.

Nothing raises into the caller, and every transaction, error and violation event built from
the spans is strict JSON that Relay's normalizer accepts without a complaint.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz.attributes import coerce_value
from otel_sentry_biz.context import context_with
from otel_sentry_biz.rules.measurement import add_measurement
from tests.hostile.budget import budget
from tests.hostile.harness import Harness, no_exception, quiet, repaired
from tests.hostile.strategies import (
    Unprintable,
    any_text,
    attribute_key,
    cyclic_list,
    deep_dict,
    deep_list,
    hostile_kwargs,
    otel_attributes,
    otel_value,
    short_text,
    span_name,
)

PROPERTY = budget(40)


def _transactions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event.get("type") == "transaction"]


def _span_data(events: list[dict[str, Any]], description: str) -> dict[str, Any]:
    for event in _transactions(events):
        for span in event.get("spans", []):
            if span.get("description") == description:
                return span.get("data", {})
    raise AssertionError(f"no span {description!r} in {[e.get('transaction') for e in events]}")


@PROPERTY
@given(
    root_attributes=otel_attributes,
    child_attributes=otel_attributes,
    event_name=short_text,
    kind=st.sampled_from(list(SpanKind)),
    failed=st.booleans(),
    description=any_text,
    name=span_name,
    many=st.integers(0, 300),
)
def test_hostile_span_attributes_still_make_valid_events(
    harness: Harness,
    root_attributes: dict[str, Any],
    child_attributes: dict[str, Any],
    event_name: str,
    kind: SpanKind,
    failed: bool,
    description: str,
    name: str,
    many: int,
) -> None:
    harness.reset()
    tracer = harness.tracer
    with tracer.start_as_current_span(name, kind=kind) as root:
        for index in range(many):  # past the SDK's 128-attribute limit, too
            root.set_attribute(f"biz.many.{index}", description[:50] or index)
        for key, value in root_attributes.items():
            root.set_attribute(key, value)
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            for key, value in child_attributes.items():
                child.set_attribute(key, value)
            child.add_event(event_name, child_attributes)
            child.add_event("biz.violation", child_attributes)
            child.add_event("exception", child_attributes)
        if failed:
            root.set_status(Status(StatusCode.ERROR, description))
    events = harness.events()
    assert len(_transactions(events)) == 1


#: Any name: invalid ones must be left out, sensitive-looking ones kept whole (both were bugs).
_measurement_name = st.one_of(
    attribute_key, st.sampled_from(["0", "_total", "auth_failures", "session_count"])
)


@PROPERTY
@given(name=_measurement_name, value=otel_value)
def test_a_measurement_event_with_a_hostile_value_keeps_its_transaction(
    harness: Harness, name: str, value: Any
) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.add_event(name, {"sentry.measurement_value": value, "sentry.measurement_unit": name})
        root.add_event("data_quality_score", {"sentry.measurement_value": value})
    assert len(_transactions(harness.events())) == 1


@pytest.mark.parametrize("name", ["0", "_total", ".x", "95th_percentile"])
def test_a_measurement_name_relay_rejects_is_not_sent(harness: Harness, name: str) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span("nightly import", kind=SpanKind.SERVER) as root:
        add_measurement(root, name, 1.0)
        add_measurement(root, "data_quality_score", 0.98)
    (transaction,) = harness.events(tolerate=False)
    assert transaction["measurements"]["data_quality_score"]["value"] == 0.98


@PROPERTY
@given(resource=otel_attributes, name=span_name)
def test_hostile_resource_attributes_still_make_valid_events(
    harness: Harness, resource: dict[str, Any], name: str
) -> None:
    harness.reset()
    # A provider per example (the resource is fixed when it is built), the same exporter.
    provider = harness.provider_with(Resource.create(resource))
    with provider.get_tracer("hostile").start_as_current_span(name, kind=SpanKind.SERVER):
        biz.violation("r", "HIGH", "m")
    assert len(_transactions(harness.events())) == 1


#: What the business API logs a value it could not take with (known bugs: see below).
_BUSINESS_LOGGERS = (
    "otel_sentry_biz.context",
    "otel_sentry_biz.capture",
    "otel_sentry_biz.operations",
)


@PROPERTY
@given(outer=hostile_kwargs, inner=hostile_kwargs, recorded=hostile_kwargs)
def test_hostile_business_values_never_raise_and_events_stay_valid(
    harness: Harness,
    outer: dict[str, Any],
    inner: dict[str, Any],
    recorded: dict[str, Any],
) -> None:
    harness.reset()
    tracer = harness.tracer

    @biz.context(**inner)
    def handler() -> str:
        with tracer.start_as_current_span("inner"):
            biz.record(**recorded)
            biz.capture_error(ValueError("handled"), **recorded)
            biz.violation("hostile_rule", "HIGH", "hostile values", **recorded)
        return "done"

    with quiet(*_BUSINESS_LOGGERS), biz.context(**outer):
        with tracer.start_as_current_span("root", kind=SpanKind.SERVER):
            biz.record(**recorded)
            assert handler() == "done"
            with biz.operation("hostile operation", **inner):
                biz.record(**outer)
    events = harness.events()
    assert len(_transactions(events)) == 1


_CANARIES = {"canary", "recorded_canary", "biz.canary", "biz.recorded_canary"}


@PROPERTY
@given(
    attributes=hostile_kwargs.map(lambda kw: {k: v for k, v in kw.items() if k not in _CANARIES})
)
def test_every_business_value_reaches_the_span(
    harness: Harness, attributes: dict[str, Any]
) -> None:
    """Every value is coerced, or shown as unprintable (Decimals, dates, enums, sets, cycles,
    deep nesting, a raising __str__...): none is lost, none takes a neighbour with it."""
    harness.reset()
    with (
        quiet(*_BUSINESS_LOGGERS),
        harness.tracer.start_as_current_span("root", kind=SpanKind.SERVER),
    ):
        with biz.context(**attributes, canary="context"):
            with harness.tracer.start_as_current_span("child"):
                biz.record(**attributes, recorded_canary="record")
    data = _span_data(harness.events(), "child")
    assert data.get("biz.canary") == "context"
    assert data.get("biz.recorded_canary") == "record"
    for key, value in attributes.items():
        if value is not None:
            assert repaired(key if key.startswith("biz.") else "biz." + key) in data, key


@pytest.mark.parametrize("name", ["auth_failures", "session_count", "api_key_rotations"])
def test_a_measurement_named_like_a_secret_keeps_its_value(harness: Harness, name: str) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span("nightly import", kind=SpanKind.SERVER) as root:
        add_measurement(root, name, 3.0)
    (transaction,) = harness.events(tolerate=False)
    assert transaction["measurements"][name] == {"value": 3.0, "unit": "none"}


# -- regressions: bugs this suite found, fixed since. One bad value must not take its
# -- neighbours (or the whole report) with it. --------------------------------------------

_UNCOERCIBLE = {
    "unprintable": Unprintable(),
    "cyclic list": cyclic_list(),
    "deep list": deep_list(5000),
    "deep dict": deep_dict(5000),
}


@pytest.mark.parametrize("bad", list(_UNCOERCIBLE), ids=list(_UNCOERCIBLE))
def test_one_uncoercible_value_does_not_drop_its_neighbours(bad: str) -> None:
    value = _UNCOERCIBLE[bad]
    ctx = no_exception(lambda: context_with({"customer": "ACME", "bad": value}))
    assert biz.current_business(ctx)["biz.customer"] == "ACME"


def test_coercing_nested_lists_stays_small() -> None:
    coerced = no_exception(lambda: coerce_value(deep_list(24)))
    assert len(repr(coerced)) < 100_000, f"{len(repr(coerced)):,} characters"


def _one_span(run: Callable[[Any], None]) -> list[Any]:
    provider = TracerProvider(resource=Resource.create({}))
    with provider.get_tracer("t").start_as_current_span("root") as span:
        run(span)
    return [event.name for event in span.events]


@pytest.mark.parametrize("bad", ["unprintable", "cyclic list"])
def test_capture_error_still_reports_with_an_uncoercible_context_value(bad: str) -> None:
    ids: list[Any] = []
    names = _one_span(
        lambda span: ids.append(biz.capture_error(ValueError("x"), note=_UNCOERCIBLE[bad]))
    )
    assert ids[0] is not None
    assert names == ["exception"]


@pytest.mark.parametrize("how", ["data", "group"])
def test_violation_still_reports_with_an_uncoercible_value(how: str) -> None:
    if how == "data":
        names = _one_span(lambda span: biz.violation("limit", "HIGH", "over", items=cyclic_list()))
    else:
        names = _one_span(lambda span: biz.violation("limit", "HIGH", "over", group=Unprintable()))
    assert names == ["biz.violation"]


def test_a_violation_with_an_unknown_impact_is_reported_with_the_default() -> None:
    names = _one_span(lambda span: biz.violation("limit", "urgent", "over the limit"))
    assert names == ["biz.violation"]


def test_propagate_accepts_one_key_as_a_string() -> None:
    with biz.context(customer="ACME", propagate="customer"):
        assert baggage.get_baggage("biz.customer") == "ACME"
