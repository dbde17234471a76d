"""Known bugs the properties found in event building, pinned down one trigger at a time.

Each is ``xfail(strict=True)``: when it is fixed the test passes, pytest reports XPASS as a
failure, and the xfail mark (and the matching tolerance in ``harness.py`` /
``strategies.py``) should go.
"""

from __future__ import annotations

from typing import Callable

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from tests.hostile.harness import Harness

Scenario = Callable[[Harness], None]


def _error_on_span_with(**attributes: object) -> Scenario:
    def run(harness: Harness) -> None:
        with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as span:
            for key, value in attributes.items():
                span.set_attribute(key, value)
            biz.capture_error(ValueError("declined"))

    return run


def _violation_with(**data: object) -> Scenario:
    def run(harness: Harness) -> None:
        with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER):
            biz.violation("limit", "HIGH", "over the limit", **data)

    return run


def _resource_with(**attributes: object) -> Scenario:
    def run(harness: Harness) -> None:
        tracer = harness.provider_with(Resource.create(attributes)).get_tracer("t")
        with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER):
            biz.capture_error(ValueError("x"))

    return run


def _breadcrumb_then_error(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("import", kind=SpanKind.SERVER) as span:
        span.add_event("parsed batch", {"sql": "SELECT " + "x, " * 1000})
        biz.capture_error(ValueError("bad row"))


def _error_of_type_named(name: str) -> Scenario:
    def run(harness: Harness) -> None:
        with harness.tracer.start_as_current_span("job", kind=SpanKind.SERVER):
            biz.capture_error(type(name, (Exception,), {})("x"))

    return run


def _error_in_span_named(name: str) -> Scenario:
    def run(harness: Harness) -> None:
        with harness.tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
            span.set_attribute("attempt", 1)  # contexts.span (with the name) needs attributes
            biz.capture_error(ValueError("x"))

    return run


def _group(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER):
        biz.violation("limit", "HIGH", "over", group="g" * 9000)


def _error_message(message: str) -> Scenario:
    def run(harness: Harness) -> None:
        with harness.tracer.start_as_current_span("job", kind=SpanKind.SERVER):
            biz.capture_error(ValueError(message))

    return run


def _violation_message(message: str) -> Scenario:
    def run(harness: Harness) -> None:
        with harness.tracer.start_as_current_span("job", kind=SpanKind.SERVER):
            biz.violation("limit", "HIGH", message)

    return run


TRIMMED = {
    "error span attribute of 9 KB": _error_on_span_with(note="n" * 9000),
    "error span with 2 x 5 KB attributes": _error_on_span_with(a="a" * 5000, b="b" * 5000),
    "error span with 100 x 200-char attributes": _error_on_span_with(
        **{f"header_{i}": "h" * 200 for i in range(100)}
    ),
    "error span named with 9 KB": _error_in_span_named("n" * 9000),
    "violation data of 9 KB": _violation_with(note="n" * 9000),
    "violation group of 9 KB": _group,
    "resource attribute of 9 KB": _resource_with(note="n" * 9000),
    "breadcrumb data of 3 KB": _breadcrumb_then_error,
    "exception type of 300 chars": _error_of_type_named("E" * 300),
    "exception message of 9 KB": _error_message("m" * 9000),
    "violation message of 9 KB": _violation_message("m" * 9000),
}


@pytest.mark.parametrize("scenario", list(TRIMMED), ids=list(TRIMMED))
def test_copied_values_fit_relays_limits(harness: Harness, scenario: str) -> None:
    harness.reset()
    TRIMMED[scenario](harness)
    assert harness.events(tolerate=False)


# -- lone surrogates ------------------------------------------------------------------------


def _surrogate_in(where: str) -> Scenario:
    def run(harness: Harness) -> None:
        name = "GET /\udcff" if where == "span name" else "GET /"
        with harness.tracer.start_as_current_span(name, kind=SpanKind.SERVER) as root:
            if where == "attribute key":
                root.set_attribute("file.\udcff", "x")
            elif where == "child span name":
                with harness.tracer.start_as_current_span("open \udcff.csv"):
                    pass
            elif where == "exception message":
                biz.capture_error(FileNotFoundError("no file \udcff.csv"))
            elif where == "business key":
                with biz.context(**{"file\udcff": "x"}):
                    biz.capture_error(ValueError("x"))
            elif where == "violation message":
                biz.violation("limit", "HIGH", "file \udcff.csv is over the limit")

    return run


SURROGATES = [
    "span name",
    "child span name",
    "attribute key",
    "exception message",
    "business key",
    "violation message",
]


@pytest.mark.parametrize("where", SURROGATES)
def test_a_lone_surrogate_does_not_make_the_envelope_invalid(harness: Harness, where: str) -> None:
    harness.reset()
    _surrogate_in(where)(harness)
    assert harness.events(tolerate=False)


# -- judgement attributes -------------------------------------------------------------------


def _failing_span_with(key: str, value: str) -> Scenario:
    def run(harness: Harness) -> None:
        try:
            with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as span:
                span.set_attribute(key, value)
                raise ValueError("declined")
        except ValueError:
            pass

    return run


def _context_named_impact(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER):
        with biz.context(impact="urgent"):  # a business key that happens to be called impact
            biz.capture_error(ValueError("declined"))


def _violation_event_with_bad_impact(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as span:
        span.add_event("biz.violation", {"biz.violation.rule": "r", "biz.violation.impact": "?"})


JUDGEMENTS = {
    "span biz.impact=urgent": _failing_span_with("biz.impact", "urgent"),
    "span biz.category=money": _failing_span_with("biz.category", "money"),
    "biz.context(impact=...)": _context_named_impact,
    "violation event impact=?": _violation_event_with_bad_impact,
}


@pytest.mark.parametrize("scenario", list(JUDGEMENTS), ids=list(JUDGEMENTS))
def test_an_unknown_impact_or_category_does_not_lose_the_segment(
    harness: Harness, scenario: str
) -> None:
    harness.reset()
    JUDGEMENTS[scenario](harness)
    events = harness.events(tolerate=False)
    assert any(event.get("type") == "transaction" for event in events)


@pytest.mark.parametrize("value", ["", " ", "HIGH\nLOW", "x" * 201])
def test_a_failed_span_s_judgement_is_a_valid_tag(harness: Harness, value: str) -> None:
    harness.reset()
    try:
        with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as span:
            span.set_attribute("biz.impact", value)
            raise ValueError("declined")
    except ValueError:
        pass
    assert harness.events(tolerate=False)


def test_a_violation_with_a_nan_risk_is_reported_and_its_transaction_kept(
    harness: Harness,
) -> None:
    # JSON has no NaN: a risk of float("nan") once made the violation (and its whole
    # segment) unsendable. It is sent as text, like any non-finite attribute value.
    harness.reset()
    with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER):
        biz.violation("limit", "HIGH", "over the limit", risk=float("nan"))
    events = harness.events(tolerate=False)
    (issue,) = [event for event in events if "business_violation" in event.get("contexts", {})]
    assert issue["contexts"]["business_violation"]["risk"] == "nan"
    assert any(event.get("type") == "transaction" for event in events)
