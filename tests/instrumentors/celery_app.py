"""The Celery app of the instrumentor tests: tasks, and the worker process's own tracing.

The real-worker tests start ``celery -A tests.instrumentors.celery_app worker`` against Redis;
the in-process tests build the same tasks on a memory broker with :func:`make_app`. A worker
started with ``OTEL_SENTRY_BIZ_TEST_SPANS=<path>`` sets up a TracerProvider in
``worker_process_init`` (sent by the solo pool too) that writes every finished span, judged by
a BusinessSpanProcessor, as one JSON line to that file; the test reads them back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

from celery import Celery
from celery.exceptions import Reject
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from otel_sentry_biz import BusinessSpanProcessor, current_business
from otel_sentry_biz.log_breadcrumbs import install_breadcrumbs

BROKER_VAR = "OTEL_SENTRY_BIZ_TEST_CELERY_BROKER"
BACKEND_VAR = "OTEL_SENTRY_BIZ_TEST_CELERY_BACKEND"
SPANS_VAR = "OTEL_SENTRY_BIZ_TEST_SPANS"
#: Set: the worker turns log records into breadcrumbs, installed as the module is imported.
BREADCRUMBS_VAR = "OTEL_SENTRY_BIZ_TEST_BREADCRUMBS"
#: Dedicated database numbers, so the tests never touch the data of other Redis users.
DEFAULT_BROKER = "redis://127.0.0.1:6379/5"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/6"

_tracer = trace.get_tracer("tests.instrumentors.celery_app")


def make_app(broker: str, backend: str, **conf: Any) -> Celery:
    """A Celery app with the test tasks registered (on this app only)."""
    app = Celery("tests.instrumentors.celery_app", broker=broker, backend=backend)
    settings: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "result_expires": 600,
    }
    app.conf.update({**settings, **conf})

    @app.task(name="tests.celery.traced", shared=False)
    def traced(label: str) -> dict[str, Any]:
        """Start a span inside the task; return the business context the task sees."""
        with _tracer.start_as_current_span(f"inside {label}"):
            return dict(current_business())

    @app.task(name="tests.celery.flaky", bind=True, max_retries=3, shared=False)
    def flaky(self: Any, failures: int) -> int:
        """Fail ``failures`` times with a retry, then succeed; return the attempt number."""
        if self.request.retries < failures:
            raise self.retry(exc=ConnectionError("inventory API unreachable"), countdown=0)
        return self.request.retries

    @app.task(name="tests.celery.boom", shared=False)
    def boom() -> None:
        raise ConnectionError("warehouse API unreachable")

    @app.task(name="tests.celery.invalid", shared=False)
    def invalid(value: str) -> None:
        raise ValueError(f"invalid quantity {value!r}")

    @app.task(name="tests.celery.expected", throws=(LookupError,), shared=False)
    def expected(sku: str) -> None:
        """Fails with an error the task declares as expected (Celery logs it at INFO)."""
        raise LookupError(f"no stock record for {sku}")

    @app.task(name="tests.celery.reject", shared=False)
    def reject() -> None:
        raise Reject(ValueError("malformed order"), requeue=False)

    @app.task(name="tests.celery.logs_then_fails", shared=False)
    def logs_then_fails(order: str) -> None:
        """Log through a plain logger and Celery's task logger (which does not propagate)."""
        logging.getLogger("shop.orders").info("reserving stock for %s", order)
        get_task_logger("shop.tasks").warning("payment slow for %s", order)
        raise ConnectionError("payment API unreachable")

    @app.task(name="tests.celery.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    return app


if os.environ.get(BREADCRUMBS_VAR):
    # What biz.configure() at the top of an app module does for logs: it runs before the
    # worker sets up logging, which replaces the root logger's handlers.
    install_breadcrumbs()

app = make_app(
    os.environ.get(BROKER_VAR, DEFAULT_BROKER),
    os.environ.get(BACKEND_VAR, DEFAULT_BACKEND),
    worker_hijack_root_logger=True,  # the default of `celery worker`, which starts this app
)


def memory_app(queue: str, **conf: Any) -> Celery:
    """The test tasks on kombu's in-process memory broker: no Redis, no network."""
    return make_app(
        "memory://",
        "cache+memory://",
        task_default_queue=queue,
        broker_transport_options={"polling_interval": 0.01},
        **conf,
    )


@contextmanager
def memory_worker(app: Celery, loglevel: str = "CRITICAL") -> Iterator[Any]:
    """An in-process worker thread (solo pool) consuming ``app``'s default queue.

    Celery's worker set-up configures the root logger (level, a stderr handler) and its task
    logger; they are put back afterwards so later tests see logging as they left it.
    """
    from celery.contrib.testing.worker import start_worker

    root, task_logger = logging.getLogger(), logging.getLogger("celery.task")
    level, handlers = root.level, list(root.handlers)
    task_state = task_logger.level, list(task_logger.handlers), task_logger.propagate
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, loglevel=loglevel, shutdown_timeout=10
        ) as worker:
            try:
                yield worker
            finally:
                # Wake the worker's loop with a remote shutdown, or it only notices after its
                # 2-second poll (twice).
                app.control.shutdown(destination=[worker.hostname])
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        task_logger.setLevel(task_state[0])
        task_logger.handlers[:], task_logger.propagate = task_state[1], task_state[2]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


class JsonLinesExporter(SpanExporter):
    """Append each span as one JSON line; the test process reads the file back."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_record(span), default=str) + "\n" for span in spans]
        with self._lock, open(self._path, "a", encoding="utf-8") as out:
            out.writelines(lines)
            out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(span: ReadableSpan) -> dict[str, Any]:
    context, parent = span.context, span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "attributes": dict(event.attributes or {})}
            for event in span.events
        ],
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "written_at": time.time(),
    }


@worker_process_init.connect(weak=False)
def _trace_this_worker(**_: Any) -> None:
    path = os.environ.get(SPANS_VAR)
    if not path:
        return  # not a test worker process (the in-process tests trace through conftest)
    from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor

    provider = TracerProvider()
    provider.add_span_processor(
        BusinessSpanProcessor(next=SimpleSpanProcessor(JsonLinesExporter(path)))
    )
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)


def of_task(spans: Sequence[ReadableSpan], task_id: str, kind: SpanKind) -> list[ReadableSpan]:
    """The spans of ``kind`` about task ``task_id`` (by ``messaging.message.id``)."""
    return [
        span
        for span in spans
        if span.kind is kind and (span.attributes or {}).get("messaging.message.id") == task_id
    ]


def wait_for_runs(exporter: Any, task_id: str, count: int = 1) -> list[ReadableSpan]:
    """Wait until ``count`` CONSUMER spans of ``task_id`` reached the in-memory ``exporter``.

    A task's result is stored before ``task_postrun`` ends its span: a test that has the
    result must still wait for the span.
    """

    def done() -> list[ReadableSpan]:
        runs = of_task(exporter.get_finished_spans(), task_id, SpanKind.CONSUMER)
        return runs if len(runs) >= count else []

    return wait_until(done, what=f"{count} consumer span(s) of task {task_id}")
