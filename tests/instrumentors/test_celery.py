"""CeleryInstrumentor against an in-process worker on the memory broker (no Redis needed).

The worker is Celery's own test worker (``celery.contrib.testing.worker``): a real consumer
and solo pool in a thread, receiving real messages through kombu's memory transport, so the
headers travel exactly as they would through a broker.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals
from celery.app.base import Celery
from celery.exceptions import WorkerLostError
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.dependencies import DependencyConflictError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor
from tests.instrumentors.celery_app import (
    make_app,
    memory_app,
    memory_worker,
    of_task,
    wait_for_runs,
    wait_until,
)

SCOPE = "otel_sentry_biz_instrumentors.celery"
WORKER_SIGNALS = (
    "before_task_publish",
    "after_task_publish",
    "task_prerun",
    "task_postrun",
    "task_failure",
    "task_internal_error",
    "task_retry",
    "task_revoked",
    "task_unknown",
    "task_rejected",
)


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


@pytest.fixture
def instrumented() -> Iterator[CeleryInstrumentor]:
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def outer(tracer: trace.Tracer) -> Iterator[trace.Span]:
    with tracer.start_as_current_span("POST /orders") as span:
        yield span


def exceptions(span: ReadableSpan) -> list[dict[str, Any]]:
    return [dict(event.attributes or {}) for event in span.events if event.name == "exception"]


# -- the package ----------------------------------------------------------------------------


def test_importing_the_instrumentor_does_not_import_celery() -> None:
    code = (
        "import sys, otel_sentry_biz_instrumentors.celery as m; m.CeleryInstrumentor; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('celery', 'kombu')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_instrumentation_dependencies_name_celery_5() -> None:
    assert list(CeleryInstrumentor().instrumentation_dependencies()) == ["celery >= 5.0, < 6.0"]


def test_unsupported_celery_is_left_alone_even_when_the_loader_skips_the_check(
    monkeypatch,
) -> None:
    # opentelemetry-instrument checks our distribution, not this library, then passes
    # skip_dep_check=True: the instrumentor must check Celery itself.
    import otel_sentry_biz_instrumentors.celery as package

    monkeypatch.setattr(package, "_instruments", ("celery >= 99",))
    original = Celery.send_task
    instrumentor = CeleryInstrumentor()
    with pytest.raises(DependencyConflictError):
        instrumentor.instrument(skip_dep_check=True)
    instrumentor.instrument()  # the manual path: BaseInstrumentor logs the conflict
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert Celery.send_task is original
    instrumentor.uninstrument()


def test_uninstrument_leaves_celery_exactly_as_it_was() -> None:
    original = Celery.send_task
    before = {name: len(getattr(signals, name).receivers) for name in WORKER_SIGNALS}
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    instrumentor.instrument()  # idempotent: no second wrapper, no second receiver
    assert Celery.send_task.__wrapped__ is original
    assert {n: len(getattr(signals, n).receivers) for n in WORKER_SIGNALS} == {
        name: count + 1 for name, count in before.items()
    }
    instrumentor.uninstrument()
    instrumentor.uninstrument()
    assert Celery.send_task is original
    assert {name: len(getattr(signals, name).receivers) for name in WORKER_SIGNALS} == before


def test_no_spans_once_uninstrumented(finished, app, worker) -> None:
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    instrumentor.uninstrument()
    assert app.tasks["tests.celery.add"].delay(2, 3).get(timeout=10, interval=0.01) == 5
    assert [s for s in finished.get_finished_spans() if s.instrumentation_scope.name == SCOPE] == []


# -- one trace, business context restored ---------------------------------------------------


def test_task_runs_in_the_senders_trace_with_the_propagated_business_keys(
    finished, app, worker, instrumented, outer, queue
) -> None:
    with biz.context(customer="ACME", work_request="WR-7", propagate=["customer"]):
        result = app.tasks["tests.celery.traced"].delay("order")
    seen_by_task = result.get(timeout=10, interval=0.01)
    (run,) = wait_for_runs(finished, result.id)
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    (inside,) = [s for s in finished.get_finished_spans() if s.name == "inside order"]

    assert seen_by_task == {"biz.customer": "ACME"}  # work_request was not chosen to travel
    assert sent.name == "apply_async tests.celery.traced"
    assert sent.parent.span_id == outer.get_span_context().span_id
    assert run.name == "run tests.celery.traced"
    assert run.context.trace_id == sent.context.trace_id == outer.get_span_context().trace_id
    assert run.parent.span_id == sent.context.span_id
    assert inside.parent.span_id == run.context.span_id
    assert sent.attributes["biz.work_request"] == "WR-7"  # local keys stay on local spans
    assert run.attributes["biz.customer"] == inside.attributes["biz.customer"] == "ACME"
    assert "biz.work_request" not in run.attributes
    assert {k: v for k, v in sent.attributes.items() if not k.startswith("biz.")} == {
        "celery.action": "apply_async",
        "celery.task_name": "tests.celery.traced",
        "celery.retries": 0,
        "messaging.system": "memory",
        "messaging.operation.type": "send",
        "messaging.operation.name": "apply_async",
        "messaging.destination.name": queue,
        "messaging.message.id": result.id,
    }
    assert {k: v for k, v in run.attributes.items() if not k.startswith("biz.")} == {
        "celery.action": "run",
        "celery.task_name": "tests.celery.traced",
        "celery.retries": 0,
        "celery.state": "SUCCESS",
        "messaging.system": "memory",
        "messaging.operation.type": "process",
        "messaging.operation.name": "run",
        "messaging.destination.name": queue,
        "messaging.message.id": result.id,
    }


def test_sensitive_business_keys_never_travel_with_the_task(
    finished, app, worker, instrumented, outer
) -> None:
    with biz.context(customer="ACME", customer_email="ceo@acme.example", propagate=True):
        result = app.tasks["tests.celery.traced"].delay("sensitive")
    assert result.get(timeout=10, interval=0.01) == {"biz.customer": "ACME"}


def test_business_keys_travel_even_when_the_global_propagator_has_no_baggage(
    finished, app, worker, instrumented, outer
) -> None:
    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    try:
        with biz.context(customer="ACME", propagate=["customer"]):
            result = app.tasks["tests.celery.traced"].delay("no-baggage")
        seen_by_task = result.get(timeout=10, interval=0.01)
        (run,) = wait_for_runs(finished, result.id)
    finally:
        propagate.set_global_textmap(saved)
    assert seen_by_task == {"biz.customer": "ACME"}
    assert run.context.trace_id == outer.get_span_context().trace_id


def test_eager_task_runs_as_a_child_of_the_current_span(finished, instrumented, outer) -> None:
    eager = make_app("memory://", "cache+memory://", task_always_eager=True)
    with biz.context(customer="ACME"):
        assert eager.tasks["tests.celery.traced"].delay("eager").get() == {"biz.customer": "ACME"}
    (run,) = [s for s in finished.get_finished_spans() if s.name == "run tests.celery.traced"]
    assert run.parent.span_id == outer.get_span_context().span_id
    assert run.attributes["biz.customer"] == "ACME"


def test_eager_retries_make_one_run_span_per_attempt(finished, instrumented, outer) -> None:
    eager = make_app("memory://", "cache+memory://", task_always_eager=True)
    assert eager.tasks["tests.celery.flaky"].delay(2).get() == 2
    runs = [s for s in finished.get_finished_spans() if s.name == "run tests.celery.flaky"]
    assert [s.attributes["celery.state"] for s in runs] == ["RETRY", "RETRY", "SUCCESS"]
    assert {s.parent.span_id for s in runs} == {outer.get_span_context().span_id}
    assert trace.get_current_span() is outer  # every attach was detached


def test_suppressed_instrumentation_sends_without_a_span(finished, app, worker, instrumented):
    with suppress_instrumentation():
        result = app.tasks["tests.celery.add"].delay(1, 1)
    assert result.get(timeout=10, interval=0.01) == 2
    assert of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER) == []


# -- outcomes -------------------------------------------------------------------------------


def test_retries_chain_every_attempt_into_one_trace(
    finished, app, worker, instrumented, outer
) -> None:
    result = app.tasks["tests.celery.flaky"].delay(2)
    assert result.get(timeout=10, interval=0.01) == 2
    runs = sorted(wait_for_runs(finished, result.id, 3), key=lambda s: s.start_time)
    sends = sorted(
        of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER),
        key=lambda s: s.start_time,
    )

    assert [s.attributes["celery.retries"] for s in runs] == [0, 1, 2]
    assert [s.attributes["celery.retries"] for s in sends] == [0, 1, 2]
    assert [s.attributes["celery.state"] for s in runs] == ["RETRY", "RETRY", "SUCCESS"]
    assert {s.context.trace_id for s in runs + sends} == {outer.get_span_context().trace_id}
    for attempt, run in enumerate(runs):  # send -> run -> (retry) send -> run ...
        assert run.parent.span_id == sends[attempt].context.span_id
    for attempt, send in enumerate(sends[1:]):
        assert send.parent.span_id == runs[attempt].context.span_id
    for run in runs[:2]:
        (retry,) = [e for e in run.events if e.name == "celery.retry"]
        assert "inventory API unreachable" in retry.attributes["celery.retry.reason"]
        assert run.status.status_code is StatusCode.UNSET
        assert exceptions(run) == []  # a retry is not an error; the final failure would be
    assert [e.name for e in runs[2].events] == []


@pytest.mark.parametrize(
    ("task", "args", "category", "exception_type"),
    [
        ("tests.celery.boom", (), "integration", "ConnectionError"),
        ("tests.celery.invalid", ("-3",), "data_quality", "ValueError"),
    ],
)
def test_failure_is_recorded_once_and_classified(
    finished, app, worker, instrumented, outer, task, args, category, exception_type
) -> None:
    result = app.tasks[task].delay(*args)
    with pytest.raises(Exception, match=r"unreachable|invalid quantity"):
        result.get(timeout=10, interval=0.01)
    (run,) = wait_for_runs(finished, result.id)
    (recorded,) = exceptions(run)
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description.startswith(f"{exception_type}: ")
    assert run.attributes["celery.state"] == "FAILURE"
    assert recorded["exception.type"] == exception_type
    assert recorded["biz.category"] == run.attributes["biz.category"] == category
    assert (
        run.parent.span_id
        == of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)[0].context.span_id
    )


def test_expected_error_declared_in_throws_is_not_an_error(
    finished, app, worker, instrumented, outer
) -> None:
    result = app.tasks["tests.celery.expected"].delay("SKU-9")
    with pytest.raises(LookupError):
        result.get(timeout=10, interval=0.01)
    (run,) = wait_for_runs(finished, result.id)
    assert run.attributes["celery.state"] == "FAILURE"
    assert run.status.status_code is StatusCode.UNSET
    assert exceptions(run) == []


def test_rejected_task_shows_the_rejection_and_its_cause_once(
    finished, app, worker, instrumented, outer
) -> None:
    result = app.tasks["tests.celery.reject"].delay()
    (run,) = wait_for_runs(finished, result.id)
    (rejected,) = [e for e in run.events if e.name == "celery.rejected"]
    assert rejected.attributes["celery.rejected.requeue"] is False
    assert run.attributes["celery.state"] == "REJECTED"
    assert run.status.status_code is StatusCode.ERROR
    assert [e["exception.type"] for e in exceptions(run)] == ["ValueError"]
    # Celery's later task_failure for the dead-lettered message adds no span of its own.
    wait_until(lambda: result.state == "FAILURE", what="the rejected task's FAILURE result")
    assert len(of_task(finished.get_finished_spans(), result.id, SpanKind.CONSUMER)) == 1


def test_expired_task_is_turned_away_visibly_in_the_senders_trace(
    finished, app, worker, instrumented, outer
) -> None:
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    result = app.tasks["tests.celery.add"].apply_async((1, 2), expires=past)
    (revoked,) = wait_for_runs(finished, result.id)
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    assert revoked.name == "revoke tests.celery.add"
    assert revoked.parent.span_id == sent.context.span_id
    assert revoked.attributes["messaging.operation.type"] == "settle"
    assert [(e.name, dict(e.attributes)) for e in revoked.events] == [
        ("celery.revoked", {"celery.revoked.reason": "expired"})
    ]
    assert revoked.status.status_code is StatusCode.ERROR


def test_revoked_task_is_turned_away_without_an_error(
    finished, app, worker, instrumented, outer
) -> None:
    result = app.tasks["tests.celery.add"].apply_async((1, 2), countdown=0.6)
    app.control.revoke(result.id)
    (revoked,) = wait_for_runs(finished, result.id)
    assert revoked.name == "revoke tests.celery.add"
    assert [dict(e.attributes) for e in revoked.events] == [{"celery.revoked.reason": "revoked"}]
    assert revoked.status.status_code is StatusCode.UNSET
    assert revoked.context.trace_id == outer.get_span_context().trace_id


def test_message_for_an_unknown_task_is_an_integration_error_in_the_same_trace(
    finished, app, worker, instrumented, outer
) -> None:
    result = app.send_task("tests.celery.nobody_runs_this")
    (rejected,) = wait_for_runs(finished, result.id)
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    assert rejected.name == "reject tests.celery.nobody_runs_this"
    assert rejected.parent.span_id == sent.context.span_id
    assert [e["exception.type"] for e in exceptions(rejected)] == [
        "celery.exceptions.NotRegistered"
    ]
    assert rejected.attributes["biz.category"] == "integration"
    assert rejected.status.status_code is StatusCode.ERROR


def test_unreadable_message_is_rejected_visibly(finished, app, worker, instrumented, queue):
    with app.producer_or_acquire() as producer:  # not a Celery task message: no task header
        producer.publish({"hello": "worker"}, routing_key=queue, serializer="json")

    def rejected() -> list[ReadableSpan]:
        return [s for s in finished.get_finished_spans() if s.name == "reject unknown"]

    (span,) = wait_until(rejected, what="the reject span of an unreadable message")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["biz.category"] == "integration"
    assert [e.name for e in span.events] == ["celery.rejected"]


def test_failure_of_a_run_lost_elsewhere_gets_a_span_of_its_own(
    finished, app, instrumented
) -> None:
    # What a prefork worker's main process sends when a child dies mid-task: no run is live
    # here, so this signal is the only record of the failure.
    task = app.tasks["tests.celery.add"]
    task_id = uuid.uuid4().hex
    lost = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL).")
    signals.task_failure.send(sender=task, task_id=task_id, exception=lost, args=(), kwargs={})
    (run,) = of_task(finished.get_finished_spans(), task_id, SpanKind.CONSUMER)
    assert run.name == "run tests.celery.add"
    assert [e["exception.type"] for e in exceptions(run)] == ["billiard.exceptions.WorkerLostError"]
    assert run.status.status_code is StatusCode.ERROR


def test_failed_publish_is_recorded_on_the_producer_span_and_the_context_restored(
    finished, instrumented, outer
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = make_app(
        f"amqp://guest@127.0.0.1:{port}//",
        "cache+memory://",
        task_publish_retry=False,
        broker_transport_options={"max_retries": 1, "interval_start": 0, "interval_step": 0},
    )
    with pytest.raises(Exception, match="refused"):
        down.tasks["tests.celery.add"].delay(1, 2)
    assert trace.get_current_span() is outer
    (sent,) = [s for s in finished.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert sent.status.status_code is StatusCode.ERROR
    assert sent.attributes["messaging.system"] == "rabbitmq"
    (recorded,) = exceptions(sent)
    assert recorded["exception.type"] == "kombu.exceptions.OperationalError"
    assert recorded["biz.category"] == "integration"


def test_old_messaging_names_too_under_semconv_opt_in(
    finished, app, worker, outer, queue, monkeypatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, messaging/dup")
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    try:
        result = app.tasks["tests.celery.add"].delay(1, 2)
        (run,) = wait_for_runs(finished, result.id)
    finally:
        instrumentor.uninstrument()
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    assert sent.attributes["messaging.operation"] == "publish"
    assert sent.attributes["messaging.operation.type"] == "send"
    assert run.attributes["messaging.operation"] == "process"
    assert sent.attributes["messaging.destination"] == run.attributes["messaging.destination"]
    assert run.attributes["messaging.destination"] == queue
