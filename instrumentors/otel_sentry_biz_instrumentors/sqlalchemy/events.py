"""SQLAlchemy engine events -> database client spans, judged for performance and errors.

:class:`EngineEvents` listens on the ``Engine`` class, so every engine is covered: sync ones,
the sync engine inside every ``AsyncEngine``, and engines created before ``instrument()``.
Per cursor execution it starts a ``CLIENT`` span in ``before_cursor_execute`` (the span is not
made current: nothing runs inside it but the driver) and ends it in ``after_cursor_execute``
or ``handle_error``. When contrib's SQLAlchemy instrumentation already traces the engine, it
starts no span of its own and enriches contrib's instead, so there is one span per statement.

SQLAlchemy runs these listeners on the thread (or greenlet, for async engines) that executes
the statement, with that caller's OTel context; they never raise into the query.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
import weakref
from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.context import current_business
from otel_sentry_biz.impact import Category

from . import semconv
from .errors import category_of, sqlstate_of
from .performance import PerformanceJudge
from .settings import SQLSettings
from .statement import Query, analyse

_logger = logging.getLogger("otel_sentry_biz.instrumentors.sqlalchemy")

#: Where one execution's state lives on SQLAlchemy's ExecutionContext.
_STATE = "_otel_sentry_biz_execution"
#: Contrib's instrumentation: the module of its listeners, the ExecutionContext attribute that
#: holds its span, and its tracer's name (the scope of its ``connect`` span).
_CONTRIB_MODULE = "opentelemetry.instrumentation.sqlalchemy.engine"
_CONTRIB_SPAN = "_otel_span"
_CONTRIB_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
#: How much of a driver's message a span status carries (the exception event has it all).
_STATUS_CHARS = 200


class _Execution:
    """One cursor execution in flight: our span (None: contrib's), start time, statement."""

    __slots__ = ("first", "query", "span", "started_ns")

    def __init__(self, span: Optional[Span], query: Query, first: bool) -> None:
        self.span = span
        self.query = query
        self.first = first
        self.started_ns = time.perf_counter_ns()


class EngineEvents:
    """The listeners; one instance per ``instrument()``, removed by :meth:`remove`."""

    #: (event, method). Listening on the Engine *class* also orders us first: SQLAlchemy runs
    #: class-level listeners before an engine's own, so contrib's span (its listeners are on
    #: each engine) is still open when ours judge it.
    LISTENERS = (
        ("before_cursor_execute", "before_cursor_execute"),
        ("after_cursor_execute", "after_cursor_execute"),
        ("handle_error", "handle_error"),
    )

    def __init__(self, tracer: trace.Tracer, settings: SQLSettings) -> None:
        self._tracer = tracer
        self._settings = settings
        self._old_names_too = semconv.old_names_too()  # the mode is read once
        self._judge = PerformanceJudge(settings)
        self._servers: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    def listen(self, target: Any) -> None:
        for identifier, method in self.LISTENERS:
            fn = getattr(self, method)
            if not event.contains(target, identifier, fn):
                event.listen(target, identifier, fn)

    def remove(self, target: Any) -> None:
        for identifier, method in self.LISTENERS:
            fn = getattr(self, method)
            if event.contains(target, identifier, fn):
                event.remove(target, identifier, fn)

    # -- listeners ---------------------------------------------------------------------

    def before_cursor_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if context is None or not is_instrumentation_enabled():
            return
        try:
            query = analyse(statement)
            # insertmanyvalues batches are several cursor executions of one statement
            first = not hasattr(context, _STATE)
            span = None
            if not _contrib_traces(conn):
                batch = _batch_size(parameters, context, many)
                attributes = self._attributes(conn, cursor, statement, query, batch)
                span = self._tracer.start_span(
                    _span_name(attributes), kind=SpanKind.CLIENT, attributes=attributes
                )
            setattr(context, _STATE, _Execution(span, query, first))
        except Exception:
            _logger.exception("could not start the span of a SQL statement")

    def after_cursor_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        state = _take(context)
        if state is None:
            return
        span = state.span or getattr(context, _CONTRIB_SPAN, None)
        try:
            if span is not None and span.is_recording():
                elapsed_ms = (time.perf_counter_ns() - state.started_ns) / 1e6
                found = _rows(cursor)
                if state.span is None:  # contrib's span: add what it does not record
                    found.update(self._query_attributes(state.query))
                _set_missing(span, semconv.with_old_names(found, self._old_names_too))
                trace_id = span.get_span_context().trace_id
                for violation in self._judge.judge(trace_id, state.query, elapsed_ms, state.first):
                    business = dict(current_business())
                    span.add_event(
                        attr.VIOLATION_EVENT, {**business, **violation.event_attributes()}
                    )
        except Exception:
            _logger.exception("could not judge a SQL statement")
        finally:
            if state.span is not None:
                state.span.end()

    def handle_error(self, context: Any) -> None:
        if getattr(context, "is_pre_ping", False):
            return  # a stale pooled connection: the pool replaces it, the app sees nothing
        execution = context.execution_context
        state = _take(execution) if execution is not None else None
        error = context.sqlalchemy_exception or context.original_exception
        origin = context.original_exception
        if state is None:
            if context.connection is None and is_instrumentation_enabled():  # could not connect
                category = category_of(origin, connecting=True, disconnect=context.is_disconnect)
                self.connection_failed(context.engine, error, category, origin)
            return
        span = state.span or getattr(execution, _CONTRIB_SPAN, None)
        try:
            if span is not None:
                category = category_of(origin, disconnect=context.is_disconnect)
                _record_error(span, error, category, origin)
        except Exception:
            _logger.exception("could not record a SQL error")
        finally:
            if state.span is not None:
                state.span.end()

    def raw_connection(self, wrapped: Any, engine: Any, args: Any, kwargs: Any) -> Any:
        """Wraps ``Engine.raw_connection``: a pool with no connection to give (``TimeoutError``,
        raised without any engine event) is a ``system_resource`` failure."""
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            return wrapped(*args, **kwargs)
        except sa_exc.TimeoutError as error:
            self.connection_failed(engine, error, Category.SYSTEM_RESOURCE)
            raise

    def connection_failed(
        self,
        engine: Any,
        error: BaseException,
        category: Optional[Category],
        origin: Optional[BaseException] = None,
    ) -> None:
        """Record a failure to get a connection (refused, pool exhausted) on a ``connect`` span.

        Contrib opens a ``connect`` span around every ``Engine.connect()`` and records what
        escapes it; when that span is the current one, it is only categorised here.
        """
        try:
            current = trace.get_current_span()
            if _is_contrib_connect(current):
                if current.is_recording():
                    judged = {semconv.ERROR_TYPE: _qualified_name(error)}
                    if category is not None:
                        judged[attr.CATEGORY] = category.value
                    _set_missing(current, judged)
                return
            attributes = semconv.with_old_names(self._server(engine, None), self._old_names_too)
            span = self._tracer.start_span("connect", kind=SpanKind.CLIENT, attributes=attributes)
            try:
                _record_error(span, error, category, origin)
            finally:
                span.end()
        except Exception:
            _logger.exception("could not record a failed database connection")

    # -- attributes --------------------------------------------------------------------

    def _attributes(
        self, conn: Any, cursor: Any, statement: str, query: Query, batch: Optional[int]
    ) -> dict[str, Any]:
        found = dict(self._server(conn.engine, cursor))
        found[semconv.DB_QUERY_TEXT] = statement if self._settings.capture_literals else query.text
        found.update(self._query_attributes(query))
        if batch is not None and batch != 1:  # semconv: one parameter set is not a batch
            found[semconv.DB_OPERATION_BATCH_SIZE] = batch
            for key in (semconv.DB_OPERATION_NAME, semconv.DB_QUERY_SUMMARY):
                if key in found:
                    found[key] = f"BATCH {found[key]}"
        return semconv.with_old_names(found, self._old_names_too)

    @staticmethod
    def _query_attributes(query: Query) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if query.operation:
            found[semconv.DB_OPERATION_NAME] = query.operation
        if query.collection:
            found[semconv.DB_COLLECTION_NAME] = query.collection
        if query.summary:
            found[semconv.DB_QUERY_SUMMARY] = query.summary
        return found

    def _server(self, engine: Any, cursor: Any) -> dict[str, Any]:
        """System, database and server of ``engine`` (stable names), cached per engine."""
        if engine is None:  # a dialect-level failure SQLAlchemy reports without its engine
            return {}
        cached = self._servers.get(engine)
        if cached is not None:
            return cached
        url = engine.url
        found: dict[str, Any] = {semconv.DB_SYSTEM_NAME: semconv.system_name(engine.dialect.name)}
        host, port, database = url.host, url.port, url.database
        info = getattr(getattr(cursor, "connection", None), "info", None)
        if not host and info is not None:  # libpq found the server (socket, PGHOST...)
            host, port = getattr(info, "host", None), getattr(info, "port", None) or port
            database = database or getattr(info, "dbname", None)
        if database:
            found[semconv.DB_NAMESPACE] = str(database)
        if host:
            found[semconv.SERVER_ADDRESS] = str(host)
            if port:
                found[semconv.SERVER_PORT] = int(port)
        if url.host or cursor is not None:  # complete: keep it
            self._servers[engine] = found
        return found


def _take(context: Any) -> Optional[_Execution]:
    """The execution state on ``context``, marked as handled (each is finished once)."""
    state = getattr(context, _STATE, None)
    if state is not None:
        setattr(context, _STATE, False)
    return state or None


def _contrib_traces(conn: Any) -> bool:
    """True when contrib's SQLAlchemy instrumentation listens on this connection's engine."""
    if _CONTRIB_MODULE not in sys.modules:
        return False  # never imported, so not active (and we never import it)
    for listener in conn.dispatch.before_cursor_execute:
        owner = getattr(listener, "__self__", None)
        if owner is not None and type(owner).__module__ == _CONTRIB_MODULE:
            return True
    return False


def _is_contrib_connect(span: Span) -> bool:
    scope = getattr(span, "instrumentation_scope", None)
    return getattr(scope, "name", None) == _CONTRIB_SCOPE and getattr(span, "name", "") == "connect"


def _batch_size(parameters: Any, context: Any, many: bool) -> Optional[int]:
    """How many parameter sets one cursor execution sends (``cursor.executemany``), or None.

    ``many`` alone does not tell: SQLAlchemy's insertmanyvalues passes ``many=True`` for each
    ``cursor.execute`` of a many-row INSERT with its rows' values flattened into one tuple
    (SQLite, one row per execution when it cannot batch; asyncpg) or one dict (psycopg2). That
    is one statement, not a batch, and ``len()`` of it counts columns. A batch is a sequence of
    parameter sets. SQLAlchemy >= 2.0 names the cursor method in ``execute_style``, which is
    exact even when a row's first value is itself a list (a PostgreSQL ARRAY); before 2.0 (no
    insertmanyvalues) the shape of the parameters tells.
    """
    if not many or not isinstance(parameters, (list, tuple)) or not parameters:
        return None
    if getattr(getattr(context, "execute_style", None), "name", None) == "INSERTMANYVALUES":
        return None
    if not isinstance(parameters[0], (list, tuple, Mapping)):
        return None
    return len(parameters)


def _span_name(attributes: dict[str, Any]) -> str:
    """Semconv: the query summary, else ``operation target``, else the target, else the system."""
    summary = attributes.get(semconv.DB_QUERY_SUMMARY)
    if summary:
        return str(summary)
    target = attributes.get(semconv.DB_COLLECTION_NAME) or attributes.get(semconv.DB_NAMESPACE)
    operation = attributes.get(semconv.DB_OPERATION_NAME)
    if operation and target:
        return f"{operation} {target}"
    return str(operation or target or attributes[semconv.DB_SYSTEM_NAME])


def _rows(cursor: Any) -> dict[str, int]:
    """Rows returned (statements with a result) or changed (DML), when the driver knows."""
    try:
        count = cursor.rowcount
        returns_rows = cursor.description is not None
    except Exception:  # a closed or exotic cursor: nothing known
        return {}
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return {}
    return {semconv.DB_RESPONSE_RETURNED_ROWS if returns_rows else semconv.AFFECTED_ROWS: count}


def _record_error(
    span: Span,
    error: BaseException,
    category: Optional[Category],
    origin: Optional[BaseException],
) -> None:
    """Record ``error`` once on ``span``: exception event, status, ``error.type``, category."""
    if not span.is_recording():
        return
    event_attributes: dict[str, Any] = {}
    if category is not None:
        event_attributes[attr.CATEGORY] = category.value
    if error.__traceback__ is None and origin is not None and origin.__traceback__ is not None:
        # SQLAlchemy raises ``error`` after this event with the driver's traceback; recording
        # that stack now lets the Sentry bridge see the enclosing spans' re-records of the
        # escaping exception as this same error, reported once.
        event_attributes[attr.EXCEPTION_STACKTRACE] = "".join(
            traceback.format_exception(type(error), error, origin.__traceback__)
        )
    span.record_exception(error, attributes=event_attributes)
    described = str(origin if origin is not None else error).strip().splitlines()
    span.set_status(Status(StatusCode.ERROR, (described[0] if described else "")[:_STATUS_CHARS]))
    judged: dict[str, Any] = {semconv.ERROR_TYPE: _qualified_name(error)}
    code = sqlstate_of(origin) if origin is not None else None
    if code is not None:
        judged[semconv.DB_RESPONSE_STATUS_CODE] = code
    if category is not None:
        judged[attr.CATEGORY] = category.value
    _set_missing(span, judged)


def _set_missing(span: Span, found: dict[str, Any]) -> None:
    """Set the attributes ``span`` does not have yet: what instrumentation set stays."""
    existing = getattr(span, "attributes", None) or {}
    missing = {key: value for key, value in found.items() if key not in existing}
    if missing:
        span.set_attributes(missing)


def _qualified_name(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module in (None, "builtins") else f"{module}.{kind.__qualname__}"
