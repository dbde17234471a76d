"""The library versions this instrumentor supports (read by ``instrumentation_dependencies``)."""

_instruments = ("celery >= 5.0, < 6.0",)
