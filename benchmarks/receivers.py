"""Receivers for the benchmark, each run in its own process so its CPU is not billed to the app.

``python benchmarks/receivers.py sentry|otlp`` prints one JSON line with its endpoint, then
answers commands read from stdin, one per line:

* ``count``: a JSON line ``{"spans": N, "requests": R}`` with what it has received so far;
* ``quit``: stop.

The Sentry receiver is :class:`otel_sentry_biz.receiver.LocalReceiver` (spans counted as each
transaction's root plus its child spans); the OTLP receiver decodes each protobuf
``ExportTraceServiceRequest`` and counts its spans.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans = 0
        self.requests = 0


def _otlp_server(counts: _Counts) -> ThreadingHTTPServer:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    ok = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            spans = sum(
                len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
            )
            with counts.lock:
                counts.spans += spans
                counts.requests += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(ok)))
            self.end_headers()
            self.wfile.write(ok)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def serve_otlp() -> None:
    counts = _Counts()
    server = _otlp_server(counts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    _answer({"endpoint": endpoint})
    for line in sys.stdin:
        if line.strip() == "count":
            with counts.lock:
                _answer({"spans": counts.spans, "requests": counts.requests})
        elif line.strip() == "quit":
            break
    server.shutdown()


def serve_sentry() -> None:
    from otel_sentry_biz.receiver import LocalReceiver

    receiver = LocalReceiver().start()
    _answer({"endpoint": receiver.dsn})
    for line in sys.stdin:
        if line.strip() == "count":
            transactions = receiver.events("transaction")
            spans = sum(1 + len(event.get("spans", ())) for event in transactions)
            _answer({"spans": spans, "requests": receiver.requests})
        elif line.strip() == "quit":
            break
    receiver.stop()


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    {"otlp": serve_otlp, "sentry": serve_sentry}[sys.argv[1]]()
