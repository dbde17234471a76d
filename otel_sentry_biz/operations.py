"""``operation()``: open a span for a business operation, as a context manager or decorator.

>>> @biz.operation("generate_invoice", impact="CRITICAL", customer="ACME")
... def generate_invoice(order): ...
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Optional, TypeVar, Union

from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.capture import printable, record_exception_safely
from otel_sentry_biz.context import context_with
from otel_sentry_biz.impact import Category, Impact

_logger = logging.getLogger("otel_sentry_biz.operations")
# A ProxyTracer until a provider is installed, so importing us never freezes the provider choice.
_tracer = trace.get_tracer("otel_sentry_biz")

F = TypeVar("F", bound=Callable[..., Any])


class operation:
    """A span named ``name`` for one business operation; business ``attrs`` flow to children.

    >>> with biz.operation("close_month", op="billing", period="2026-11"):
    ...     ...

    ``impact`` / ``category`` state how bad a failure of this operation is; they override the
    default classification of its errors. An exception is recorded, marks the span as failed
    and is re-raised unchanged.
    """

    __slots__ = ("_attrs", "_kind", "_name", "_span_attrs", "_stack")

    def __init__(
        self,
        name: str,
        *,
        op: str = "function",
        impact: Optional[Union[Impact, str]] = None,
        category: Optional[Union[Category, str]] = None,
        kind: SpanKind = SpanKind.INTERNAL,
        **attrs: Any,
    ) -> None:
        # Validated here, at decoration time, so a typo fails at import and not in a request.
        span_attrs: dict[str, Any] = {attr.SENTRY_OP: op}
        if impact is not None:
            span_attrs[attr.IMPACT] = Impact.parse(impact).value
        if category is not None:
            span_attrs[attr.CATEGORY] = Category.parse(category).value
        self._name = name
        self._kind = kind
        self._attrs = {"operation": name, **attrs}
        self._span_attrs = span_attrs
        self._stack: list[tuple[Any, Any]] = []

    def __enter__(self) -> trace.Span:
        try:
            ctx = context_with(self._attrs)
            token = attach(ctx)
        except Exception:
            _logger.exception("could not build the business context of %r", self._name)
            ctx, token = None, None
        # We record the exception ourselves: the SDK formats it with str(), and an exception
        # whose __str__ raises would then replace the app's own exception.
        manager = _tracer.start_as_current_span(
            self._name,
            context=ctx,
            kind=self._kind,
            attributes=self._span_attrs,
            record_exception=False,
            set_status_on_exception=False,
        )
        span = manager.__enter__()
        self._stack.append((manager, token, span))
        return span

    def __exit__(self, *exc_info: Any) -> Optional[bool]:
        manager, token, span = self._stack.pop()
        exc = exc_info[1]
        try:
            if isinstance(exc, Exception):
                try:
                    record_exception_safely(span, exc, {}, escaped=True)
                    span.set_status(
                        Status(StatusCode.ERROR, f"{type(exc).__name__}: {printable(exc)}")
                    )
                except Exception:
                    _logger.exception("could not record the exception of %r", self._name)
            return manager.__exit__(*exc_info)
        finally:
            if token is not None:
                detach(token)

    async def __aenter__(self) -> trace.Span:
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> Optional[bool]:
        return self.__exit__(*exc_info)

    def _fresh(self) -> operation:
        clone = object.__new__(operation)
        clone._name, clone._kind, clone._attrs = self._name, self._kind, self._attrs
        clone._span_attrs, clone._stack = self._span_attrs, []
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
