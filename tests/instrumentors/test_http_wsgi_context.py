"""The WSGI middleware keeps a request's span current only while the app's code runs.

A WSGI server runs the app's body a chunk at a time and may do anything in between: Flask's
test client (unbuffered, its default) reads the first chunk of a response and returns, so the
next request starts while the last body is still open. Neither request may end up inside the
other's span.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import requests
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from otel_sentry_biz_instrumentors.http import BizWSGIMiddleware, instrument_flask_app
from tests.instrumentors.test_http_support import (
    exception_events,
    of_kind,
    wait_for_spans,
    wsgi_server,
)

flask = pytest.importorskip("flask")


def _current_span_id() -> str:
    return f"{trace.get_current_span().get_span_context().span_id:016x}"


def _flask_app() -> Any:
    app = flask.Flask("wsgi_context")

    @app.get("/hello")
    def hello() -> Any:
        return "hello"

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Any:
            for _ in range(3):  # each chunk names the span current while it is made
                yield f"{_current_span_id()}\n"

        return flask.Response(chunks(), mimetype="text/plain")

    instrument_flask_app(app)
    return app


def _roots(finished: Any, count: int) -> list[Any]:
    spans = wait_for_spans(finished, lambda found: len(of_kind(found, SpanKind.SERVER)) == count)
    servers = sorted(of_kind(spans, SpanKind.SERVER), key=lambda span: span.start_time)
    assert len(servers) == count
    return servers


def test_sequential_requests_of_the_test_client_are_separate_traces(finished):
    client = _flask_app().test_client()

    first = client.get("/hello")
    second = client.get("/hello")  # the first body is not read yet
    assert (first.get_data(as_text=True), second.get_data(as_text=True)) == ("hello", "hello")
    first.close()
    second.close()

    one, two = _roots(finished, 2)
    assert one.parent is None and two.parent is None
    assert one.context.trace_id != two.context.trace_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached here


def test_interleaved_streams_each_run_in_their_own_span(finished):
    client = _flask_app().test_client()

    first = client.get("/stream")  # its generator has made the first chunk
    second = client.get("/stream")
    first_ids = first.get_data(as_text=True).split()
    second_ids = second.get_data(as_text=True).split()
    # Not closed: a body read to its end ends the request.

    one, two = _roots(finished, 2)
    assert two.parent is None
    assert first_ids == [f"{one.context.span_id:016x}"] * 3
    assert second_ids == [f"{two.context.span_id:016x}"] * 3


def test_a_streamed_body_runs_in_the_span_on_a_real_server(finished):
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/broken":
            return _broken_body()
        return (f"{_current_span_id()}\n".encode() for _ in range(3))

    with wsgi_server(BizWSGIMiddleware(app)) as url:
        ids = requests.get(f"{url}/stream", timeout=5).text.split()
        # The server may cut the connection mid-body, or just end it there.
        with contextlib.suppress(requests.exceptions.RequestException):
            requests.get(f"{url}/broken", timeout=5)
        stream, broken = _roots(finished, 2)

    assert ids == [f"{stream.context.span_id:016x}"] * 3
    assert broken.status.status_code is StatusCode.ERROR
    (event,) = exception_events(broken)
    assert event.attributes["exception.escaped"] == "True"  # raised to the server


def _broken_body() -> Any:
    yield b"half a "
    raise OSError("disk went away")
