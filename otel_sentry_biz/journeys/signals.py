"""What journeys, funnels and feature use emit: OTel metrics and marks on the current span.

Metrics go through the OTel metrics API only, so any metrics backend (OTLP, Prometheus, ...)
receives them. Instruments are created on first use from the meter provider given, else from
the global one at that moment, so an app that sets its ``MeterProvider`` after importing this
package is served.

Metric attributes are dimensions, never identities: journey, step, funnel and feature names
and outcomes; never a journey id or a user. Each attribute keeps at most
``MAX_DISTINCT_VALUES`` distinct values per process; later ones are counted as ``"other"``
(logged once), so a name built from an id cannot multiply a backend's series.

On the span, the same names become attributes (the Sentry bridge tags the transaction with
them: ``journey``, ``journey.step``, ...), an event for the timeline (a breadcrumb of any
error in that request), and Sentry measurements on the transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from opentelemetry import metrics, trace

from otel_sentry_biz.attributes import business_attributes
from otel_sentry_biz.journeys.once import FirstSeen
from otel_sentry_biz.rules.measurement import add_measurement

_logger = logging.getLogger("otel_sentry_biz.journeys")

METER_NAME = "otel_sentry_biz"

# -- names shared by span attributes and metric attributes ------------------------------------
JOURNEY = "biz.journey"
JOURNEY_ID = "biz.journey.id"
JOURNEY_STEP = "biz.journey.step"
JOURNEY_OUTCOME = "biz.journey.outcome"
JOURNEY_REASON = "biz.journey.abandon_reason"
#: Span events only: the user is an identity, never a tag or a metric attribute.
JOURNEY_USER = "biz.journey.user"
FUNNEL = "biz.funnel"
FUNNEL_STEP = "biz.funnel.step"
FEATURE = "biz.feature"
FEATURE_USAGE = "biz.feature.usage"

# -- instruments: name -> (kind, UCUM unit, description) --------------------------------------
JOURNEY_STARTED = "biz.journey.started"
JOURNEY_STEPPED = "biz.journey.step"
JOURNEY_COMPLETED = "biz.journey.completed"
JOURNEY_ABANDONED = "biz.journey.abandoned"
JOURNEY_DURATION = "biz.journey.duration"
FUNNEL_STEPPED = "biz.funnel.step"
FEATURE_USED = "biz.feature.used"

INSTRUMENTS: Mapping[str, tuple[str, str, str]] = {
    JOURNEY_STARTED: ("counter", "{journey}", "User journeys started"),
    JOURNEY_STEPPED: ("counter", "{step}", "Steps taken in user journeys"),
    JOURNEY_COMPLETED: ("counter", "{journey}", "User journeys completed"),
    JOURNEY_ABANDONED: ("counter", "{journey}", "User journeys abandoned or expired"),
    # Seconds, as OTel's semantic conventions measure every duration.
    JOURNEY_DURATION: ("histogram", "s", "Time from a journey's start to its end"),
    FUNNEL_STEPPED: ("counter", "{subject}", "Sessions or users reaching a funnel step"),
    FEATURE_USED: ("counter", "{use}", "Uses of a product feature"),
}
#: Journeys last seconds to a day: the SDK's default buckets (0 ms ... 10 s) would put
#: nearly every journey in the last one.
DURATION_BUCKETS: Sequence[float] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    21600,
    86400,
)

MAX_DISTINCT_VALUES = 100
OTHER = "other"

Measurement = tuple[str, float, str]  # name, value, Sentry unit


class Signals:
    """The instruments of one meter provider (None: the global one), created on first use.

    Safe to share between threads.
    """

    def __init__(
        self,
        meter_provider: Optional[metrics.MeterProvider] = None,
        *,
        max_distinct_values: int = MAX_DISTINCT_VALUES,
    ) -> None:
        self._provider = meter_provider
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._guard = _CardinalityGuard(max_distinct_values)

    def add(self, name: str, attributes: Mapping[str, str], amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` (one of :data:`INSTRUMENTS`)."""
        self._instrument(name).add(amount, self._guard.admit(attributes))

    def record(self, name: str, value: float, attributes: Mapping[str, str]) -> None:
        """Record ``value`` in histogram ``name``."""
        self._instrument(name).record(value, self._guard.admit(attributes))

    def _instrument(self, name: str) -> Any:
        found = self._instruments.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._instruments:
                meter = (
                    self._provider.get_meter(METER_NAME)
                    if self._provider is not None
                    else metrics.get_meter(METER_NAME)
                )
                kind, unit, description = INSTRUMENTS[name]
                if kind == "histogram":
                    self._instruments[name] = meter.create_histogram(
                        name,
                        unit,
                        description,
                        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
                    )
                else:
                    self._instruments[name] = meter.create_counter(name, unit, description)
            return self._instruments[name]


class _CardinalityGuard:
    """Caps the distinct values of each metric attribute; later values become ``"other"``."""

    def __init__(self, max_values: int) -> None:
        self._max = max_values
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._warned = FirstSeen()

    def admit(self, attributes: Mapping[str, str]) -> dict[str, str]:
        out = {}
        with self._lock:
            for key, value in attributes.items():
                seen = self._seen.setdefault(key, set())
                if value not in seen and len(seen) >= self._max:
                    if self._warned.first(key):
                        _logger.warning(
                            "metric attribute %s has more than %d distinct values; later ones "
                            "are counted as %r: pass names and steps, not ids",
                            key,
                            self._max,
                            OTHER,
                        )
                    value = OTHER
                else:
                    seen.add(value)
                out[key] = value
        return out


# Instruments are made on first use: building this at import costs nothing.
_shared = Signals()


def use_meter_provider(meter_provider: Optional[metrics.MeterProvider]) -> None:
    """Send the metrics of everything not given its own provider to ``meter_provider``.

    None returns to the global provider (``opentelemetry.metrics.set_meter_provider``).
    """
    global _shared
    _shared = Signals(meter_provider)


def shared() -> Signals:
    """The signals of journeys, funnels and features that were not given a meter provider."""
    return _shared


def mark_current_span(
    event: str,
    tags: Mapping[str, Union[str, int]],
    details: Optional[Mapping[str, Any]] = None,
    measurements: Sequence[Measurement] = (),
) -> bool:
    """Mark the current span: ``tags`` as attributes, an ``event`` with ``tags`` and
    ``details`` (the app's keyword arguments, as ``biz.<key>``), and Sentry measurements.

    False (and nothing done) when no span is recording.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return False
    span.set_attributes(tags)
    span.add_event(event, {**business_attributes(details or {}), **tags})
    for name, value, unit in measurements:
        add_measurement(span, name, value, unit)
    return True
