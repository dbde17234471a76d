"""Living next to ``sentry_sdk.init()``: one trace, no duplicate errors.

Apps often keep ``sentry_sdk.init()`` for its framework integrations while we report from
spans. Without care the same unhandled exception arrives twice (once from sentry-sdk's
integration, once from the span that recorded it) and sentry-sdk's events carry a trace id of
their own. A global sentry-sdk event processor fixes both: it stamps sentry-sdk's events with
the current OTel trace and span, and drops sentry-sdk's copy of an unhandled exception that an
OTel span records (our copy carries the business impact and category).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from otel_sentry_biz.attributes import EXCEPTION_EVENT, EXCEPTION_MESSAGE, EXCEPTION_TYPE
from otel_sentry_biz.spans import events_of

_logger = logging.getLogger("otel_sentry_biz.sentry.coexistence")

_linked = False
_link_lock = threading.Lock()


class RecordedExceptions:
    """A bounded memory of exceptions recorded on spans, by (type, message)."""

    def __init__(self, capacity: int = 256) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def note(self, exc_type: str, message: str) -> None:
        key = (exc_type.rsplit(".", 1)[-1], message)
        with self._lock:
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        short = (key[0].rsplit(".", 1)[-1], key[1])
        with self._lock:
            return short in self._seen


#: Exceptions recorded on spans that ended recently, noted on the app thread as they end.
recorded_exceptions = RecordedExceptions()


class ExceptionWitness(SpanProcessor):
    """Notes every exception a span recorded, synchronously, before the app goes on.

    sentry-sdk's excepthook runs after the failing span ended but long before our exporter
    converts it in the background, so the note must be taken here, on ``on_end``.
    """

    def on_end(self, span: ReadableSpan) -> None:
        if not events_of(span):  # the common case: one length check
            return
        for event in events_of(span):
            if event.name == EXCEPTION_EVENT and event.attributes:
                recorded_exceptions.note(
                    str(event.attributes.get(EXCEPTION_TYPE, "")),
                    str(event.attributes.get(EXCEPTION_MESSAGE, "")),
                )


def link_sentry_sdk(provider: TracerProvider) -> None:
    """Make sentry-sdk (initialised now or later) share our trace and skip our errors."""
    global _linked
    with _link_lock:
        if _linked:
            return
        import sentry_sdk

        # The global scope outlives sentry_sdk.init(): this works whichever is called first.
        sentry_sdk.get_global_scope().add_event_processor(_one_trace_no_duplicates)
        provider.add_span_processor(ExceptionWitness())
        _linked = True


def _one_trace_no_duplicates(
    event: dict[str, Any], hint: dict[str, Any]
) -> Optional[dict[str, Any]]:
    try:
        span = trace.get_current_span()
        context = span.get_span_context()
        if _is_unhandled_exception(event) and (
            span.is_recording() or _last_exception_key(event) in recorded_exceptions
        ):
            return None  # the OTel span records it; we report it with its business impact
        if context.is_valid:
            trace_context = event.setdefault("contexts", {}).setdefault("trace", {})
            trace_context["trace_id"] = f"{context.trace_id:032x}"
            trace_context["span_id"] = f"{context.span_id:016x}"
            trace_context.pop("parent_span_id", None)
    except Exception:
        _logger.exception("could not link a sentry-sdk event to the OTel trace")
    return event


def _is_unhandled_exception(event: dict[str, Any]) -> bool:
    values = (event.get("exception") or {}).get("values") or []
    if not values:
        return False
    mechanism = values[-1].get("mechanism") or {}
    return mechanism.get("handled") is False


def _last_exception_key(event: dict[str, Any]) -> tuple[str, str]:
    last = event["exception"]["values"][-1]
    return (str(last.get("type", "")), str(last.get("value", "")))
