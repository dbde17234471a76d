"""Names of the span attributes and events this package writes, and value coercion.

Every business fact travels as a span attribute under the ``biz.`` prefix so that any OTel
backend sees it; the Sentry bridge reads the same names back. Keeping the names in one module
lets processors, rules and the bridge agree without importing each other.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
from collections.abc import Mapping
from typing import Any, Optional

BIZ_PREFIX = "biz."

#: Impact and category judged for a span or an exception event (see :mod:`otel_sentry_biz.impact`).
IMPACT = "biz.impact"
CATEGORY = "biz.category"
#: Name of a business operation opened with :func:`otel_sentry_biz.operation`.
OPERATION = "biz.operation"
#: Explicit Sentry op; wins over inference (sentry-sdk's OTel bridge reads the same name).
SENTRY_OP = "sentry.op"

#: A message for Sentry (``capture_message``) is a span event of this name.
MESSAGE_EVENT = "biz.message"
MESSAGE_TEXT = "biz.message.text"
MESSAGE_LEVEL = "biz.message.level"

#: A business-rule violation is a span event of this name with the ``VIOLATION_*`` attributes.
VIOLATION_EVENT = "biz.violation"
VIOLATION_RULE = "biz.violation.rule"
VIOLATION_IMPACT = "biz.violation.impact"
VIOLATION_CATEGORY = "biz.violation.category"
VIOLATION_MESSAGE = "biz.violation.message"
VIOLATION_GROUP = "biz.violation.group"
VIOLATION_RISK = "biz.violation.risk"
#: Prefix of the data attributes a violation carries (``biz.violation.data.amount``).
VIOLATION_DATA_PREFIX = "biz.violation.data."

#: OTel's semantic-convention names for a recorded exception.
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"
EXCEPTION_ESCAPED = "exception.escaped"

AttributeValue = Any  # str | bool | int | float | Sequence of one of them


def biz_key(key: str) -> str:
    """The span attribute name of business key ``key`` (``"customer"`` -> ``"biz.customer"``)."""
    return key if key.startswith(BIZ_PREFIX) else BIZ_PREFIX + key


def coerce_value(value: Any) -> Optional[AttributeValue]:
    """Turn a business value into something an OTel attribute can hold, or None to skip it.

    OTel attributes accept only str, bool, int, float and homogeneous sequences of them; the
    SDK silently drops anything else, so a ``Decimal`` amount or a ``date`` would vanish.
    Amounts keep their numeric meaning (rules compare them), dates become ISO strings.
    Total: any value gives a result, even one whose ``__str__`` raises or a list holding
    itself, because it runs inside the app's request.
    """
    try:
        return _coerce(value, 0)
    except Exception:  # a hostile __str__, __iter__ or isoformat: keep the fact it was there
        return _unprintable(value)


#: Nesting kept in a list value; deeper (or cyclic) parts are shown as "...".
_MAX_DEPTH = 3


def _coerce(value: Any, depth: int) -> Optional[AttributeValue]:
    if value is None:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, enum.Enum):
        return _coerce(value.value, depth + 1) if depth < _MAX_DEPTH else str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            return "..."
        items = [_flat(item, depth + 1) for item in value]
        return tuple(items)
    return str(value)


def _flat(item: Any, depth: int) -> str:
    """One item of a list attribute, as text (OTel lists must be homogeneous)."""
    if isinstance(item, str):
        return item
    if isinstance(item, (list, tuple)):
        if depth >= _MAX_DEPTH:
            return "[...]"
        return "[" + ", ".join(_flat(part, depth + 1) for part in item) + "]"
    try:
        coerced = _coerce(item, depth)
    except Exception:
        return _unprintable(item)
    return "None" if coerced is None else str(coerced)


def _unprintable(value: Any) -> str:
    return f"<unprintable {type(value).__name__}>"


def business_attributes(attrs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """``{"customer": "ACME"}`` -> ``{"biz.customer": "ACME"}``, values coerced, Nones dropped."""
    out: dict[str, AttributeValue] = {}
    for key, value in attrs.items():
        coerced = coerce_value(value)
        if coerced is not None:
            out[biz_key(key)] = coerced
    return out
