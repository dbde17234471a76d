"""Property 2: hostile span names and exceptions (texts, type names, chains, cycles, groups,
``__str__`` that raises): the business API never raises into the app (``operation`` re-raises
the app's own exception, unchanged), and every event built is one Relay accepts."""

from __future__ import annotations

import builtins
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from tests.hostile.budget import budget
from tests.hostile.harness import Harness
from tests.hostile.strategies import (
    Unprintable,
    any_text,
    hostile_kwargs,
    huge_text,
    short_text,
    span_name,
)

PROPERTY = budget(40)

# -- exceptions -----------------------------------------------------------------------------

_FAKE_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/x.py", line 1, in <module>\n'
    "    boom()\n"
    "ValueError: not the real one\n"
    "\nThe above exception was the direct cause of the following exception:\n\n"
)
#: Messages, including ones that look like the traceback text the bridge parses frames from.
message = st.one_of(
    any_text,
    st.builds(lambda text, n: (_FAKE_TRACEBACK + text) * n, short_text, st.integers(1, 50)),
    st.sampled_from(["", "\n", '  File "x", line 99999999999999999999, in y', "During handling"]),
)
#: What ``type()`` takes as a class name (no NUL, no lone surrogates); anything else goes to
#: ``__qualname__`` and ``__module__``, which may hold any text.
_class_name = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=40
)
_bases = st.sampled_from([Exception, ValueError, KeyError, OSError, RuntimeError, LookupError])


@st.composite
def exception_types(draw: st.DrawFn) -> type[BaseException]:
    cls = type(draw(_class_name), (draw(_bases),), {})
    if draw(st.booleans()):
        cls.__qualname__ = draw(any_text)
    if draw(st.booleans()):
        cls.__module__ = draw(st.one_of(any_text, st.none(), st.just("builtins")))
    return cls


@st.composite
def exceptions(draw: st.DrawFn) -> BaseException:
    cls = draw(exception_types())
    args = draw(
        st.one_of(
            st.tuples(message),
            st.lists(st.one_of(message, st.integers(), st.none()), max_size=3).map(tuple),
        )
    )
    exc = cls(*args)
    shape = draw(st.sampled_from(["plain", "self cause", "self context", "cycle", "chain"]))
    if shape == "self cause":
        exc.__cause__ = exc
    elif shape == "self context":
        exc.__context__ = exc
    elif shape == "cycle":
        other = ValueError(draw(message))
        exc.__cause__, other.__cause__ = other, exc
    elif shape == "chain":
        current = exc
        for _ in range(draw(st.integers(1, 300))):
            current.__cause__ = RuntimeError(draw(short_text))
            current = current.__cause__
    group = getattr(builtins, "ExceptionGroup", None)
    if group is not None and draw(st.booleans()):
        exc = group(
            draw(short_text), [exc, *[ValueError(i) for i in range(draw(st.integers(0, 60)))]]
        )
    return exc


class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ of the exception exploded")


def _transactions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event.get("type") == "transaction"]


@PROPERTY
@given(
    name=span_name,
    kind=st.sampled_from(list(SpanKind)),
    exc=st.one_of(
        exceptions(),
        st.builds(StrRaises),
        st.builds(lambda: ValueError(Unprintable())),  # str(exc) raises too
    ),
    context=hostile_kwargs,
    impact=st.one_of(st.none(), st.sampled_from(["CRITICAL", "low", "bogus", ""]), short_text),
)
def test_hostile_exceptions_never_raise_and_events_stay_valid(
    harness: Harness,
    name: str,
    kind: SpanKind,
    exc: BaseException,
    context: dict[str, Any],
    impact: Any,
) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span(name, kind=kind):
        event_id = biz.capture_error(exc, impact=impact, category=impact, **context)
        try:
            with biz.operation(name):
                raise exc
        except BaseException as caught:
            assert caught is exc  # re-raised unchanged, even when its str() raises
    events = harness.events()
    assert len(_transactions(events)) == 1
    assert isinstance(event_id, str)
    assert event_id in {event["event_id"] for event in events}


@PROPERTY
@given(name=span_name, description=any_text, kind=st.sampled_from(list(SpanKind)), exc=exceptions())
def test_an_escaping_hostile_exception_makes_a_valid_error(
    harness: Harness, name: str, description: str, kind: SpanKind, exc: BaseException
) -> None:
    harness.reset()
    tracer = harness.tracer
    try:
        with tracer.start_as_current_span(name, kind=kind):
            with tracer.start_as_current_span(description, kind=SpanKind.CLIENT):
                raise exc
    except BaseException as caught:
        assert caught is exc
    events = harness.events()
    assert len(_transactions(events)) == 1
    assert any("exception" in event for event in events)


@budget(15)
@given(name=huge_text, kind=st.sampled_from(list(SpanKind)))
def test_huge_span_names_make_valid_transactions(
    harness: Harness, name: str, kind: SpanKind
) -> None:
    harness.reset()
    rule = name  # the violation_rule tag must cope with any rule name
    with harness.tracer.start_as_current_span(name, kind=kind):
        with harness.tracer.start_as_current_span(name):
            biz.violation(rule, "HIGH", name, group=name)
    assert len(_transactions(harness.events())) == 1


# -- known bugs ---------------------------------------------------------------------------


def test_operation_re_raises_an_exception_whose_str_raises_unchanged(harness: Harness) -> None:
    harness.reset()
    try:
        with biz.operation("charge card"):
            raise StrRaises()
    except StrRaises:
        pass
    except Exception as exc:
        raise AssertionError(f"the app got {exc!r} instead of its StrRaises") from exc


def test_capture_error_reports_an_exception_whose_str_raises(harness: Harness) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER):
        event_id = biz.capture_error(StrRaises())
    assert event_id is not None
    assert event_id in {event["event_id"] for event in harness.events()}


def test_capture_error_reports_an_exception_with_an_unprintable_argument(
    harness: Harness,
) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span("job", kind=SpanKind.SERVER):
        event_id = biz.capture_error(ValueError(Unprintable()))
    assert event_id is not None


@pytest.mark.parametrize("rule", ["", " ", "\t", "limit\nexceeded"])
def test_a_violation_rule_that_is_no_valid_tag_value_is_not_sent_as_one(
    harness: Harness, rule: str
) -> None:
    harness.reset()
    with harness.tracer.start_as_current_span("POST /x", kind=SpanKind.SERVER):
        biz.violation(rule, "HIGH", "over the limit")
    (issue,) = [e for e in harness.events() if "business_violation" in e.get("contexts", {})]
    # Reported, with the rule in its context, but no tag Relay would reject.
    assert issue["contexts"]["business_violation"]["rule"] == rule
    assert "violation_rule" not in issue["tags"]
