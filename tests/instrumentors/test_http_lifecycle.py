"""The instrumentors' contract: exact undo, dependencies, lazy imports, semconv opt-in, and the
exporter's (and sentry-sdk's) own HTTP never traced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import sentry_sdk
import wrapt
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from packaging.requirements import Requirement

from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz_instrumentors.http import (
    BizHttpxInstrumentor,
    BizRequestsInstrumentor,
    BizUrllib3Instrumentor,
    BizUrllibInstrumentor,
    package,
)
from tests.instrumentors.test_http_support import instrumented, of_kind


def _surfaces():
    import urllib.request

    import httpcore
    import requests.adapters
    import urllib3.connectionpool

    return {
        BizRequestsInstrumentor: [(requests.adapters.HTTPAdapter, "send")],
        BizHttpxInstrumentor: [
            (httpcore.ConnectionPool, "handle_request"),
            (httpcore.AsyncConnectionPool, "handle_async_request"),
        ],
        BizUrllib3Instrumentor: [(urllib3.connectionpool.HTTPConnectionPool, "_make_request")],
        BizUrllibInstrumentor: [(urllib.request.AbstractHTTPHandler, "do_open")],
    }


@pytest.mark.parametrize(
    "instrumentor_class",
    [BizRequestsInstrumentor, BizHttpxInstrumentor, BizUrllib3Instrumentor, BizUrllibInstrumentor],
)
def test_instrument_and_uninstrument_are_idempotent_and_exact(instrumentor_class):
    surfaces = _surfaces()[instrumentor_class]
    before = [owner.__dict__[name] for owner, name in surfaces]
    instrumentor = instrumentor_class()

    instrumentor.instrument()
    instrumentor.instrument()
    for (owner, name), original in zip(surfaces, before):
        wrapper = owner.__dict__[name]
        assert isinstance(wrapper, wrapt.FunctionWrapper)
        assert wrapper.__wrapped__ is original  # wrapped once, not twice
    instrumentor.uninstrument()
    instrumentor.uninstrument()

    assert [owner.__dict__[name] for owner, name in surfaces] == before
    assert all(
        after is original for after, original in zip([o.__dict__[n] for o, n in surfaces], before)
    )


@pytest.mark.parametrize("ours_out_first", [True, False])
def test_undo_is_exact_beside_contrib_in_either_order(ours_out_first):
    contrib = pytest.importorskip("opentelemetry.instrumentation.requests")
    from requests import Session
    from requests.adapters import HTTPAdapter

    session_send, adapter_send = Session.__dict__["send"], HTTPAdapter.__dict__["send"]
    ours, theirs = BizRequestsInstrumentor(), contrib.RequestsInstrumentor()
    theirs.instrument()
    ours.instrument()
    for each in (ours, theirs) if ours_out_first else (theirs, ours):
        each.uninstrument()

    assert Session.__dict__["send"] is session_send
    assert HTTPAdapter.__dict__["send"] is adapter_send


def test_a_wrapper_left_under_a_foreign_one_is_inert(caplog, finished):
    import requests
    from requests.adapters import HTTPAdapter

    original = HTTPAdapter.__dict__["send"]
    instrumentor = BizRequestsInstrumentor()
    instrumentor.instrument()
    wrapt.wrap_function_wrapper(HTTPAdapter, "send", lambda w, i, a, k: w(*a, **k))
    instrumentor.uninstrument()
    try:
        assert "wrapped again by another tool" in caplog.text
        with pytest.raises(requests.ConnectionError):
            requests.get("http://127.0.0.1:9/", timeout=1)
        assert finished.get_finished_spans() == ()
    finally:
        HTTPAdapter.send = original


def test_instrumentation_dependencies_are_declared_and_met():
    expected = {
        BizRequestsInstrumentor: package._instruments_requests,
        BizHttpxInstrumentor: package._instruments_httpx,
        BizUrllib3Instrumentor: package._instruments_urllib3,
        BizUrllibInstrumentor: (),
    }
    for instrumentor_class, requirements in expected.items():
        declared = tuple(instrumentor_class().instrumentation_dependencies())
        assert declared == requirements
        assert all(Requirement(each) for each in declared)
        assert get_dependency_conflicts(declared) is None


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SENTRY_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_importing_our_package_imports_no_instrumented_library():
    result = _run(
        """
        import json, sys
        import otel_sentry_biz  # the core (through sentry-sdk) already imports urllib3
        before = set(sys.modules)
        import otel_sentry_biz_instrumentors.http as http
        from otel_sentry_biz_instrumentors.http import (
            asgi, django, flask, package, patching, redact, semconv, server, settings, wsgi)
        from otel_sentry_biz_instrumentors.http.clients import call, httpx, requests, urllib
        from otel_sentry_biz_instrumentors.http.clients import urllib3
        for name in http.__all__:
            getattr(http, name)
        new = {name.split(".")[0] for name in set(sys.modules) - before}
        print(json.dumps(sorted(new)))
        """
    )
    new = set(json.loads(result.stdout))
    libraries = {
        "requests", "httpx", "httpcore", "urllib3", "flask", "werkzeug", "django",
        "starlette", "fastapi", "uvicorn",
    }  # fmt: skip
    assert new & libraries == set()


def test_old_names_are_added_under_http_dup(tmp_path):
    result = _run(
        """
        import json, threading, urllib.request
        from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from otel_sentry_biz_instrumentors.http import BizUrllibInstrumentor

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(204)
                self.end_headers()
            def log_message(self, *args):
                pass

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        BizUrllibInstrumentor().instrument()
        urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/x?q=1").close()
        print(json.dumps(dict(exporter.get_finished_spans()[0].attributes)))
        """,
        OTEL_SEMCONV_STABILITY_OPT_IN="http/dup",
    )
    attrs = json.loads(result.stdout)
    assert attrs["http.request.method"] == attrs["http.method"] == "GET"
    assert attrs["url.full"] == attrs["http.url"]
    assert attrs["server.address"] == attrs["net.peer.name"] == "127.0.0.1"
    assert attrs["server.port"] == attrs["net.peer.port"]
    assert attrs["http.response.status_code"] == attrs["http.status_code"] == 204


def _finished_span(name: str) -> ReadableSpan:
    now = time.time_ns()
    context = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=context,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": "/x"},
        start_time=now - 1_000_000,
        end_time=now,
    )


def test_the_exporters_own_traffic_is_never_traced(finished):
    everything = (
        BizRequestsInstrumentor(),
        BizHttpxInstrumentor(),
        BizUrllib3Instrumentor(),
        BizUrllibInstrumentor(),
    )
    with LocalReceiver() as receiver, instrumented(*everything):
        exporter = SentrySpanExporter(dsn=receiver.dsn)
        try:
            exporter.export([_finished_span("GET /x")])
            assert exporter.force_flush(10_000)
            assert receiver.wait_for(lambda r: len(r.events("transaction")) == 1, timeout=10)
        finally:
            exporter.shutdown()

    port = str(receiver.port)
    clients = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert [span for span in clients if port in str(span.attributes.get("url.full"))] == []


def test_sentry_sdk_uploads_are_never_traced(finished):
    with LocalReceiver() as receiver, instrumented(BizUrllib3Instrumentor()):
        client = sentry_sdk.Client(dsn=receiver.dsn, default_integrations=False)
        try:
            client.capture_event({"message": "hello", "level": "info"})
            client.flush(timeout=10)
            assert receiver.wait_for(lambda r: len(r.events("event")) == 1, timeout=10)
        finally:
            client.close()

    assert of_kind(finished.get_finished_spans(), SpanKind.CLIENT) == []
