"""Zero-code: the OTel distro and configurator loaded by ``opentelemetry-instrument``.

``SENTRY_DSN=... opentelemetry-instrument python app.py`` with this package installed:
the distro makes ``sentry`` the default traces exporter when a DSN is set; the configurator
lets the SDK set up everything as usual (``OTEL_*`` keep their meaning: resource, sampler,
other exporters, metrics, logs) and then puts the business processor in front of the
``sentry`` exporter, so the Sentry bridge gets judged spans and 100% of a burst.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.environment_variables import OTEL_TRACES_SAMPLER
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_sentry_biz.config import Settings
from otel_sentry_biz.context import set_sensitive_keys
from otel_sentry_biz.pipeline import build_processor, traces_sampler

_logger = logging.getLogger("otel_sentry_biz.distro")
SENTRY_EXPORTER = "sentry"


class SentryBizDistro(BaseDistro):
    """Defaults for ``opentelemetry-instrument``: traces go to Sentry when SENTRY_DSN is set."""

    def _configure(self, **kwargs: Any) -> None:
        if os.environ.get("SENTRY_DSN", "").strip():
            os.environ.setdefault(OTEL_TRACES_EXPORTER, SENTRY_EXPORTER)
        os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
        os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")


class SentryBizConfigurator(_OTelSDKConfigurator):
    """The SDK's own configurator, with the business pipeline in front of the exporters."""

    def _configure(self, **kwargs: Any) -> None:
        settings = Settings.load()  # invalid settings stop start-up here, with the fix named
        set_sensitive_keys(settings.sensitive_keys or ())
        names = [
            name.strip()
            for name in os.environ.get(OTEL_TRACES_EXPORTER, "").split(",")
            if name.strip() and name.strip().lower() != "none"
        ]
        if OTEL_TRACES_SAMPLER not in os.environ:
            kwargs.setdefault("sampler", traces_sampler(settings))
        # The SDK would give every exporter its own BatchSpanProcessor; we build those
        # ourselves, behind one BusinessSpanProcessor, so rules run once per span.
        saved = os.environ.get(OTEL_TRACES_EXPORTER)
        os.environ[OTEL_TRACES_EXPORTER] = "none"
        try:
            super()._configure(**kwargs)
        finally:
            if saved is None:
                del os.environ[OTEL_TRACES_EXPORTER]
            else:
                os.environ[OTEL_TRACES_EXPORTER] = saved
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            _logger.error("no SDK TracerProvider after configuration; business pipeline not added")
            return
        wants_sentry = SENTRY_EXPORTER in names
        if wants_sentry and not settings.dsn:
            _logger.error(
                "OTEL_TRACES_EXPORTER names 'sentry' but SENTRY_DSN is not set: "
                "set SENTRY_DSN to your project's DSN"
            )
        others = [_batch(name) for name in names if name != SENTRY_EXPORTER]
        if not wants_sentry:
            settings = settings.replace(dsn=None)
        processor, exporter = build_processor(
            settings, extra=[p for p in others if p], resource=provider.resource
        )
        provider.add_span_processor(processor)
        if exporter is not None:
            from otel_sentry_biz.log_breadcrumbs import install_breadcrumbs
            from otel_sentry_biz.sentry.coexistence import link_sentry_sdk

            link_sentry_sdk(provider)
            install_breadcrumbs()


def _batch(name: str) -> SpanProcessor | None:
    for entry_point in _traces_exporters():
        if entry_point.name == name:
            return BatchSpanProcessor(entry_point.load()())
    _logger.error("no traces exporter named %r is installed (OTEL_TRACES_EXPORTER)", name)
    return None


def _traces_exporters() -> list[Any]:
    try:
        return list(entry_points(group="opentelemetry_traces_exporter"))
    except TypeError:  # Python 3.9: entry_points() takes no arguments
        return list(entry_points().get("opentelemetry_traces_exporter", []))
