"""Carry the OTel context (and so the business context) from the thread that hands work off
to the thread that runs it.

Two hand-off points cover ``threading.Thread``, its subclasses, ``threading.Timer`` and
``concurrent.futures.ThreadPoolExecutor`` (``submit`` and ``map``, which submits):

* :func:`start`, wrapping ``Thread.start``: the starting thread's context is captured and
  attached around the new thread's ``run`` - the bound ``run`` the thread will call, so a
  subclass that overrides ``run`` (or ``Timer``) is covered without patching it.
* :func:`submit`, wrapping ``ThreadPoolExecutor.submit``: the submitting thread's context is
  attached around the task, whatever context the (reused) worker thread carries.

The captured context includes the suppress-instrumentation key, so work handed off by the
exporter's own thread stays untraced. When contrib's threading instrumentation already carries
the context at a hand-off point, these step aside instead of carrying it a second time.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, TypeVar

from opentelemetry import context

from .patching import wrapped_by

R = TypeVar("R")

#: Contrib's threading instrumentation: the module its wrappers are defined in.
CONTRIB_MODULE = "opentelemetry.instrumentation.threading"
_RUN = "run"


def in_context(ctx: context.Context, fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` that runs with ``ctx`` attached, detached again when it returns or raises."""

    def run_in_context(*args: Any, **kwargs: Any) -> R:
        token = context.attach(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            context.detach(token)

    return run_in_context


def start(wrapped: Callable[..., None], thread: Any, args: Any, kwargs: Any) -> None:
    """``Thread.start``: the new thread runs with the starting thread's context."""
    if _contrib_wraps(type(thread), _RUN):
        return wrapped(*args, **kwargs)  # contrib's run wrapper attaches the same context
    own = vars(thread)
    previous = own.get(_RUN)
    run = in_context(context.get_current(), thread.run)

    def run_then_restore() -> None:
        try:
            run()
        finally:  # the thread object must not keep the context (and its spans) alive
            _restore(own, previous, run_then_restore)

    own[_RUN] = run_then_restore  # what the new thread's ``self.run()`` finds first
    try:
        return wrapped(*args, **kwargs)
    except BaseException:  # not started (started twice, no threads left): as it was
        _restore(own, previous, run_then_restore)
        raise


def _restore(own: dict[str, Any], previous: Any, ours: Callable[[], None]) -> None:
    if own.get(_RUN) is not ours:
        return
    if previous is None:
        del own[_RUN]
    else:
        own[_RUN] = previous


def submit(wrapped: Callable[..., Any], executor: Any, args: Any, kwargs: Any) -> Any:
    """``ThreadPoolExecutor.submit``: the task runs with the submitting thread's context."""
    if not args or _contrib_wraps(type(executor), "submit"):
        return wrapped(*args, **kwargs)  # contrib's submit wrapper attaches the same context
    fn, *rest = args
    return wrapped(in_context(context.get_current(), fn), *rest, **kwargs)


def _contrib_wraps(owner: type, name: str) -> bool:
    """True when contrib's threading instrumentation wraps ``owner.name`` (as looked up)."""
    if CONTRIB_MODULE not in sys.modules:
        return False  # never imported, so not active: the common case costs one lookup
    return wrapped_by(inspect.getattr_static(owner, name, None), CONTRIB_MODULE)
