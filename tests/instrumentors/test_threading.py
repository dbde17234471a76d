"""ThreadingInstrumentor: spans started in threads, timers and pool tasks parent correctly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.threading import ThreadingInstrumentor

ORIGINAL_START = vars(threading.Thread)["start"]
ORIGINAL_SUBMIT = vars(ThreadPoolExecutor)["submit"]


@pytest.fixture
def instrumented():
    instrumentor = ThreadingInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


def _parents(exporter) -> dict[str, str | None]:
    """Finished span name -> name of its parent span (None for a root)."""
    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span.name for span in spans}
    return {
        span.name: (by_id.get(span.parent.span_id, "<remote>") if span.parent else None)
        for span in spans
    }


def _span(tracer, name):
    with tracer.start_as_current_span(name):
        pass


def test_thread_span_is_child_of_starting_span_and_carries_business_context(
    instrumented, finished, tracer
):
    with biz.context(customer="ACME"), tracer.start_as_current_span("request"):
        worker = threading.Thread(target=_span, args=(tracer, "in thread"))
        worker.start()
        worker.join()

    assert _parents(finished) == {"in thread": "request", "request": None}
    in_thread = next(s for s in finished.get_finished_spans() if s.name == "in thread")
    assert in_thread.attributes["biz.customer"] == "ACME"
    assert "run" not in vars(worker)  # the thread keeps no context once it ran


def test_thread_subclass_overriding_run_is_covered(instrumented, finished, tracer):
    class Poller(threading.Thread):
        def run(self):
            _span(tracer, "poll")

    with tracer.start_as_current_span("request"):
        poller = Poller()
        poller.start()
        poller.join()

    assert _parents(finished)["poll"] == "request"


def test_timer_runs_in_starting_context(instrumented, finished, tracer):
    with tracer.start_as_current_span("request"):
        timer = threading.Timer(0.001, _span, args=(tracer, "timer"))
        timer.start()
        timer.join()

    assert _parents(finished)["timer"] == "request"


def test_pool_submit_and_map_tasks_are_children_of_submitting_span(instrumented, finished, tracer):
    with tracer.start_as_current_span("request"), ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(_span, tracer, "submitted").result()
        list(pool.map(lambda name: _span(tracer, name), ["mapped 1", "mapped 2"]))

    parents = _parents(finished)
    assert parents["submitted"] == parents["mapped 1"] == parents["mapped 2"] == "request"


def test_nested_pools_parent_every_level(instrumented, finished, tracer):
    def outer(index: int) -> None:
        with tracer.start_as_current_span(f"outer {index}"), ThreadPoolExecutor(2) as inner:
            list(inner.map(lambda n: _span(tracer, f"inner {index}.{n}"), range(2)))

    with biz.context(work_request="WR-7"), tracer.start_as_current_span("request"):
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(outer, range(3)))

    parents = _parents(finished)
    for index in range(3):
        assert parents[f"outer {index}"] == "request"
        assert parents[f"inner {index}.0"] == parents[f"inner {index}.1"] == f"outer {index}"
    assert {s.attributes["biz.work_request"] for s in finished.get_finished_spans()} == {"WR-7"}


def test_reused_worker_runs_each_task_in_its_submitters_context(instrumented, finished, tracer):
    with ThreadPoolExecutor(max_workers=1) as pool:
        with tracer.start_as_current_span("first request"):
            pool.submit(_span, tracer, "first task").result()  # starts the worker thread here
        pool.submit(_span, tracer, "task outside any span").result()
        with tracer.start_as_current_span("second request"):
            pool.submit(_span, tracer, "second task").result()

    parents = _parents(finished)
    assert parents["first task"] == "first request"
    assert parents["task outside any span"] is None
    assert parents["second task"] == "second request"


def test_failing_task_detaches_its_context(instrumented, finished, tracer):
    boom = RuntimeError("boom")

    def fail():
        raise boom

    with ThreadPoolExecutor(max_workers=1) as pool:
        with tracer.start_as_current_span("request"):
            assert pool.submit(fail).exception() is boom
        current = pool.submit(trace.get_current_span).result()

    assert current is trace.INVALID_SPAN


def test_suppressed_instrumentation_stays_suppressed_in_workers(instrumented):
    with suppress_instrumentation(), ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(is_instrumentation_enabled).result() is False
        seen = []
        worker = threading.Thread(target=lambda: seen.append(is_instrumentation_enabled()))
        worker.start()
        worker.join()
    assert seen == [False]


def test_uninstrument_restores_originals_and_stops_carrying(finished, tracer):
    instrumentor = ThreadingInstrumentor()
    instrumentor.instrument()
    instrumentor.instrument()  # a second call changes nothing
    assert vars(threading.Thread)["start"].__wrapped__ is ORIGINAL_START
    assert vars(ThreadPoolExecutor)["submit"].__wrapped__ is ORIGINAL_SUBMIT

    instrumentor.uninstrument()
    instrumentor.uninstrument()  # and so does a second uninstrument

    assert vars(threading.Thread)["start"] is ORIGINAL_START
    assert vars(ThreadPoolExecutor)["submit"] is ORIGINAL_SUBMIT
    assert "start" not in vars(threading.Timer)
    with tracer.start_as_current_span("request"):
        worker = threading.Thread(target=_span, args=(tracer, "in thread"))
        worker.start()
        worker.join()
    assert _parents(finished)["in thread"] is None


def test_instrumentation_dependencies_are_the_standard_library():
    assert tuple(ThreadingInstrumentor().instrumentation_dependencies()) == ()


def _run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_loads_only_our_modules_and_patches_nothing():
    out = _run(
        """
        import sys, threading
        import opentelemetry.instrumentation.instrumentor, otel_sentry_biz
        before, start = set(sys.modules), vars(threading.Thread)["start"]
        import otel_sentry_biz_instrumentors.threading
        new = sorted(m for m in set(sys.modules) - before
                     if not m.startswith("otel_sentry_biz_instrumentors"))
        assert vars(threading.Thread)["start"] is start
        print(new)
        """
    )
    assert out.strip() == "[]"


COEXISTENCE = """
    import inspect, threading
    from concurrent.futures import ThreadPoolExecutor
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor as Contrib
    from otel_sentry_biz_instrumentors.threading import ThreadingInstrumentor as Ours

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("coexistence")
    START, SUBMIT = vars(threading.Thread)["start"], vars(ThreadPoolExecutor)["submit"]
    CARRIERS = {"run_in_context", "wrapped_func", "__wrap_threading_run"}

    def work(name, carried):
        carried.append(sum(f.function in CARRIERS for f in inspect.stack()))
        with tracer.start_as_current_span(name):
            pass

    class Poller(threading.Thread):
        def __init__(self, carried):
            super().__init__()
            self.carried = carried
        def run(self):
            work("poller", self.carried)

    def check(first, second):
        first().instrument(skip_dep_check=True)
        second().instrument(skip_dep_check=True)
        exporter.clear()
        carried = []
        with tracer.start_as_current_span("request"):
            thread = threading.Thread(target=work, args=("thread", carried))
            thread.start(); thread.join()
            poller = Poller(carried)
            poller.start(); poller.join()
            with ThreadPoolExecutor(2) as pool:
                pool.submit(work, "task", carried).result()
        spans = exporter.get_finished_spans()
        request = next(s for s in spans if s.name == "request")
        for span in spans:
            if span.name != "request":
                assert span.parent.span_id == request.context.span_id, span.name
        # the thread: once; the poller (contrib misses overridden run): once; the pool task:
        # once for the worker thread's run and once for the task
        assert carried == [1, 1, 2], carried
        first().uninstrument()  # not the last one in: the other keeps working
        exporter.clear()
        with tracer.start_as_current_span("request"):
            with ThreadPoolExecutor(2) as pool:
                pool.submit(work, "task", []).result()
        task = next(s for s in exporter.get_finished_spans() if s.name == "task")
        assert task.parent is not None
        second().uninstrument()
        assert vars(threading.Thread)["start"] is START
        assert vars(ThreadPoolExecutor)["submit"] is SUBMIT

    check(Ours, Contrib)
    check(Contrib, Ours)
    print("ok")
"""


def test_coexists_with_contrib_threading_instrumentor_in_either_order():
    pytest.importorskip("opentelemetry.instrumentation.threading")
    # A subprocess: contrib's uninstrument leaves a wrapper on Timer.start behind.
    assert _run(COEXISTENCE).strip() == "ok"
