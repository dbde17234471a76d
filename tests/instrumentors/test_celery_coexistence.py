"""With opentelemetry-instrumentation-celery active too: its spans, enriched; never two spans."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.app.base import Celery
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor
from tests.instrumentors.celery_app import memory_app, memory_worker, of_task, wait_for_runs

contrib = pytest.importorskip(
    "opentelemetry.instrumentation.celery",
    reason="pip install opentelemetry-instrumentation-celery for the coexistence tests",
)
CONTRIB_SCOPE = "opentelemetry.instrumentation.celery"
OUR_SCOPE = "otel_sentry_biz_instrumentors.celery"


@pytest.fixture(scope="module")
def queue() -> str:
    return f"otel-sentry-biz-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def app(queue: str) -> Celery:
    return memory_app(queue)


@pytest.fixture(scope="module")
def worker(app: Celery) -> Iterator[Any]:
    with memory_worker(app) as running:
        yield running


@pytest.fixture(params=["contrib first", "ours first"])
def both(request: pytest.FixtureRequest) -> Iterator[None]:
    """Both instrumentors active, instrumented in either order (opentelemetry-instrument's
    entry-point order is not ours to choose)."""
    ours, theirs = CeleryInstrumentor(), contrib.CeleryInstrumentor()
    order = [theirs, ours] if request.param == "contrib first" else [ours, theirs]
    for instrumentor in order:
        instrumentor.instrument()
    yield
    for instrumentor in reversed(order):
        instrumentor.uninstrument()


@pytest.fixture
def outer(tracer: trace.Tracer) -> Iterator[trace.Span]:
    with tracer.start_as_current_span("POST /orders") as span:
        yield span


def test_one_span_per_side_contribs_enriched_with_business_context(
    finished, app, worker, both, outer, queue
) -> None:
    with biz.context(customer="ACME", work_request="WR-7", propagate=["customer"]):
        result = app.tasks["tests.celery.traced"].delay("together")
    assert result.get(timeout=10, interval=0.01) == {"biz.customer": "ACME"}
    (run,) = wait_for_runs(finished, result.id)
    spans = finished.get_finished_spans()
    (sent,) = of_task(spans, result.id, SpanKind.PRODUCER)

    assert {s.instrumentation_scope.name for s in (run, sent)} == {CONTRIB_SCOPE}
    assert [s for s in spans if s.instrumentation_scope.name == OUR_SCOPE] == []
    assert run.parent.span_id == sent.context.span_id
    assert run.attributes["biz.customer"] == "ACME"
    for span, operation in ((sent, "send"), (run, "process")):
        assert span.attributes["messaging.operation.type"] == operation
        assert span.attributes["messaging.destination.name"] == queue
        assert span.attributes["messaging.system"] == "memory"
        assert span.attributes["celery.retries"] == 0


def test_failure_is_recorded_once_on_contribs_span(finished, app, worker, both, outer) -> None:
    result = app.tasks["tests.celery.boom"].delay()
    with pytest.raises(ConnectionError):
        result.get(timeout=10, interval=0.01)
    (run,) = wait_for_runs(finished, result.id)
    assert run.instrumentation_scope.name == CONTRIB_SCOPE
    assert run.status.status_code is StatusCode.ERROR
    assert [e.name for e in run.events] == ["exception"]
    assert run.attributes["biz.category"] == "integration"


def test_retries_show_on_contribs_spans(finished, app, worker, both, outer) -> None:
    result = app.tasks["tests.celery.flaky"].delay(1)
    assert result.get(timeout=10, interval=0.01) == 1
    runs = sorted(wait_for_runs(finished, result.id, 2), key=lambda s: s.start_time)
    assert len(of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)) == 2
    assert [e.name for e in runs[0].events] == ["celery.retry"]
    assert [s.attributes["celery.retries"] for s in runs] == [0, 1]


def test_turned_away_messages_are_ours_to_show(finished, app, worker, both, outer) -> None:
    result = app.send_task("tests.celery.nobody_runs_this")
    (rejected,) = wait_for_runs(finished, result.id)
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    assert sent.instrumentation_scope.name == CONTRIB_SCOPE
    assert rejected.name == "reject tests.celery.nobody_runs_this"
    assert rejected.parent.span_id == sent.context.span_id
