"""Business-aware OpenTelemetry instrumentors shipped with otel-sentry-biz.

Each subpackage is a ``BaseInstrumentor`` registered under the ``opentelemetry_instrumentor``
entry point group, so ``opentelemetry-instrument`` loads it. Importing this package (or any
subpackage) never imports the instrumented library: that happens in ``instrument()``.
"""
