"""Trace context and business keys in a task message's headers, written and read back.

The producer writes with the global propagator (``traceparent``, ``baggage``, or whatever
``OTEL_PROPAGATORS`` names). The business keys chosen with ``biz.context(propagate=...)`` are
W3C baggage entries ``biz.<key>``; when the global propagator does not carry baggage we write
them ourselves in a ``baggage`` header, so a task always runs with the business context its
sender chose to propagate, and never with a key that looks sensitive.

>>> inject_headers(headers)            # in before_task_publish
>>> ctx = extract_context(task.request)  # in the worker, before the task runs
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Optional

from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from otel_sentry_biz.attributes import BIZ_PREFIX
from otel_sentry_biz.context import is_sensitive

BAGGAGE_HEADER = "baggage"
_baggage_propagator = W3CBaggagePropagator()


class CeleryGetter(Getter[Any]):
    """Read a header from message headers (a mapping) or a Celery request (attributes).

    Celery copies every message header onto the request as an attribute; some are not strings
    (``timelimit`` is a pair), while propagators expect strings.
    """

    def get(self, carrier: Any, key: str) -> Optional[list[str]]:
        value = carrier.get(key) if isinstance(carrier, Mapping) else getattr(carrier, key, None)
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)):
            return [item if isinstance(item, str) else str(item) for item in value]
        return [str(value)]

    def keys(self, carrier: Any) -> list[str]:
        if isinstance(carrier, Mapping):
            return [str(key) for key in carrier]
        return list(getattr(carrier, "__dict__", {}))


getter = CeleryGetter()


def inject_headers(headers: MutableMapping[str, Any], ctx: Optional[Context] = None) -> None:
    """Write the trace context and the propagated business keys of ``ctx`` into ``headers``."""
    propagate.inject(headers, context=ctx)
    inject_business(headers, ctx)


def inject_business(headers: MutableMapping[str, Any], ctx: Optional[Context] = None) -> None:
    """Write the propagated business keys as W3C baggage unless a ``baggage`` header exists."""
    if BAGGAGE_HEADER in headers:
        return  # the global propagator carries baggage, business keys included
    business = propagated_business(ctx)
    if business:
        only_business = Context()
        for key, value in business.items():
            only_business = baggage.set_baggage(key, value, only_business)
        _baggage_propagator.inject(headers, context=only_business)


def propagated_business(ctx: Optional[Context] = None) -> dict[str, object]:
    """The ``biz.*`` baggage entries of ``ctx``: the keys chosen to travel, minus sensitive ones."""
    return {
        key: value
        for key, value in baggage.get_all(ctx).items()
        if key.startswith(BIZ_PREFIX) and not is_sensitive(key[len(BIZ_PREFIX) :])
    }


def extract_context(carrier: Any) -> Optional[Context]:
    """The context a message was sent in (trace and business keys), or None if it carries none.

    ``carrier`` is a Celery request or a message's headers. Business keys the global propagator
    did not read (it may not handle baggage) are read from the ``baggage`` header.
    """
    ctx = propagate.extract(carrier, getter=getter)
    if not any(key.startswith(BIZ_PREFIX) for key in baggage.get_all(ctx)):
        sent = propagated_business(_baggage_propagator.extract(carrier, getter=getter))
        for key, value in sent.items():
            ctx = baggage.set_baggage(key, value, ctx)
    if trace.get_current_span(ctx).get_span_context().is_valid or baggage.get_all(ctx):
        return ctx
    return None
