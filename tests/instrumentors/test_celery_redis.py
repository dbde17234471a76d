"""CeleryInstrumentor across processes: a real ``celery worker`` on the Redis broker.

The worker is started as a subprocess (``celery -A tests.instrumentors.celery_app worker
--pool=solo``) on a queue of its own, with Redis databases 5 (broker) and 6 (results). It
traces with its own TracerProvider and writes its spans as JSON lines to a file we read back;
the producer spans come from this process's provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor
from tests.instrumentors import celery_app
from tests.instrumentors.celery_app import of_task, wait_until

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get(celery_app.BROKER_VAR, celery_app.DEFAULT_BROKER)
REDIS_HOW = (
    "start Redis on 127.0.0.1:6379: redis-server --daemonize yes --bind 127.0.0.1 -::1 "
    '--port 6379 --save "" --appendonly no --dir /var/lib/redis '
    "--logfile /var/log/redis/ci.log (or set OTEL_SENTRY_BIZ_TEST_CELERY_BROKER and "
    "OTEL_SENTRY_BIZ_TEST_CELERY_BACKEND to redis:// URLs)"
)
WORKER_START_TIMEOUT = 30.0
pytestmark = pytest.mark.slow


def redis_unavailable(url: str) -> Optional[str]:
    """Why the real-worker tests cannot run here, or None when they can."""
    try:
        import redis
    except ImportError:
        return f"the redis package is not installed (pip install 'celery[redis]'); {REDIS_HOW}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Redis is not reachable at {url} ({exc}): {REDIS_HOW}"
    return None


@dataclass
class RedisWorker:
    queue: str
    node: str
    spans_file: Path
    log_file: Path

    def spans(self) -> list[dict[str, Any]]:
        if not self.spans_file.exists():
            return []
        with self.spans_file.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.endswith("\n")]

    def wait_for(self, task_id: str, kind: str = "CONSUMER", count: int = 1) -> list[dict]:
        def found() -> list[dict[str, Any]]:
            spans = [
                span
                for span in self.spans()
                if span["kind"] == kind
                and span["attributes"].get("messaging.message.id") == task_id
            ]
            return spans if len(spans) >= count else []

        return wait_until(found, timeout=15, what=f"{count} {kind} span(s) of {task_id}")


@pytest.fixture(scope="module")
def redis_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisWorker]:
    with _running_worker(tmp_path_factory) as worker:
        yield worker


@contextmanager
def _running_worker(
    tmp_path_factory: pytest.TempPathFactory, **env_vars: str
) -> Iterator[RedisWorker]:
    """``celery -A tests.instrumentors.celery_app worker`` on a queue of its own."""
    reason = redis_unavailable(BROKER)
    if reason:
        pytest.skip(reason)
    where = tmp_path_factory.mktemp("celery-worker")
    worker = RedisWorker(
        queue=f"otel-sentry-biz-test-{uuid.uuid4().hex[:8]}",
        node=f"otel-sentry-biz-{uuid.uuid4().hex[:8]}@tests",
        spans_file=where / "spans.jsonl",
        log_file=where / "worker.log",
    )
    env = {**os.environ, **env_vars}
    env[celery_app.SPANS_VAR] = str(worker.spans_file)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable, "-m", "celery", "-A", "tests.instrumentors.celery_app", "worker",
        "--pool=solo", "--concurrency=1", "-Q", worker.queue, "-n", worker.node,
        "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with worker.log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, worker)
        yield worker
    finally:
        _stop(process)
        _forget_queue(worker.queue)


def _wait_until_ready(process: subprocess.Popen, worker: RedisWorker) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}):\n{worker.log_file.read_text()}")
        if celery_app.app.control.ping(destination=[worker.node], timeout=0.5):
            return
    pytest.fail(f"the worker did not answer a ping in {WORKER_START_TIMEOUT}s:\n"
                f"{worker.log_file.read_text()}")  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # warm shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _forget_queue(queue: str) -> None:
    """Remove what the test queue left in the broker database (only this queue's keys)."""
    import redis

    client = redis.Redis.from_url(BROKER, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        keys = list(client.scan_iter(match=f"*{queue}*"))
        if keys:
            client.delete(*keys)
        for binding in client.scan_iter(match="_kombu.binding.*"):
            stale = [m for m in client.smembers(binding) if queue.encode() in m]
            if stale:
                client.srem(binding, *stale)
    finally:
        client.close()


@pytest.fixture
def instrumented() -> Iterator[None]:
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    yield
    instrumentor.uninstrument()


@pytest.fixture
def outer(tracer: trace.Tracer) -> Iterator[trace.Span]:
    with tracer.start_as_current_span("POST /orders") as span:
        yield span


def _hex_span_id(span: Any) -> str:
    return f"{span.context.span_id:016x}"


def test_worker_process_continues_the_trace_with_the_propagated_business_keys(
    finished, redis_worker, instrumented, outer
) -> None:
    task = celery_app.app.tasks["tests.celery.traced"]
    with biz.context(customer="ACME", work_request="WR-7", propagate=["customer"]):
        result = task.apply_async(("redis",), queue=redis_worker.queue)
    assert result.get(timeout=15) == {"biz.customer": "ACME"}
    (run,) = redis_worker.wait_for(result.id)
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)

    assert sent.attributes["messaging.system"] == "redis"
    assert sent.attributes["messaging.destination.name"] == redis_worker.queue
    assert run["name"] == "run tests.celery.traced"
    assert run["trace_id"] == f"{outer.get_span_context().trace_id:032x}"
    assert run["parent_span_id"] == _hex_span_id(sent)
    assert run["attributes"]["biz.customer"] == "ACME"
    assert "biz.work_request" not in run["attributes"]
    assert run["attributes"]["messaging.destination.name"] == redis_worker.queue
    assert run["attributes"]["messaging.system"] == "redis"
    inside = wait_until(
        lambda: [s for s in redis_worker.spans() if s["name"] == "inside redis"], timeout=5
    )
    assert inside[0]["parent_span_id"] == run["span_id"]
    assert inside[0]["attributes"]["biz.customer"] == "ACME"


def test_worker_process_records_a_failure_once_classified(
    finished, redis_worker, instrumented, outer
) -> None:
    result = celery_app.app.tasks["tests.celery.boom"].apply_async(queue=redis_worker.queue)
    with pytest.raises(ConnectionError):
        result.get(timeout=15)
    (run,) = redis_worker.wait_for(result.id)
    assert run["status"] == "ERROR"
    assert [e["name"] for e in run["events"]] == ["exception"]
    assert run["events"][0]["attributes"]["biz.category"] == "integration"
    assert run["attributes"]["biz.category"] == "integration"


def test_worker_process_retries_stay_in_the_trace(
    finished, redis_worker, instrumented, outer
) -> None:
    result = celery_app.app.tasks["tests.celery.flaky"].apply_async((1,), queue=redis_worker.queue)
    assert result.get(timeout=15) == 1
    first, second = sorted(redis_worker.wait_for(result.id, count=2), key=lambda s: s["written_at"])
    (resent,) = redis_worker.wait_for(result.id, kind="PRODUCER")  # the retry, from the worker
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    assert [first["attributes"]["celery.retries"], second["attributes"]["celery.retries"]] == [0, 1]
    assert [e["name"] for e in first["events"]] == ["celery.retry"]
    assert first["parent_span_id"] == _hex_span_id(sent)
    assert resent["parent_span_id"] == first["span_id"]
    assert second["parent_span_id"] == resent["span_id"]
    assert {first["trace_id"], second["trace_id"]} == {f"{sent.context.trace_id:032x}"}


def test_worker_process_shows_a_revoked_task(finished, redis_worker, instrumented, outer) -> None:
    result = celery_app.app.tasks["tests.celery.add"].apply_async(
        (1, 2), queue=redis_worker.queue, countdown=1.0
    )
    celery_app.app.control.revoke(result.id)
    (revoked,) = redis_worker.wait_for(result.id)
    (sent,) = of_task(finished.get_finished_spans(), result.id, SpanKind.PRODUCER)
    assert revoked["name"] == "revoke tests.celery.add"
    assert revoked["parent_span_id"] == _hex_span_id(sent)
    assert [e["attributes"] for e in revoked["events"]] == [{"celery.revoked.reason": "revoked"}]
    assert revoked["status"] == "UNSET"


def test_worker_process_keeps_the_task_log_lines_after_taking_over_logging(
    finished, tmp_path_factory, instrumented, outer
) -> None:
    # The app module installs breadcrumbs on import, then `celery worker` sets up logging
    # and replaces the root logger's handlers (worker_hijack_root_logger, its default).
    with _running_worker(tmp_path_factory, **{celery_app.BREADCRUMBS_VAR: "1"}) as worker:
        result = celery_app.app.tasks["tests.celery.logs_then_fails"].apply_async(
            ("O-7",), queue=worker.queue
        )
        with pytest.raises(ConnectionError):
            result.get(timeout=15)
        (run,) = worker.wait_for(result.id)

    logged = [e["attributes"] for e in run["events"] if e["name"] == "log"]
    assert {"log.level": "INFO", "log.logger": "shop.orders",
            "log.message": "reserving stock for O-7"} in logged  # fmt: skip
    assert {"log.level": "WARNING", "log.logger": "shop.tasks",
            "log.message": "payment slow for O-7"} in logged  # fmt: skip
    assert [e["name"] for e in run["events"] if e["name"] != "log"] == ["exception"]
