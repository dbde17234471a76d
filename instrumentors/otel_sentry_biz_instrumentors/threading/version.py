"""The instrumentor ships with otel-sentry-biz and carries its version."""

from otel_sentry_biz.version import __version__

__all__ = ["__version__"]
