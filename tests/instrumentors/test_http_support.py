"""Real servers on 127.0.0.1 for the HTTP instrumentor tests, started and stopped by handle.

Not a test module: helpers the ``test_http_*`` modules import (this file holds no tests).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any, Callable
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

#: How long the /slow endpoint of the echo server takes to answer.
SLOW_SECONDS = 0.5


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers with the request's headers as JSON; ``/status/<code>`` and ``/slow`` vary it."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        status = 200
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "resp-1")
        self.send_header("Set-Cookie", "session=s3cret")
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def echo_server() -> Iterator[str]:
    """An echo HTTP server; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, name="echo-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def wsgi_server(app: Callable[..., Any], *, werkzeug: bool = False) -> Iterator[str]:
    """``app`` behind a threaded wsgiref (or werkzeug) server; yields its base URL."""
    if werkzeug:
        from werkzeug.serving import make_server as make_werkzeug_server

        server: Any = make_werkzeug_server("127.0.0.1", 0, app, threaded=True)
        port = server.server_port
    else:
        server = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietWSGIHandler
        )
        port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="wsgi-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def asgi_server(app: Any) -> Iterator[str]:
    """``app`` behind uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="asgi-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/nowhere"


@contextlib.contextmanager
def instrumented(*instrumentors: BaseInstrumentor, **kwargs: Any) -> Iterator[None]:
    """Instrument, then uninstrument in reverse order."""
    for each in instrumentors:
        each.instrument(**kwargs)
    try:
        yield
    finally:
        for each in reversed(instrumentors):
            each.uninstrument()


def wait_for_spans(
    exporter: InMemorySpanExporter,
    predicate: Callable[[Sequence[ReadableSpan]], bool],
    timeout: float = 5.0,
) -> Sequence[ReadableSpan]:
    """Finished spans once ``predicate`` holds (servers end their span after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = exporter.get_finished_spans()
        if predicate(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


def of_kind(spans: Sequence[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in spans if span.kind is kind]


def exception_events(span: ReadableSpan) -> list[Any]:
    return [event for event in span.events if event.name == "exception"]
