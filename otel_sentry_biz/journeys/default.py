"""The module-level journey API, on one default tracker per process.

>>> configure_journeys("sqlite:////var/lib/app/state.db", ttl=3600)   # optional, at start-up
>>> journey_id = journey_start("signup", user=user.id)
>>> journey_step(journey_id, "email_verified")
>>> journey_complete(journey_id)

See :mod:`otel_sentry_biz.journeys.tracker` for what each call records.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Union

from opentelemetry.metrics import MeterProvider

from otel_sentry_biz.journeys import signals
from otel_sentry_biz.journeys.state import use_state
from otel_sentry_biz.journeys.tracker import DEFAULT_TTL, JourneyId, JourneyTracker
from otel_sentry_biz.rules.state import StateStore

_logger = logging.getLogger("otel_sentry_biz.journeys")

# Built at import: a tracker opens nothing until it is used (its store is the default one,
# opened on first use), so an app that never calls journey_start pays nothing.
_default = JourneyTracker()


def configure_journeys(
    state: Optional[Union[str, StateStore]] = None,
    *,
    ttl: float = DEFAULT_TTL,
    meter_provider: Optional[MeterProvider] = None,
) -> JourneyTracker:
    """Set where journeys and funnels keep state, how long a journey may last, and (optionally)
    the meter provider of their metrics; return the tracker the module functions now use.

    >>> configure_journeys("sqlite:////var/lib/app/state.db", ttl=3600)

    Call at start-up: a bad state URL or ttl raises naming the fix. Without this call the
    store is the one ``OTEL_SENTRY_BIZ_RULES_STATE`` names, journeys last 24 h, and metrics go
    to the global meter provider.
    """
    global _default
    tracker = JourneyTracker(ttl=ttl)
    if state is not None:
        use_state(state)
    if meter_provider is not None:
        signals.use_meter_provider(meter_provider)
    _default = tracker
    return tracker


def default_tracker() -> JourneyTracker:
    """The tracker behind :func:`journey_start` and friends."""
    return _default


def journey_start(
    name: str,
    *,
    journey_id: Optional[JourneyId] = None,
    user: Optional[JourneyId] = None,
    **attrs: Any,
) -> str:
    """Start user journey ``name``; return its id for the requests that continue it.

    >>> journey_id = biz.journey_start("signup", user=user.id, source="google")
    >>> response.set_cookie("journey", journey_id)
    """
    return default_tracker().start(name, journey_id=journey_id, user=user, **attrs)


def journey_step(journey_id: JourneyId, step: str, **attrs: Any) -> None:
    """Record that journey ``journey_id`` reached ``step``, in this request or any other.

    >>> biz.journey_step(request.cookies["journey"], "email_verified")
    """
    default_tracker().step(journey_id, step, **attrs)


def journey_complete(journey_id: JourneyId, **attrs: Any) -> None:
    """End journey ``journey_id`` successfully.

    >>> biz.journey_complete(request.cookies["journey"], plan="pro")
    """
    default_tracker().complete(journey_id, **attrs)


def journey_abandon(journey_id: JourneyId, reason: Optional[str] = None, **attrs: Any) -> None:
    """End journey ``journey_id`` unsuccessfully; ``reason`` is a short code.

    >>> biz.journey_abandon(journey_id, reason="payment_declined")
    """
    default_tracker().abandon(journey_id, reason, **attrs)


def sweep_journeys() -> int:
    """Count this process's journeys whose time ran out as abandoned; return how many.

    >>> scheduler.every(60, biz.sweep_journeys)   # where journey calls are too rare to do it
    """
    try:
        return default_tracker().sweep()
    except Exception:
        _logger.exception("the journey sweep failed; it runs again on the next call")
        return 0
