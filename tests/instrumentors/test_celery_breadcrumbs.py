"""What a task logged shows up as breadcrumbs of its error, after the worker set up logging.

A Celery worker starts after ``configure()`` (the app module configures, then the worker
loads it) and, by default, replaces the root logger's handlers (``worker_hijack_root_logger``);
Celery's task loggers do not propagate to the root at all. Neither may cost the breadcrumbs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from otel_sentry_biz.log_breadcrumbs import install_breadcrumbs, uninstall_breadcrumbs
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor
from tests.instrumentors.celery_app import memory_app, memory_worker, wait_until
from tests.relay_oracle import assert_valid

TASK_LINES = ["reserving stock for O-7", "payment slow for O-7"]


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


@pytest.fixture
def to_sentry(use_processor, receiver: LocalReceiver) -> Iterator[BusinessSpanProcessor]:
    """This process's spans go to the receiver, and log records become breadcrumbs."""
    processor = BusinessSpanProcessor(BufferedSpanProcessor(SentrySpanExporter(dsn=receiver.dsn)))
    use_processor.target = processor
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    install_breadcrumbs()  # what configure() does, before any worker starts
    try:
        yield processor
    finally:
        uninstall_breadcrumbs()
        instrumentor.uninstrument()
        processor.shutdown()


def test_an_in_process_worker_keeps_the_task_log_lines_as_breadcrumbs(to_sentry, receiver):
    app = memory_app(f"otel-sentry-biz-test-{uuid.uuid4().hex[:8]}", worker_hijack_root_logger=True)
    with memory_worker(app, loglevel="INFO"):
        result = app.tasks["tests.celery.logs_then_fails"].delay("O-7")
        with pytest.raises(ConnectionError):
            result.get(timeout=10)

        def error_event() -> list[dict]:
            to_sentry.force_flush()  # the task's span ends just after its result is stored
            return [event for event in receiver.events() if "exception" in event]

        (error,) = wait_until(error_event, what="the task's error event")

    messages = [crumb["message"] for crumb in error["breadcrumbs"]["values"]]
    assert [message for message in messages if message in TASK_LINES] == TASK_LINES
    assert error["exception"]["values"][-1]["type"] == "ConnectionError"
    assert_valid(error)
