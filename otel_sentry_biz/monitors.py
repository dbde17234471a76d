"""Ready-made operations: a module's operations, an API endpoint, a database operation.

>>> sales = biz.module("sales", impact="HIGH")
>>> @sales.operation("create_order", threshold_ms=2000)
... def create_order(customer_id, items): ...
>>> @biz.api_endpoint(threshold_ms=1500)
... async def list_bookings(request): ...
>>> with biz.db_operation("reserve_stock", table="inventory"):
...     ...

Each is an :func:`~otel_sentry_biz.operation` with the defaults its kind of work needs, so it
is a decorator (sync or async) and, except ``api_endpoint``, a context manager.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable, Optional, TypeVar, Union

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.impact import Category, Impact
from otel_sentry_biz.operations import ExceptionTypes, operation

_logger = logging.getLogger("otel_sentry_biz.monitors")

F = TypeVar("F", bound=Callable[..., Any])

#: Slow thresholds by kind of work: the design-spot seed warns on API answers over 2 s; a
#: single database operation over half a second is what the duration rule's docs call slow.
API_THRESHOLD_MS = 2000.0
DB_THRESHOLD_MS = 500.0
#: Sentry op of an endpoint's span when it runs below the request's span (not its root).
NESTED_ENDPOINT_OP = "function"
#: Sentry op of a module's operations: a ``function`` span, named apart per module.
MODULE_OP = "function.{module}"


class module:
    """The operations of one module of an app (``sales``, ``inventory``), from one factory.

    >>> inventory = biz.module("inventory", category="data_quality", warehouse="north")
    >>> @inventory.operation("adjust_stock", impact="HIGH")
    ... def adjust_stock(item, delta): ...

    Its operations are named ``<module>.<name>``, carry the business key ``module`` (tag
    ``module``) and the module's ``attrs``, have op ``function.<module>`` unless ``op`` says
    otherwise, and inherit the module's ``impact`` and ``category`` unless they set their own.
    """

    __slots__ = ("_attrs", "_category", "_impact", "_op", "name")

    def __init__(
        self,
        name: str,
        *,
        op: Optional[str] = None,
        impact: Optional[Union[Impact, str]] = None,
        category: Optional[Union[Category, str]] = None,
        **attrs: Any,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"module name {name!r}: give a short name, e.g. module('sales')")
        self.name = name
        self._op = op or MODULE_OP.format(module=name)
        # Parsed now so a typo fails when the module is declared, not when it is used.
        self._impact = Impact.parse(impact) if impact is not None else None
        self._category = Category.parse(category) if category is not None else None
        self._attrs = attrs

    def operation(
        self,
        name: str,
        *,
        op: Optional[str] = None,
        impact: Optional[Union[Impact, str]] = None,
        category: Optional[Union[Category, str]] = None,
        **options: Any,
    ) -> operation:
        """An :func:`~otel_sentry_biz.operation` of this module (same arguments)."""
        return operation(
            f"{self.name}.{name}",
            op=op or self._op,
            impact=impact if impact is not None else self._impact,
            category=category if category is not None else self._category,
            **{**self._attrs, "module": self.name, **options},
        )

    def __repr__(self) -> str:
        return f"<biz.module {self.name!r}>"


def db_operation(
    name: str,
    *,
    table: Optional[str] = None,
    system: Optional[str] = None,
    threshold_ms: Optional[float] = DB_THRESHOLD_MS,
    impact: Optional[Union[Impact, str]] = None,
    category: Optional[Union[Category, str]] = None,
    **attrs: Any,
) -> operation:
    """A business database operation: op ``db``, slow past ``threshold_ms`` (500 by default).

    >>> @biz.db_operation("reserve_stock", table="inventory", system="postgresql")
    ... def reserve(item_id, quantity): ...

    The span carries the semantic-convention names ``db.operation.name``,
    ``db.collection.name`` (``table``) and ``db.system.name`` (``system``); the queries that
    run inside (instrumented by SQLAlchemy or another instrumentor) are its children.
    ``threshold_ms=None`` turns the slow check off.
    """
    return operation(
        name,
        op="db",
        impact=impact,
        category=category,
        threshold_ms=threshold_ms,
        attributes={
            "db.operation.name": name,
            "db.collection.name": table,
            "db.system.name": system,
        },
        **attrs,
    )


def api_endpoint(
    name: Optional[Union[str, Callable[..., Any]]] = None,
    *,
    threshold_ms: Optional[float] = API_THRESHOLD_MS,
    impact: Optional[Union[Impact, str]] = None,
    category: Optional[Union[Category, str]] = None,
    expected: ExceptionTypes = (),
    **attrs: Any,
) -> Any:
    """Monitor a view or handler (sync or async): errors, slowness, the ``endpoint`` tag.

    >>> @biz.api_endpoint("create_booking", impact="HIGH", threshold_ms=1500)
    ... async def create_booking(request): ...
    >>> @biz.api_endpoint            # named after the function
    ... def health(request): ...

    Where the request already has a span, the endpoint joins it rather than claim a second
    incoming call. When the request's SERVER span is current (opened by our middleware,
    contrib's or a framework's), the endpoint *enriches* it: ``biz.endpoint``,
    ``impact``/``category`` (never overwriting) and the business context of the spans
    started inside; its status stays the instrumentation's, which knows the HTTP answer.
    When another span is current (FastAPI's own ``fastapi.endpoint`` span sits between), the
    endpoint opens a child span (op ``function``). With no span at all, it opens the
    request's SERVER span (op ``http.server``), which becomes the Sentry transaction.

    An exception is recorded as an error (once: the Sentry bridge merges it with the
    instrumentation's own record) and re-raised. Exceptions that are the endpoint's answer
    are not errors: those carrying a 4xx ``status_code`` (FastAPI's and Starlette's
    ``HTTPException``, DRF's exceptions) and the ``expected`` types (e.g. Django's
    ``Http404``). A call over ``threshold_ms`` (2000 by default; None: off) is a
    ``slow_operation`` violation grouped by endpoint.
    """

    def decorate(func: F) -> F:
        endpoint = name if isinstance(name, str) else getattr(func, "__name__", "endpoint")
        return _Endpoint(
            endpoint,
            op="http.server",
            kind=SpanKind.SERVER,
            impact=impact,
            category=category,
            threshold_ms=threshold_ms,
            expected=expected,
            endpoint=endpoint,
            **attrs,
        )(func)

    if callable(name):  # used bare: @biz.api_endpoint
        return decorate(name)
    # Validated now: a bad argument fails where the endpoint is declared, not in a request.
    _Endpoint(
        name or "endpoint",
        impact=impact,
        category=category,
        threshold_ms=threshold_ms,
        expected=expected,
    )
    return decorate


class _Endpoint(operation):
    """An operation that becomes, enriches or joins the span of the request it serves."""

    __slots__ = ()

    def _open(self, ctx: Optional[Context]) -> tuple[AbstractContextManager[Any], trace.Span, bool]:
        current = trace.get_current_span()
        if not current.is_recording():
            return super()._open(ctx)  # the request's root: a SERVER span, op http.server
        if getattr(current, "kind", None) is SpanKind.SERVER:
            try:
                existing: Mapping[str, Any] = getattr(current, "attributes", None) or {}
                # The instrumentation's op (http.server, inferred) stands; the rest fills gaps.
                added = {k: v for k, v in self._span_attrs.items() if k != attr.SENTRY_OP}
                added.update(attr.business_attributes(self._attrs))
                current.set_attributes({k: v for k, v in added.items() if k not in existing})
            except Exception:
                _logger.exception("could not enrich the request span of %r", self._name)
            return nullcontext(), current, False
        # Inside the request, below its SERVER span (a framework's own handler spans): a
        # handler span, since a second SERVER span would claim a second incoming call.
        return self._start(
            ctx, SpanKind.INTERNAL, {**self._span_attrs, attr.SENTRY_OP: NESTED_ENDPOINT_OP}
        )

    def _is_failure(self, exc: BaseException) -> bool:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            return False  # the endpoint answered 4xx on purpose: the client's mistake
        return super()._is_failure(exc)
