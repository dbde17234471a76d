"""``operation()``: open a span for a business operation, as a context manager or decorator.

>>> @biz.operation("generate_invoice", impact="CRITICAL", threshold_ms=2000, customer="ACME")
... def generate_invoice(order): ...
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Callable, Optional, TypeVar, Union

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.capture import printable, record_exception_safely
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.context import context_with
from otel_sentry_biz.domain_errors import capture_performance_issue
from otel_sentry_biz.impact import Category, Impact

_logger = logging.getLogger("otel_sentry_biz.operations")
# A ProxyTracer until a provider is installed, so importing us never freezes the provider choice.
_tracer = trace.get_tracer("otel_sentry_biz")

F = TypeVar("F", bound=Callable[..., Any])
ExceptionTypes = tuple[type[BaseException], ...]


class operation:
    """A span named ``name`` for one business operation; business ``attrs`` flow to children.

    >>> with biz.operation("close_month", op="billing", period="2026-11"):
    ...     ...

    ``impact`` / ``category`` state how bad a failure of this operation is; they override the
    default classification of its errors. An exception is recorded, marks the span as failed
    and is re-raised unchanged; one of the ``expected`` types (an answer the operation gives
    on purpose) is re-raised without being reported.

    ``threshold_ms``: an operation that takes longer is reported as a ``slow_operation``
    performance violation (one Sentry issue per operation name, level warning), recorded on
    its span before it ends. ``attributes`` are set on this span only (semantic-convention
    names such as ``db.collection.name``); ``attrs`` are business context for every span
    started inside. Bad arguments raise :class:`~otel_sentry_biz.ConfigError` here, at
    decoration time, never in a request.
    """

    __slots__ = ("_attrs", "_expected", "_kind", "_name", "_span_attrs", "_stack", "_threshold_ms")

    def __init__(
        self,
        name: str,
        *,
        op: str = "function",
        impact: Optional[Union[Impact, str]] = None,
        category: Optional[Union[Category, str]] = None,
        kind: SpanKind = SpanKind.INTERNAL,
        threshold_ms: Optional[float] = None,
        expected: ExceptionTypes = (),
        attributes: Optional[Mapping[str, Any]] = None,
        **attrs: Any,
    ) -> None:
        # Validated here, at decoration time, so a typo fails at import and not in a request.
        span_attrs: dict[str, Any] = {}
        for key, value in (attributes or {}).items():
            coerced = attr.coerce_value(value)
            if coerced is not None:
                span_attrs[key] = coerced
        span_attrs[attr.SENTRY_OP] = op
        if impact is not None:
            span_attrs[attr.IMPACT] = Impact.parse(impact).value
        if category is not None:
            span_attrs[attr.CATEGORY] = Category.parse(category).value
        self._name = name
        self._kind = kind
        self._attrs = {"operation": name, **attrs}
        self._span_attrs = span_attrs
        self._threshold_ms = valid_threshold_ms(threshold_ms, name)
        self._expected = exception_types(expected, "expected", name)
        self._stack: list[tuple[Any, ...]] = []

    def __enter__(self) -> trace.Span:
        try:
            ctx: Optional[Context] = context_with(self._attrs)
            token = attach(ctx)
        except Exception:
            _logger.exception("could not build the business context of %r", self._name)
            ctx, token = None, None
        manager, span, owned = self._open(ctx)
        self._stack.append((manager, token, span, owned, time.perf_counter()))
        return span

    def _open(self, ctx: Optional[Context]) -> tuple[AbstractContextManager[Any], trace.Span, bool]:
        """Start this operation's span: (its context manager, the span, whether we own it).

        A subclass may adopt a span that is already open instead (``api_endpoint`` does with
        the request's SERVER span); then its status stays the business of its owner.
        """
        return self._start(ctx, self._kind, self._span_attrs)

    def _start(
        self, ctx: Optional[Context], kind: SpanKind, attributes: Mapping[str, Any]
    ) -> tuple[AbstractContextManager[Any], trace.Span, bool]:
        # We record the exception ourselves: the SDK formats it with str(), and an exception
        # whose __str__ raises would then replace the app's own exception.
        manager = _tracer.start_as_current_span(
            self._name,
            context=ctx,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        return manager, manager.__enter__(), True

    def _is_failure(self, exc: BaseException) -> bool:
        """Whether ``exc`` escaping the operation is a failure to report."""
        return isinstance(exc, Exception) and not isinstance(exc, self._expected)

    def __exit__(self, *exc_info: Any) -> Optional[bool]:
        manager, token, span, owned, started = self._stack.pop()
        exc = exc_info[1]
        try:
            if exc is not None:
                self._record_failure(span, exc, owned)
            if self._threshold_ms is not None:
                # Before the span ends: the violation is an event of this (still open) span.
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                if elapsed_ms > self._threshold_ms:
                    capture_performance_issue(self._name, elapsed_ms, self._threshold_ms)
            return manager.__exit__(*exc_info)
        finally:
            if token is not None:
                detach(token)

    def _record_failure(self, span: trace.Span, exc: BaseException, owned: bool) -> None:
        try:
            if not self._is_failure(exc):
                return
            record_exception_safely(span, exc, {}, escaped=True)
            if owned:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {printable(exc)}"))
        except Exception:
            _logger.exception("could not record the exception of %r", self._name)

    async def __aenter__(self) -> trace.Span:
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> Optional[bool]:
        return self.__exit__(*exc_info)

    def _fresh(self) -> operation:
        # One instance per call: a decorated function may run in many threads or tasks at once.
        clone = copy.copy(self)
        clone._stack = []
        return clone

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def valid_threshold_ms(value: Optional[float], name: str) -> Optional[float]:
    """``value`` as a float when it is a usable threshold (or None); ConfigError otherwise."""
    if value is None:
        return None
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(
            f"operation {name!r}: threshold_ms={value!r}: give the slow-operation limit in "
            "milliseconds, a number greater than 0 (e.g. threshold_ms=2000), or None for no limit"
        )
    return number


def exception_types(value: Any, argument: str, name: str) -> ExceptionTypes:
    """``value`` as a tuple of exception classes (one class is accepted); ConfigError otherwise."""
    found = (value,) if isinstance(value, type) else value
    if not isinstance(found, tuple) or not all(
        isinstance(each, type) and issubclass(each, BaseException) for each in found
    ):
        raise ConfigError(
            f"{name!r}: {argument}={value!r}: give a tuple of exception classes, "
            "e.g. (PermissionError,)"
        )
    return found
