"""User journeys, conversion funnels and feature usage, across requests and processes.

>>> journey_id = journey_start("signup", user=user.id)      # one request
>>> journey_complete(journey_id)                            # a later one, maybe elsewhere
>>> checkout = Funnel("checkout", ["cart", "payment", "confirmed"])
>>> checkout.step(session_id, "payment")
>>> feature_used("post_creator", usage="video_created")

Metrics go through the OTel metrics API (``biz.journey.*``, ``biz.funnel.step``,
``biz.feature.used``), so any metrics backend charts them; the current span is tagged and
given Sentry measurements (``journey_duration``, ``journey_steps``, ``journey_step``,
``funnel_<name>_conversion``). State lives in the rules' state store
(``OTEL_SENTRY_BIZ_RULES_STATE``). See ``docs/journeys.md``.
"""

from otel_sentry_biz.journeys.default import (
    configure_journeys,
    default_tracker,
    journey_abandon,
    journey_complete,
    journey_start,
    journey_step,
    sweep_journeys,
)
from otel_sentry_biz.journeys.features import feature_used
from otel_sentry_biz.journeys.funnel import Funnel, FunnelSnapshot, StepCount
from otel_sentry_biz.journeys.signals import use_meter_provider
from otel_sentry_biz.journeys.state import use_state
from otel_sentry_biz.journeys.tracker import JourneyTracker

__all__ = [
    "Funnel",
    "FunnelSnapshot",
    "JourneyTracker",
    "StepCount",
    "configure_journeys",
    "default_tracker",
    "feature_used",
    "journey_abandon",
    "journey_complete",
    "journey_start",
    "journey_step",
    "sweep_journeys",
    "use_meter_provider",
    "use_state",
]
