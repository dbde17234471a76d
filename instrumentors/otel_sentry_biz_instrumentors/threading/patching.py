"""Wrap a class's method with ``wrapt`` and take exactly that wrapper off again.

``opentelemetry.instrumentation.utils.unwrap``, which contrib instrumentors use, replaces the
attribute with whatever the *outermost* wrapper wraps: it assumes it is the last one in. When
ours and contrib's both wrap ``Thread.start`` and contrib is undone first while ours is
outermost, contrib strips our wrapper and leaves its own. So :func:`wrap` puts our wrapper
*beneath* any already there (where an outermost-stripping unwrap never reaches it), and
:func:`unwrap` finds it anywhere in the stack and splices it out: the instrumentors can be
undone in any order and the last one out leaves the original function.
"""

from __future__ import annotations

from typing import Any, Callable

from wrapt import FunctionWrapper, wrap_function_wrapper

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def wrap(owner: type, name: str, wrapper: Wrapper) -> None:
    """Wrap ``owner.name`` (defined on ``owner`` itself) with ``wrapper``, innermost."""
    if name not in vars(owner):
        raise AttributeError(f"{owner.__qualname__}.{name} is inherited: wrap the defining class")
    outer: Any = None
    current = vars(owner)[name]
    while hasattr(current, "_self_wrapper"):
        outer, current = current, current.__wrapped__
    if outer is None:
        wrap_function_wrapper(owner, name, wrapper)
    else:
        outer.__wrapped__ = FunctionWrapper(current, wrapper)


def unwrap(owner: type, name: str, wrapper: Wrapper) -> bool:
    """Take ``wrapper`` off ``owner.name`` wherever it is in the stack; False if it was not on."""
    outer: Any = None
    current = vars(owner).get(name)
    while current is not None and hasattr(current, "_self_wrapper"):
        if current._self_wrapper is wrapper:
            inner = current.__wrapped__
            if outer is None:
                setattr(owner, name, inner)
            else:
                outer.__wrapped__ = inner
            return True
        outer, current = current, current.__wrapped__
    return False


def wrapped_by(function: Any, module: str) -> bool:
    """True when a wrapper defined in ``module`` is anywhere in ``function``'s wrapper stack."""
    while function is not None and hasattr(function, "_self_wrapper"):
        if getattr(function._self_wrapper, "__module__", None) == module:
            return True
        function = function.__wrapped__
    return False
