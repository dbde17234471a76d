"""Business context: domain facts carried in the OTel Context onto every span started inside.

>>> with biz.context(work_request="WR-1001", customer="ACME", propagate=["customer"]):
...     handle()  # every span started here carries biz.work_request and biz.customer

Values live in the OTel :class:`~opentelemetry.context.Context` (so they follow threads, tasks
and instrumentors that carry the context), never in globals. Keys named in ``propagate`` also
travel to other services as W3C baggage entries ``biz.<key>``; sensitive keys never do.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Callable, Optional, TypeVar, Union

from opentelemetry import baggage, trace
from opentelemetry.context import Context, attach, create_key, detach, get_value, set_value

from otel_sentry_biz.attributes import BIZ_PREFIX, biz_key, business_attributes

_logger = logging.getLogger("otel_sentry_biz.context")

_BUSINESS_KEY = create_key("otel_sentry_biz.business")
_EMPTY: Mapping[str, Any] = MappingProxyType({})

F = TypeVar("F", bound=Callable[..., Any])

#: Key fragments that mark a business key as sensitive: never sent as baggage (baggage crosses
#: process and organisation boundaries in plain text headers).
DEFAULT_SENSITIVE_KEY_PATTERN = (
    r"pass(word|wd)?|secret|token|api[_-]?key|auth|credential|session|cookie|email|e_mail|phone|"
    r"ssn|social_security|card|iban|account_number|cvv|pin\b|dob|birth|address"
)
_sensitive = re.compile(DEFAULT_SENSITIVE_KEY_PATTERN, re.IGNORECASE)


def set_sensitive_keys(extra: Iterable[str] = ()) -> None:
    """Mark more business keys as sensitive, on top of the default pattern.

    Called by :func:`otel_sentry_biz.configure` from ``OTEL_SENTRY_BIZ_SENSITIVE_KEYS``.
    """
    global _sensitive
    parts = [DEFAULT_SENSITIVE_KEY_PATTERN, *(re.escape(key) for key in extra if key)]
    _sensitive = re.compile("|".join(parts), re.IGNORECASE)


def is_sensitive(key: str) -> bool:
    """True when ``key`` must never leave the process as baggage."""
    return _sensitive.search(key) is not None


def current_business(ctx: Optional[Context] = None) -> Mapping[str, Any]:
    """Business attributes (``biz.``-prefixed) of ``ctx`` or the current context.

    Local :func:`context` values win; ``biz.*`` baggage received from an upstream service fills
    in what is not set locally.
    """
    local = get_value(_BUSINESS_KEY, ctx)
    if local is not None:
        return local  # context() already merged the baggage present when it was entered
    return _baggage_business(ctx)


def _baggage_business(ctx: Optional[Context]) -> Mapping[str, Any]:
    entries = baggage.get_all(ctx)
    if not entries:
        return _EMPTY
    found = {k: v for k, v in entries.items() if k.startswith(BIZ_PREFIX)}
    return MappingProxyType(found) if found else _EMPTY


def context_with(
    attrs: Mapping[str, Any],
    *,
    propagate: Union[Iterable[str], bool] = (),
    ctx: Optional[Context] = None,
) -> Context:
    """Return a new Context carrying ``attrs`` on top of the business context of ``ctx``.

    The building block of :func:`context`; useful to instrumentors that restore context in a
    worker. Never raises for bad values: they are coerced or skipped.
    """
    merged = dict(current_business(ctx))
    added = business_attributes(attrs)
    merged.update(added)
    new_ctx = set_value(_BUSINESS_KEY, MappingProxyType(merged), ctx)
    if propagate is True:
        keys: Iterable[str] = list(added)
    elif propagate is False:
        keys = ()
    else:
        # One key may be given as a plain string: propagate="customer".
        keys = (
            [biz_key(propagate)] if isinstance(propagate, str) else [biz_key(k) for k in propagate]
        )
    for key in keys:
        if key not in added:
            continue
        if is_sensitive(key[len(BIZ_PREFIX) :]):
            _logger.warning(
                "business key %r looks sensitive and is not propagated as baggage; "
                "remove it from propagate= or rename it",
                key[len(BIZ_PREFIX) :],
            )
            continue
        new_ctx = baggage.set_baggage(key, str(added[key]), new_ctx)
    return new_ctx


class context:
    """Attach business attributes to every span started inside; a context manager or decorator.

    >>> with biz.context(customer="ACME", amount=Decimal("120.50")):
    ...     process()
    >>> @biz.context(module="billing")
    ... async def close_month(): ...

    ``propagate`` names keys (or ``True`` for all) that also travel downstream as W3C baggage;
    keys that look sensitive (emails, tokens, card numbers, ...) are never propagated.
    """

    __slots__ = ("_attrs", "_propagate", "_tokens")

    def __init__(self, propagate: Union[Iterable[str], bool] = (), **attrs: Any) -> None:
        self._attrs = attrs
        if isinstance(propagate, str):  # one key given as a plain string
            propagate = (propagate,)
        self._propagate = propagate if isinstance(propagate, bool) else tuple(propagate)
        self._tokens: list[object] = []

    def __enter__(self) -> context:
        try:
            new_ctx = context_with(self._attrs, propagate=self._propagate)
        except Exception:  # never break the app for its monitoring
            _logger.exception("could not build the business context; continuing without it")
            self._tokens.append(None)
            return self
        self._tokens.append(attach(new_ctx))
        return self

    def __exit__(self, *exc_info: object) -> None:
        token = self._tokens.pop()
        if token is not None:
            detach(token)

    async def __aenter__(self) -> context:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with context(self._propagate, **self._attrs):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with context(self._propagate, **self._attrs):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def record(**attrs: Any) -> None:
    """Set business facts on the current span (``biz.<key>`` attributes).

    >>> biz.record(amount=1520.0, quantity=12)

    Does nothing when no span is recording; never raises into the caller.
    """
    try:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(business_attributes(attrs))
    except Exception:
        _logger.exception("could not record business attributes")
