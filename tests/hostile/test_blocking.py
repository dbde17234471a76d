"""Property 7: nothing blocks. The full pipeline (TracerProvider -> BusinessSpanProcessor ->
BufferedSpanProcessor -> SentrySpanExporter -> a real receiver on 127.0.0.1) takes hostile
spans (1 MB values, cycles, surrogates, raising __str__, thousands of attributes) while Sentry
is up, slow, rate-limiting for ~ever, or down; the app thread never waits more than a second
for any span, and what arrives is valid."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Tracer

import otel_sentry_biz as biz
from otel_sentry_biz.config import Settings
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from tests.hostile.harness import SystemRandomIds, relay_complaints
from tests.hostile.strategies import Slow, Unprintable, cyclic_dict, deep_list

#: The app thread may spend at most this long on one span, whatever it carries.
PER_SPAN_SECONDS = 1.0
MB = "x" * 1_000_000


def _hostile_work(tracer: Tracer) -> list[float]:
    """Twelve hostile requests on the app thread; the seconds each one took."""
    spent = []
    values: list[Any] = [
        MB,
        MB.encode(),
        "\udcff" * 1000,
        float("nan"),
        2**300,
        cyclic_dict(),
        Unprintable(),
        Slow(),
        deep_list(1000),  # deep enough to fail fast (see strategies.deep_list's note)
        list(range(10_000)),
        {"nested": {"dict": [MB[:100]] * 100}},
        None,
    ]
    for number, value in enumerate(values):
        start = time.perf_counter()
        with biz.context(customer=f"C-{number}", payload=value, note=MB):
            with tracer.start_as_current_span(
                f"POST /hostile/{number}", kind=SpanKind.SERVER
            ) as root:
                for index in range(1000):
                    root.set_attribute(f"attr.{index}", MB[:1000])
                root.set_attribute("big", MB)
                biz.record(value=value, blob=MB)
                with tracer.start_as_current_span(MB[:100_000]) as child:
                    child.set_attribute("db.query.text", "SELECT '" + MB + "'")
                    child.add_event("log", {"message": MB})
                biz.capture_error(ValueError(MB), impact="HIGH", detail=value)
                biz.violation("hostile_limit", "HIGH", MB, group=f"g{number}", amount=value)
                try:
                    with biz.operation("hostile operation", value=value):
                        raise RuntimeError(MB)
                except RuntimeError:
                    pass
        spent.append(time.perf_counter() - start)
    return spent


def _run_app(tracer: Tracer) -> list[float]:
    """The app's work on its own thread, joined with a timeout: a hang fails, not hangs."""
    result: dict[str, Any] = {}

    def app() -> None:
        try:
            result["spent"] = _hostile_work(tracer)
        except BaseException as exc:  # reported below: nothing may raise into the app
            result["error"] = exc

    thread = threading.Thread(target=app, name="hostile-app", daemon=True)
    thread.start()
    thread.join(timeout=12 * PER_SPAN_SECONDS + 10)
    assert not thread.is_alive(), "the app thread is blocked"
    assert "error" not in result, f"raised into the app: {result['error']!r}"
    return result["spent"]


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


SCENARIOS = ["up", "slow", "rate limited for ~ever", "down"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_hostile_spans_never_block_the_app_thread(receiver: LocalReceiver, scenario: str) -> None:
    if scenario == "slow":
        receiver.respond_with(200, delay=3.0, times=1000)
    elif scenario == "rate limited for ~ever":
        receiver.respond_with(
            429, {"Retry-After": "1e308", "X-Sentry-Rate-Limits": "1e308::organization"}
        )
    dsn = receiver.dsn
    if scenario == "down":
        receiver.stop()
    settings = Settings.load({}, dsn=dsn, traces_sample_rate=1.0, environment="hostile")
    exporter = SentrySpanExporter(settings=settings)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "hostile"}), id_generator=SystemRandomIds()
    )
    provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
    try:
        spent = _run_app(provider.get_tracer("hostile"))
        assert max(spent) < PER_SPAN_SECONDS, [round(s, 3) for s in spent]
        if scenario == "up":
            assert provider.force_flush(30_000)
            events = receiver.events()
            assert len([e for e in events if e.get("type") == "transaction"]) == 12
            for event in events:
                body = json.dumps(event, allow_nan=False).encode("utf-8", "replace")
                assert not relay_complaints(body), relay_complaints(body)
    finally:
        start = time.perf_counter()
        exporter.shutdown(timeout_millis=300)
        provider.shutdown()
        assert time.perf_counter() - start < 5, "shutdown blocked"
