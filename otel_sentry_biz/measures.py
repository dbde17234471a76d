"""``measure()``: a number Sentry charts and alerts on, on the current transaction.

>>> biz.measure("basket_value", 129.90)
>>> biz.measure("import_rows", 12_000)
>>> biz.measure("render_time", 41.5, unit="millisecond")

Recorded the way Sentry's own OTel SDKs carry measurements (a span event, see
:mod:`otel_sentry_biz.rules.measurement`): any OTel backend sees the event, and the Sentry
bridge turns it into ``measurements.<name>`` of the transaction the span belongs to.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from opentelemetry import trace

from otel_sentry_biz.rules.measurement import add_measurement, measurement_problem

_logger = logging.getLogger("otel_sentry_biz.measures")


def measure(name: str, value: float, unit: str = "none") -> None:
    """Record measurement ``name`` = ``value`` on the current span's transaction.

    ``name`` is what Sentry accepts: 1-64 characters a-z, 0-9, ``_`` or ``.``, starting with
    a letter. ``unit`` is a Sentry unit (``none``, ``percent``, ``millisecond``, ``second``,
    ``byte``, ...). Recording a name twice keeps the latest value, as Sentry's
    ``set_measurement`` does. Runs inside requests, so it never raises: a bad name, unit or
    value, or no span being recorded, is logged and the measurement dropped.
    """
    try:
        problem = measurement_problem(name, unit)
        if problem is None and (isinstance(value, bool) or not _finite_number(value)):
            problem = f"measurement {name!r}: value {value!r} must be a finite number"
        if problem is not None:
            _logger.error("%s; the measurement is dropped", problem)
            return
        span = trace.get_current_span()
        if not span.is_recording():
            _logger.debug("measurement %r outside a recording span: dropped", name)
            return
        add_measurement(span, name, float(value), unit)
    except Exception:
        _logger.exception("could not record measurement %r", name)


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
