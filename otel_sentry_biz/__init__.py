"""otel-sentry-biz: business-aware monitoring for OpenTelemetry, with a Sentry bridge.

>>> import otel_sentry_biz as biz
>>> biz.configure()                         # SENTRY_DSN and friends from the environment
>>> with biz.context(work_request="WR-1001", customer="ACME"):
...     biz.record(amount=1520.0)           # business facts on the current span

Everything listed in ``__all__`` is the public API; other modules are internal.
"""

from otel_sentry_biz.capture import capture_error, violation
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


def __getattr__(name: str):
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
    "Impact",
    "Pipeline",
    "Rule",
    "SentrySpanExporter",
    "Settings",
    "Violation",
    "__version__",
    "capture_error",
    "configure",
    "context",
    "current_business",
    "operation",
    "record",
    "violation",
]
