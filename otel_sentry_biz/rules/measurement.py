"""Sentry measurements carried on OTel spans, the way Sentry's own OTel SDKs carry them.

A measurement is a span event named after it, with the attributes ``sentry.measurement_value``
and ``sentry.measurement_unit`` (the convention of ``Sentry.setMeasurement`` in sentry-javascript
on OpenTelemetry). Any OTel backend sees a timestamped event; the Sentry bridge turns the
events of a transaction's spans into the transaction's ``measurements``, which Sentry charts
and alerts on (``measurements.data_quality_score``).

>>> add_measurement(span, "data_quality_score", 87.5)
>>> measurements([root, *children])
{'data_quality_score': {'value': 87.5, 'unit': 'none'}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Optional

from otel_sentry_biz.spans import events_of

MEASUREMENT_VALUE = "sentry.measurement_value"
MEASUREMENT_UNIT = "sentry.measurement_unit"
#: Relay's rule for a measurement name (it drops the whole ``measurements`` entry otherwise).
# Relay: a-z0-9._ and starting with a letter or digit... and in practice a letter.
_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
#: Relay's custom-unit rule: up to 15 ASCII letters, digits or underscores.
_UNIT = re.compile(r"^[A-Za-z0-9_]{1,15}$")


def measurement_problem(name: str, unit: str = "none") -> Optional[str]:
    """Why Sentry would reject measurement ``name`` / ``unit``; None when it is fine."""
    if not isinstance(name, str) or not _NAME.match(name):
        return (
            f"measurement name {name!r} must be 1-64 characters a-z, 0-9, '_' or '.' "
            "(e.g. data_quality_score)"
        )
    if not isinstance(unit, str) or not _UNIT.match(unit):
        return f"measurement unit {unit!r} must be a Sentry unit (none, percent, millisecond, ...)"
    return None


def measurement_attributes(value: float, unit: str = "none") -> dict[str, Any]:
    """The attributes of a measurement event."""
    return {MEASUREMENT_VALUE: float(value), MEASUREMENT_UNIT: unit}


def add_measurement(span: Any, name: str, value: float, unit: str = "none") -> None:
    """Record measurement ``name`` on ``span`` (an OTel span) as a span event."""
    span.add_event(name, measurement_attributes(value, unit))


def measurements(spans: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The Sentry ``measurements`` object of a transaction from its spans' events.

    For the bridge (``sentry/events.py``): pass the segment's root and child spans. Events
    without a finite numeric ``sentry.measurement_value``, or whose name or unit Sentry would
    reject, are skipped. When a measurement is recorded more than once, the latest (by event
    timestamp) wins, as ``setMeasurement`` overwrites.
    """
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for span in spans:
        for event in events_of(span):
            attributes = event.attributes or {}
            value = attributes.get(MEASUREMENT_VALUE)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            unit = attributes.get(MEASUREMENT_UNIT) or "none"
            if measurement_problem(event.name, unit) is not None:
                continue
            stamp = event.timestamp or 0
            seen = found.get(event.name)
            if seen is None or stamp >= seen[0]:
                found[event.name] = (stamp, {"value": float(value), "unit": unit})
    return {name: entry for name, (_, entry) in found.items()}
