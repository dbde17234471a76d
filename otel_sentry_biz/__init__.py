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
    "Impact",
    "Pipeline",
    "QualityResult",
    "Rule",
    "Schema",
    "SentrySpanExporter",
    "Settings",
    "Violation",
    "__version__",
    "asgi_health_app",
    "capture_error",
    "capture_message",
    "configure",
    "context",
    "current_business",
    "health",
    "operation",
    "record",
    "risk_snapshot",
    "validate_batch",
    "violation",
    "wsgi_health_app",
]
