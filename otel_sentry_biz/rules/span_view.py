"""How rules read a finished span: attribute names, the ``span.*`` pseudo-fields, numbers.

A rule names what it reads as it would say it: ``amount`` finds ``amount`` or, failing that,
the business attribute ``biz.amount``; ``span.duration`` and friends are computed from the
span itself. One view is built per span (only when some rule applies), so every rule reads the
same facts and nothing is computed twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from otel_sentry_biz import attributes as attr

SPAN_PREFIX = "span."
#: Computed fields a rule may read like attributes.
PSEUDO_FIELDS = (
    "span.name",
    "span.op",
    "span.status",
    "span.kind",
    "span.duration",
    "span.trace_id",
)
#: Separates the parts of a key tuple in state keys: a character no business key contains.
KEY_SEPARATOR = "\x1f"


def alternatives(field: str) -> tuple[str, ...]:
    """The attribute names ``field`` may be stored under, in lookup order."""
    if field.startswith((attr.BIZ_PREFIX, SPAN_PREFIX)):
        return (field,)
    return (field, attr.BIZ_PREFIX + field)


def bare(field: str) -> str:
    """How ``field`` is named in violation data: ``biz.foreman`` -> ``foreman``."""
    if field.startswith(attr.BIZ_PREFIX):
        field = field[len(attr.BIZ_PREFIX) :]
    return field.replace(".", "_")


def as_number(value: Any) -> Optional[float]:
    """The numeric value of an attribute (numbers and numeric strings), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.replace(",", "").strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


class SpanView:
    """The facts of one finished span, as rules read them."""

    __slots__ = ("attributes", "failed", "name", "span", "time")

    def __init__(
        self,
        span: ReadableSpan,
        clock: Callable[[], float],
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.span = span
        self.name = span.name
        # ``attributes``: the span's attributes, already copied to a plain dict by the caller.
        self.attributes: Mapping[str, Any] = (
            attributes if attributes is not None else (span.attributes or {})
        )
        self.failed = span.status.status_code is StatusCode.ERROR
        # The business event's time is when its span ended; windows follow it, not arrival.
        self.time = span.end_time / 1e9 if span.end_time else clock()

    def get(self, field: str) -> Any:
        """The value of attribute or pseudo-field ``field``; None when the span lacks it."""
        value = self.attributes.get(field)
        if value is not None:
            return value
        if field.startswith(SPAN_PREFIX):
            return self._pseudo(field)
        if field.startswith(attr.BIZ_PREFIX):
            return None
        return self.attributes.get(attr.BIZ_PREFIX + field)

    def key(self, fields: Sequence[str]) -> Optional[str]:
        """The values of ``fields`` as one key string; None when any is missing."""
        parts = []
        for field in fields:
            value = self.get(field)
            if value is None:
                return None
            parts.append(str(value))
        return KEY_SEPARATOR.join(parts)

    def _pseudo(self, field: str) -> Any:
        span = self.span
        if field == "span.name":
            return span.name
        if field == "span.op":
            return self.attributes.get(attr.SENTRY_OP)
        if field == "span.status":
            return span.status.status_code.name.lower()
        if field == "span.kind":
            return span.kind.name.lower()
        if field == "span.duration":
            if span.end_time is None or span.start_time is None:
                return None
            return (span.end_time - span.start_time) / 1e9
        if field == "span.trace_id":
            return f"{span.context.trace_id:032x}" if span.context else None
        return None


def display_key(key: str) -> str:
    """A key tuple as people read it: ``WR-1|2024-05-01`` -> ``WR-1 / 2024-05-01``."""
    return key.replace(KEY_SEPARATOR, " / ")
