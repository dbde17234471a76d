"""SQLAlchemy instrumentation: database client spans, judged for performance and errors.

>>> from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor
>>> SQLAlchemyInstrumentor().instrument(slow_query_ms=200)   # or: opentelemetry-instrument

Every engine is covered, sync and async, created before or after ``instrument()``: one
``CLIENT`` span per statement with the stable database semantic conventions (``db.system.name``,
``db.namespace``, ``db.operation.name``, ``db.collection.name``, ``db.query.summary``,
``db.query.text`` with literals as ``?``, ``server.address``/``server.port``, rows), the
business context of the caller, and these judgements:

* ``slow_query`` and ``n_plus_one`` ``performance`` violations (``biz.violation`` events the
  Sentry bridge turns into issues);
* errors recorded once on the statement's span; pool exhaustion, timeouts and failed
  connections categorised ``system_resource``.

When contrib's ``opentelemetry-instrumentation-sqlalchemy`` is active too, its span is the one
span per statement and this instrumentor enriches it. See ``docs/instrumentors/sqlalchemy.md``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap

from otel_sentry_biz.config import ConfigError

from .package import _instruments
from .semconv import SCHEMA_URL
from .settings import SETTING_NAMES, SQLSettings
from .version import __version__

#: ``instrument()`` keywords besides the settings. ``engine``/``engines`` (contrib's) are
#: accepted and change nothing: every engine is instrumented.
_OTHER_ARGUMENTS = frozenset({"tracer_provider", "meter_provider", "engine", "engines"})


class SQLAlchemyInstrumentor(BaseInstrumentor):
    """Spans for SQLAlchemy statements; slow queries, N+1 and resource errors judged.

    ``instrument()`` keywords (each also a variable; arguments win): ``capture_literals``
    (``OTEL_SENTRY_BIZ_SQL_LITERALS``), ``slow_query_ms`` (``OTEL_SENTRY_BIZ_SQL_SLOW_MS``,
    default 500), ``n_plus_one`` (``OTEL_SENTRY_BIZ_SQL_N_PLUS_ONE``, default 10), ``impact``
    (``OTEL_SENTRY_BIZ_SQL_IMPACT``, default LOW), and ``tracer_provider``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - SETTING_NAMES - _OTHER_ARGUMENTS
        if unknown:
            accepted = ", ".join(sorted(SETTING_NAMES | _OTHER_ARGUMENTS))
            raise ConfigError(
                f"SQLAlchemyInstrumentor().instrument() got {', '.join(sorted(unknown))}: "
                f"accepted keywords are {accepted}"
            )
        settings = SQLSettings.load(kwargs)  # validated before anything is patched
        from .events import EngineEvents  # imports sqlalchemy: only now, never on import

        tracer = trace.get_tracer(
            __name__, __version__, kwargs.get("tracer_provider"), schema_url=SCHEMA_URL
        )
        self._events = EngineEvents(tracer, settings)
        self._instrument_engines()
        self._instrument_pool_checkout()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._uninstrument_engines()
        self._uninstrument_pool_checkout()
        self._events = None

    def _instrument_engines(self) -> None:
        from sqlalchemy.engine import Engine

        self._events.listen(Engine)

    def _uninstrument_engines(self) -> None:
        from sqlalchemy.engine import Engine

        self._events.remove(Engine)

    def _instrument_pool_checkout(self) -> None:
        from sqlalchemy.engine import Engine
        from wrapt import wrap_function_wrapper

        wrap_function_wrapper(Engine, "raw_connection", self._events.raw_connection)

    def _uninstrument_pool_checkout(self) -> None:
        from sqlalchemy.engine import Engine

        unwrap(Engine, "raw_connection")


__all__ = ["SQLAlchemyInstrumentor"]
