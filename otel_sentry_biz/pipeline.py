"""``configure()``: the one-call way in, building the whole pipeline from settings.

TracerProvider ─► BusinessSpanProcessor ─► BufferedSpanProcessor ─► SentrySpanExporter
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from otel_sentry_biz.classify import ErrorClassifier, rules_from_mapping
from otel_sentry_biz.config import Settings
from otel_sentry_biz.context import set_sensitive_keys
from otel_sentry_biz.processor import BusinessSpanProcessor, ViolationHandler
from otel_sentry_biz.rules import Rule
from otel_sentry_biz.sampling import BusinessAwareSampler
from otel_sentry_biz.span_buffer import BufferedSpanProcessor

_logger = logging.getLogger("otel_sentry_biz.pipeline")


@dataclass
class Pipeline:
    """What :func:`configure` built; keep it to flush or shut the pipeline down."""

    settings: Settings
    tracer_provider: TracerProvider
    processor: BusinessSpanProcessor
    exporter: Optional[Any]  # SentrySpanExporter, or None when no DSN is configured

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export and deliver everything buffered; True when it all went out in time."""
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the pipeline's threads, close the rules' state. Idempotent."""
        self.processor.shutdown()


def configure(
    *,
    tracer_provider: Optional[TracerProvider] = None,
    rules: Union[Sequence[Rule], str] = (),
    classifier: Optional[ErrorClassifier] = None,
    processors: Sequence[SpanProcessor] = (),
    resource: Optional[Mapping[str, Any]] = None,
    environ: Optional[Mapping[str, str]] = None,
    on_violation: Optional[ViolationHandler] = None,
    **settings: Any,
) -> Pipeline:
    """Set up business-aware tracing to Sentry from ``SENTRY_*`` / ``OTEL_SENTRY_BIZ_*``.

    >>> import otel_sentry_biz as biz
    >>> pipeline = biz.configure(environment="staging")  # SENTRY_DSN from the environment

    ``rules`` are Rule objects, or a string as ``OTEL_SENTRY_BIZ_RULES`` takes it (shipped set
    names and TOML paths, comma-separated: ``rules="billing,security"``), which then replaces
    the variable. ``on_violation`` is called with each violation the rules find, on the
    thread that ended the span, so the app can react to it (see
    :class:`~otel_sentry_biz.processor.BusinessSpanProcessor`). ``processors`` receive the
    judged spans beside Sentry (an OTLP ``BatchSpanProcessor``, say), with the same business
    attributes, impact, category and violations. Keyword settings (``dsn``, ``environment``,
    ``traces_sample_rate``, ...) override the variables. An app that already has an SDK
    ``TracerProvider`` keeps it: the pipeline is added to it. Invalid settings raise
    :class:`~otel_sentry_biz.config.ConfigError` naming the fix. Without a DSN, business
    context and judgements still reach your other exporters.
    """
    if isinstance(rules, str):  # a setting, not a sequence of one-letter rules
        settings["rules"], rules = rules, ()
    loaded = Settings.load(environ, **settings)
    if loaded.debug:
        logging.getLogger("otel_sentry_biz").setLevel(logging.DEBUG)
    set_sensitive_keys(loaded.sensitive_keys or ())
    if loaded.rules_state:
        # Journeys and funnels share the rules' store; opening it here makes a bad URL fail
        # at start-up rather than be logged on the first journey of a request.
        from otel_sentry_biz.journeys import use_state

        use_state(loaded.rules_state)
    provider = tracer_provider or _provider(loaded, resource)
    processor, exporter = build_processor(
        loaded,
        rules=rules,
        classifier=classifier,
        extra=processors,
        resource=provider.resource,
        on_violation=on_violation,
    )
    provider.add_span_processor(processor)
    if exporter is not None:
        from otel_sentry_biz.log_breadcrumbs import install_breadcrumbs
        from otel_sentry_biz.sentry.coexistence import link_sentry_sdk

        link_sentry_sdk(provider)
        install_breadcrumbs()
    return Pipeline(loaded, provider, processor, exporter)


def load_rules(settings: Settings) -> Optional[Rule]:
    """The rule set named by ``OTEL_SENTRY_BIZ_RULES`` (None when unset), on its state store."""
    if not settings.rules:
        return None
    from otel_sentry_biz.rules.loader import rules_from_setting

    return rules_from_setting(settings.rules, state=settings.rules_state)


def build_processor(
    settings: Settings,
    *,
    rules: Sequence[Rule] = (),
    classifier: Optional[ErrorClassifier] = None,
    extra: Sequence[SpanProcessor] = (),
    resource: Optional[Resource] = None,
    on_violation: Optional[ViolationHandler] = None,
) -> tuple[BusinessSpanProcessor, Optional[Any]]:
    """The processor chain for ``settings``: business judgements, then Sentry (and ``extra``).

    ``rules`` run before those of ``OTEL_SENTRY_BIZ_RULES``; the processor closes them all
    (their state stores) on shutdown. ``resource`` is the tracer provider's: the environment
    and release that ``settings`` leave unset are taken from it, as every event would, so
    :func:`~otel_sentry_biz.health` reports what is sent.
    """
    loaded = load_rules(settings)
    if loaded is not None:
        rules = [*rules, loaded]
    exporter = None
    downstream: list[SpanProcessor] = list(extra)
    if settings.dsn:
        from otel_sentry_biz.sentry.exporter import SentrySpanExporter

        exporter = SentrySpanExporter(settings=_sent_as(settings, resource))
        downstream.insert(
            0, BufferedSpanProcessor(exporter, max_buffered_spans=settings.max_buffered_spans)
        )
    else:
        _logger.info("SENTRY_DSN is not set: the Sentry bridge is off")
    if classifier is None:
        classifier = ErrorClassifier(rules=rules_from_mapping(dict(settings.classification)))
    next_processor: Optional[SpanProcessor]
    if len(downstream) == 1:
        next_processor = downstream[0]
    elif downstream:
        from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

        fan_out = SynchronousMultiSpanProcessor()
        for each in downstream:
            fan_out.add_span_processor(each)
        next_processor = fan_out
    else:
        next_processor = None
    processor = BusinessSpanProcessor(
        next_processor, classifier=classifier, rules=rules, on_violation=on_violation
    )
    return processor, exporter


def _sent_as(settings: Settings, resource: Optional[Resource]) -> Settings:
    """``settings`` with the environment and release the events carry for ``resource``.

    Unset, they come from the resource (``deployment.environment(.name)``,
    ``service.name@service.version``) and the environment defaults to ``production``: the
    same precedence as the event factory's. Resolving them once, here, lets ``health()`` report
    them; the events do not change, since the provider gives every span this resource.
    """
    if resource is None or (settings.environment and settings.release):
        return settings
    from otel_sentry_biz.sentry.tags import resource_info

    info = resource_info(resource.attributes)
    return settings.replace(
        environment=settings.environment or info.environment or "production",
        release=settings.release or info.release,
    )


def traces_sampler(settings: Settings) -> Sampler:
    """Parent-based trace-id ratio that records the rest: failed traces are kept in Sentry.

    See :mod:`otel_sentry_biz.sampling`.
    """
    return BusinessAwareSampler(settings.traces_sample_rate)


def _provider(settings: Settings, resource: Optional[Mapping[str, Any]]) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current  # an existing OTel setup: join it rather than replace it
    provider = TracerProvider(
        resource=Resource.create(dict(resource or {})), sampler=traces_sampler(settings)
    )
    trace.set_tracer_provider(provider)
    return provider
