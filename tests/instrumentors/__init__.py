"""Tests of the otel_sentry_biz_instrumentors packages."""
