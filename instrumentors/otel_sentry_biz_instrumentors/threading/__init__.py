"""threading instrumentation: the OTel context, and the business context in it, follows work
into other threads.

>>> from otel_sentry_biz_instrumentors.threading import ThreadingInstrumentor
>>> ThreadingInstrumentor().instrument()   # or: opentelemetry-instrument

A span started in a ``threading.Thread`` (or a subclass overriding ``run``), a
``threading.Timer`` or a ``concurrent.futures.ThreadPoolExecutor`` task (``submit`` or ``map``,
pools nested in pools too) is a child of the span that was current where the work was handed
off, and carries the same ``biz.*`` context. No spans of its own. Coexists with contrib's
``opentelemetry-instrumentation-threading``: a hand-off point contrib covers is left to it,
and both can be uninstrumented in any order. See ``docs/instrumentors/threading.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .handoff import start, submit
from .package import _instruments
from .patching import unwrap, wrap
from .version import __version__


class ThreadingInstrumentor(BaseInstrumentor):
    """Carries the OTel context into threads, timers and thread-pool tasks."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        self._instrument_thread()
        self._instrument_thread_pool()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._uninstrument_thread()
        self._uninstrument_thread_pool()

    @staticmethod
    def _instrument_thread() -> None:
        wrap(threading.Thread, "start", start)  # Timer and subclasses start through it

    @staticmethod
    def _uninstrument_thread() -> None:
        unwrap(threading.Thread, "start", start)

    @staticmethod
    def _instrument_thread_pool() -> None:
        from concurrent.futures import ThreadPoolExecutor

        wrap(ThreadPoolExecutor, "submit", submit)  # map submits

    @staticmethod
    def _uninstrument_thread_pool() -> None:
        from concurrent.futures import ThreadPoolExecutor

        unwrap(ThreadPoolExecutor, "submit", submit)


__all__ = ["ThreadingInstrumentor", "__version__"]
