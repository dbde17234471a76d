"""Issue 4's end to end: opentelemetry-instrument on an app using SQLAlchemy, a thread pool,
Celery and HTTP gives one connected trace per request, with contrib's instrumentors for the
same libraries installed and loaded too (no duplicate spans)."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, clean_env, serving
from tests.relay_oracle import assert_valid

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parents[2] / "examples" / "orders_service" / "app.py"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=20) as answer:
        return json.loads(answer.read())


def test_one_connected_trace_per_request_without_duplicates(receiver, tmp_path) -> None:
    command = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), str(APP)]
    env = clean_env(
        SENTRY_DSN=receiver.dsn, SENTRY_TRACES_SAMPLE_RATE="1.0", OTEL_SERVICE_NAME="orders"
    )
    with serving(command, tmp_path, env) as (app, line):
        assert line.startswith("listening on "), app.stderr.read()
        base = line.split()[-1]
        answers = [_get(f"{base}/orders/{n}") for n in (1, 2, 3)]
        assert [a["price"] for a in answers] == [10.0, 20.0, 30.0]
        _get(f"{base}/shutdown")
        _, stderr = app.communicate(timeout=60)
    assert app.returncode == 0, stderr

    assert receiver.wait_for(lambda r: len(r.events("transaction")) >= 10, timeout=20), stderr
    transactions = receiver.events("transaction")
    for event in transactions:
        assert_valid(event)
    by_trace = defaultdict(list)
    for event in transactions:
        by_trace[event["contexts"]["trace"]["trace_id"]].append(event)
    orders = [t for t in transactions if t["transaction"].startswith("GET /orders")]
    assert len(orders) == 3
    for order in orders:
        trace = by_trace[order["contexts"]["trace"]["trace_id"]]
        kinds = Counter(t["contexts"]["trace"]["op"] for t in trace)
        # The orders request, the pricing service's request, the Celery task: one trace.
        assert kinds == {"http.server": 2, "queue.process": 1}, [
            (t["transaction"], t["contexts"]["trace"]["op"]) for t in trace
        ]
        ops = Counter(span["op"] for span in order["spans"])
        # Exactly one span per operation: contrib's instrumentors did not add their own.
        assert ops["http.client"] == 1, ops
        assert ops["queue.publish"] == 1, ops
        assert sum(n for op, n in ops.items() if op.startswith("db")) == 1, ops
        spans_by_id = {span["span_id"]: span for span in order["spans"]}
        pricing = next(
            t for t in trace if t is not order and t["contexts"]["trace"]["op"] == "http.server"
        )
        task = next(t for t in trace if t["contexts"]["trace"]["op"] == "queue.process")
        # Connected: each service's transaction hangs off the span that called it.
        assert spans_by_id[pricing["contexts"]["trace"]["parent_span_id"]]["op"] == "http.client"
        assert spans_by_id[task["contexts"]["trace"]["parent_span_id"]]["op"] == "queue.publish"
        # Business context on the request, and propagated to the other services.
        assert order["tags"]["order_id"] in {"1", "2", "3"}
        assert pricing["tags"].get("order_id") == order["tags"]["order_id"]
        assert task["tags"].get("order_id") == order["tags"]["order_id"]
        assert order["tags"]["customer"] in {"ACME", "Globex", "Initech"}
