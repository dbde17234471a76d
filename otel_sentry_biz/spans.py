"""Cheap reads of finished SDK spans, for code that runs on every span."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event

_NO_ATTRIBUTES: Mapping[str, Any] = {}


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
