"""otel-sentry-biz: business-aware monitoring for OpenTelemetry, with a Sentry bridge.

>>> import otel_sentry_biz as biz
>>> biz.configure()                         # SENTRY_DSN and friends from the environment
>>> with biz.context(work_request="WR-1001", customer="ACME"):
...     biz.record(amount=1520.0)           # business facts on the current span

Everything listed in ``__all__`` is the public API; other modules are internal.
"""

from otel_sentry_biz.capture import capture_error, capture_message, violation
from otel_sentry_biz.classify import ClassificationRule, ErrorClassifier
from otel_sentry_biz.config import ConfigError, Settings
from otel_sentry_biz.context import context, current_business, record
from otel_sentry_biz.impact import Category, Impact
from otel_sentry_biz.operations import operation
from otel_sentry_biz.pipeline import Pipeline, configure
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.rules import Rule, Violation
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from otel_sentry_biz.version import __version__

#: Served lazily, so ``import otel_sentry_biz`` does not pay for what an app may not use.
_LAZY = {
    "FieldSpec": "otel_sentry_biz.rules.quality",
    "QualityResult": "otel_sentry_biz.rules.quality",
    "Schema": "otel_sentry_biz.rules.quality",
    "validate_batch": "otel_sentry_biz.rules.quality",
    "risk_snapshot": "otel_sentry_biz.rules.risk",
    "health": "otel_sentry_biz.healthcheck",
    "wsgi_health_app": "otel_sentry_biz.healthcheck",
    "asgi_health_app": "otel_sentry_biz.healthcheck",
    # Monitors: the seeds' decorator families as one set of composable pieces.
    "module": "otel_sentry_biz.monitors",
    "api_endpoint": "otel_sentry_biz.monitors",
    "db_operation": "otel_sentry_biz.monitors",
    "security_event": "otel_sentry_biz.security",
    "security_monitor": "otel_sentry_biz.security",
    "capture_business_error": "otel_sentry_biz.domain_errors",
    "capture_payment_error": "otel_sentry_biz.domain_errors",
    "capture_booking_error": "otel_sentry_biz.domain_errors",
    "capture_integration_error": "otel_sentry_biz.domain_errors",
    "capture_performance_issue": "otel_sentry_biz.domain_errors",
    # Journeys, funnels and feature usage (OTel metrics + Sentry measurements).
    "journey_start": "otel_sentry_biz.journeys",
    "journey_step": "otel_sentry_biz.journeys",
    "journey_complete": "otel_sentry_biz.journeys",
    "journey_abandon": "otel_sentry_biz.journeys",
    "sweep_journeys": "otel_sentry_biz.journeys",
    "configure_journeys": "otel_sentry_biz.journeys",
    "Funnel": "otel_sentry_biz.journeys",
    "feature_used": "otel_sentry_biz.journeys",
    "measure": "otel_sentry_biz.measures",
    # Fingerprint rules in Python (a TOML file via OTEL_SENTRY_BIZ_FINGERPRINTS otherwise).
    "FingerprintRule": "otel_sentry_biz.sentry.fingerprints",
    "FingerprintRules": "otel_sentry_biz.sentry.fingerprints",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "SentrySpanExporter":
        from otel_sentry_biz.sentry.exporter import SentrySpanExporter

        return SentrySpanExporter
    raise AttributeError(f"module 'otel_sentry_biz' has no attribute {name!r}")


__all__ = [
    "BufferedSpanProcessor",
    "BusinessSpanProcessor",
    "Category",
    "ClassificationRule",
    "ConfigError",
    "ErrorClassifier",
    "FieldSpec",
    "FingerprintRule",
    "FingerprintRules",
    "Funnel",
    "Impact",
    "Pipeline",
    "QualityResult",
    "Rule",
    "Schema",
    "SentrySpanExporter",
    "Settings",
    "Violation",
    "__version__",
    "api_endpoint",
    "asgi_health_app",
    "capture_booking_error",
    "capture_business_error",
    "capture_error",
    "capture_integration_error",
    "capture_message",
    "capture_payment_error",
    "capture_performance_issue",
    "configure",
    "configure_journeys",
    "context",
    "current_business",
    "db_operation",
    "feature_used",
    "health",
    "journey_abandon",
    "journey_complete",
    "journey_start",
    "journey_step",
    "measure",
    "module",
    "operation",
    "record",
    "risk_snapshot",
    "security_event",
    "security_monitor",
    "sweep_journeys",
    "validate_batch",
    "violation",
    "wsgi_health_app",
]
