"""Cheap reads of finished SDK spans, for code that runs on every span."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import Event, ReadableSpan, Span
from opentelemetry.sdk.util import BoundedList

_NO_ATTRIBUTES: Mapping[str, Any] = {}
#: The SDK's own span classes (what ``on_end`` is given, what its tracer makes): a
#: subclass of someone else's may hold more than a ReadableSpan shows, and is not copied.
_SDK_SPANS = (ReadableSpan, Span, getattr(sdk_trace, "_Span", Span))


def events_of(span: Any) -> Sequence[Event]:
    """``span.events``, without a copy when there are none.

    The SDK's ``events`` property copies its event list under a lock into a new tuple on
    every call (~1-2 us); the exporter and the processors ask each span several times, and
    almost every span has no events. An empty list is answered from its length: the length
    of the deque inside the SDK's ``BoundedList`` when there is one (its ``__len__`` is a
    Python call on the app thread's path), else of whatever the span holds.
    """
    raw = getattr(span, "_events", None)
    if raw is not None:
        try:
            if not len(getattr(raw, "_dq", raw)):
                return ()
        except TypeError:
            pass
    return span.events


def attributes_of(span: Any) -> Mapping[str, Any]:
    """``span.attributes`` as a plain dict, to read only: it may be the span's own.

    ``span.attributes`` is a read-only proxy over the SDK's ``BoundedAttributes``, whose
    iteration copies its keys under a lock and whose ``get`` raises and catches a KeyError on
    every miss: the exporter reads every attribute of every span several times, and reads
    through the proxy cost several microseconds per span (benchmarks/conversion_cost.py).
    A finished span's attributes no longer change (the SDK refuses writes once it ended), so
    its dict is read in place; anything else is copied once.
    """
    raw = getattr(span, "_attributes", None)
    if type(raw) is dict:
        return raw  # a ReadableSpan built from a dict (BusinessSpanProcessor's copies)
    inner = getattr(raw, "_dict", None)
    if type(inner) is dict:
        return inner
    attributes = span.attributes
    return dict(attributes) if attributes else _NO_ATTRIBUTES


def compact(span: ReadableSpan) -> ReadableSpan:
    """A finished span's data in a ``ReadableSpan`` that the garbage collector has little
    to walk, for holding spans a while (``BufferedSpanProcessor``).

    What the SDK hands to ``on_end`` keeps its bounded containers alive: the attributes'
    ``BoundedAttributes`` (a dict inside, a lock) and two ``BoundedList`` (a deque each, a
    lock each), empty as they mostly are. The collector's full passes walk all of them
    while a tight loop's spans wait; in ``benchmarks/pipeline_overhead.py`` that was most
    of our collector time. The copy shares what does not change (context, status,
    resource, scope, the attribute dict the SDK no longer writes to, the events) and keeps
    a container only where it holds something or counted drops, so every property of a
    ``ReadableSpan`` reads the same. Anything but the SDK's own span classes is returned as
    it is, and so is a span with nothing to leave out.
    """
    if type(span) not in _SDK_SPANS:
        return span
    try:
        attributes = span._attributes
        events = span._events
        links = span._links
        slim_attributes = type(attributes) is BoundedAttributes and not attributes.dropped
        no_events, no_links = _empty(events), _empty(links)
        if not (slim_attributes or no_events or no_links):
            return span
        return ReadableSpan(
            name=span._name,
            context=span._context,
            parent=span._parent,
            resource=span._resource,
            attributes=attributes._dict if slim_attributes else attributes,
            events=() if no_events else events,
            links=() if no_links else links,
            kind=span._kind,
            instrumentation_info=span._instrumentation_info,
            status=span._status,
            start_time=span._start_time,
            end_time=span._end_time,
            instrumentation_scope=span._instrumentation_scope,
        )
    except AttributeError:  # another SDK version's internals: hold the span as it is
        return span


def _empty(bounded: Any) -> bool:
    """An SDK ``BoundedList`` holding nothing and having dropped nothing."""
    return type(bounded) is BoundedList and not len(bounded._dq) and not bounded.dropped
