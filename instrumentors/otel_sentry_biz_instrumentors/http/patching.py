"""Patching with an exact undo: wrap a method with ``wrapt``, unwrap only our own wrapper.

``unwrap`` restores the very function object that was there before (tests check identity).
If some other tool wrapped the method over ours afterwards, removing ours would remove theirs
too, so it is left in place (its instrumentor makes it pass every call through) and a warning
says so.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import wrapt

_logger = logging.getLogger("otel_sentry_biz.instrumentors.http.patching")

_MARK = "_otel_sentry_biz_wrapper"


def wrap(owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
    """Wrap ``owner.name`` with ``wrapper(wrapped, instance, args, kwargs)``, once."""
    if _ours(owner.__dict__.get(name)):
        return
    setattr(wrapper, _MARK, True)
    wrapt.wrap_function_wrapper(owner, name, wrapper)


def unwrap(owner: Any, name: str) -> None:
    """Put back what :func:`wrap` replaced; a no-op when ``owner.name`` is not wrapped by us."""
    current = owner.__dict__.get(name)
    if _ours(current):
        setattr(owner, name, current.__wrapped__)
        return
    inner = getattr(current, "__wrapped__", None)
    while inner is not None:
        if _ours(inner):
            _logger.warning(
                "%s.%s was wrapped again by another tool after otel-sentry-biz; "
                "uninstrument that tool first to remove both wrappers",
                getattr(owner, "__qualname__", owner),
                name,
            )
            return
        inner = getattr(inner, "__wrapped__", None)


def _ours(value: Any) -> bool:
    return isinstance(value, wrapt.FunctionWrapper) and getattr(value._self_wrapper, _MARK, False)
