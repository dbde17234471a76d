"""BufferedSpanProcessor: hand finished spans to an exporter from a background thread.

The SDK's ``BatchSpanProcessor`` caps its queue at 2,048 spans and drops the rest when an app
produces spans faster than one export cycle; a request burst loses most of its traces. Here
the app thread only appends to a deque (no lock, no wake-up per span) within a budget of
``max_buffered_spans``; the worker drains it in batches. Beyond the budget spans are dropped
and counted, never blocking the app.

The worker is *polite*: in CPython it competes with the app for the GIL, so it works in
small batches and rests between them as the process's :class:`~otel_sentry_biz.pacer.Pacer`
says: at most a tenth of the time while the app keeps producing spans, at full speed as soon
as the app pauses, when the buffer passes three quarters of its budget, and on flush.
Measured by ``benchmarks/pipeline_overhead.py``.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from otel_sentry_biz.pacer import Pacer, shared_pacer
from otel_sentry_biz.spans import compact

_logger = logging.getLogger("otel_sentry_biz.span_buffer")


@contextmanager
def _collection_deferred() -> Iterator[None]:
    """Defer the cyclic garbage collector for one batch (a few milliseconds).

    Converting a batch allocates thousands of short-lived dicts while the buffered spans make
    a large live heap, so the collector would run many generation-1/2 passes over that heap
    per batch: measured, ~17 us of CPU per span, a fifth of the pipeline's cost. Deferred,
    the allocations are counted as usual and collected once after the batch. Only undone
    if we did it, so an app that runs with the collector off keeps it off.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BufferedSpanProcessor(SpanProcessor):
    """Buffer ended spans and export them in batches from one daemon thread.

    >>> provider.add_span_processor(BufferedSpanProcessor(SentrySpanExporter()))

    Threading: ``on_end`` runs on the app thread and only appends to a deque; ``export`` is
    only ever called from the worker thread or from ``force_flush``/``shutdown`` under a lock.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_buffered_spans: int = 30_000,
        batch_size: int = 64,
        schedule_delay_millis: float = 1000.0,
        pacer: Optional[Pacer] = None,
    ) -> None:
        if max_buffered_spans <= 0 or batch_size <= 0 or schedule_delay_millis <= 0:
            raise ValueError(
                "max_buffered_spans, batch_size and schedule_delay_millis must be positive"
            )
        # Small batches: the worker holds the GIL for one batch at a time (~3 ms here).
        self._pacer = pacer or shared_pacer()
        self._urgent = max_buffered_spans * 3 // 4
        self._exporter = exporter
        self._max = max_buffered_spans
        self._batch_size = batch_size
        self._delay = schedule_delay_millis / 1000.0
        self._buffer: deque[ReadableSpan] = deque()
        self._dropped = 0
        self._shutdown = False
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_fork_in_child() -> None:
                processor = weak_self()
                if processor is not None:
                    processor._reinit_after_fork()

            os.register_at_fork(after_in_child=_after_fork_in_child)

    @property
    def dropped_spans(self) -> int:
        """Spans dropped because the buffer was over budget."""
        return self._dropped

    @property
    def buffered_spans(self) -> int:
        return len(self._buffer)

    def on_start(self, span: Span, parent_context: object = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        buffer = self._buffer
        if len(buffer) >= self._max or self._shutdown:
            self._dropped += 1  # racy increment is fine: it is a statistic, read for reports
            if self._dropped == 1 or self._dropped % 10_000 == 0:
                _logger.warning(
                    "span buffer over its budget of %d spans: %d spans dropped so far "
                    "(raise OTEL_SENTRY_BIZ_MAX_BUFFERED_SPANS)",
                    self._max,
                    self._dropped,
                )
            return
        # Held as a compact copy: the collector walks what is buffered on every full pass.
        buffer.append(compact(span))
        self._pacer.arrivals += 1
        # Wake the worker once per batch crossing, not per span (Event.set takes a lock),
        # and end its rest when the buffer reaches the urgent mark: a rest (up to 0.5 s)
        # can outlast the time the app takes to fill the last quarter of the budget.
        size = len(buffer)
        if size == self._batch_size:
            self._wake.set()
        if size >= self._urgent and not self._hurry.is_set():  # >=: app threads may race
            self._hurry.set()

    def _start_worker(self) -> None:
        self._worker = threading.Thread(
            target=self._run, name="otel_sentry_biz.span_buffer", daemon=True
        )
        self._worker.start()

    def _reinit_after_fork(self) -> None:
        self._buffer = deque()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._hurry = threading.Event()
        if not self._shutdown:
            self._start_worker()

    def _run(self) -> None:
        while not self._shutdown:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._export_all(polite=True)
        self._export_all()

    def _export_all(self, polite: bool = False) -> None:
        buffer = self._buffer
        while buffer and not (polite and self._shutdown):
            with self._export_lock:
                started = time.thread_time()
                self._export_batch(buffer)
                spent = time.thread_time() - started
            if polite:
                self._hurry.clear()  # before the check: a crossing after it ends the rest
                self._pacer.rest(spent, urgent=len(buffer) >= self._urgent, until=self._hurry)

    def _export_batch(self, buffer: deque[ReadableSpan]) -> None:
        count = min(self._batch_size, len(buffer))
        batch = [buffer.popleft() for _ in range(count)]
        try:
            # The exporter's own work (HTTP to Sentry) must never produce spans.
            with suppress_instrumentation(), _collection_deferred():
                self._exporter.export(batch)
        except Exception:
            _logger.exception("exporter failed on a batch of %d spans", count)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._shutdown:
            return False
        deadline = time.monotonic() + timeout_millis / 1000.0
        self._export_all()
        remaining = max(0, int((deadline - time.monotonic()) * 1000))
        return bool(self._exporter.force_flush(remaining))

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._worker.join(timeout=30)
        self._export_all()
        self._exporter.shutdown()
