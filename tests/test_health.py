"""health() and the /health endpoints, over a real WSGI server and a real ASGI call."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import otel_sentry_biz as biz
from otel_sentry_biz import healthcheck as health_module
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.exporter import SentrySpanExporter


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def wsgi_url():
    server = make_server("127.0.0.1", 0, biz.wsgi_health_app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/health"
    server.shutdown()
    server.server_close()


def test_disabled_without_an_exporter(wsgi_url: str) -> None:
    for exporter in list(health_module._exporters):
        health_module._exporters.discard(exporter)
    status, body = _get(wsgi_url)
    assert status == 200
    assert body == {"status": "disabled", "sentry": {"enabled": False, "dsn_configured": False}}


def test_healthy_with_the_settings_and_delivery_state(wsgi_url: str) -> None:
    with LocalReceiver() as receiver:
        exporter = SentrySpanExporter(
            dsn=receiver.dsn, environment="production", release="shop@2.0", traces_sample_rate=0.05
        )
        try:
            status, body = _get(wsgi_url)
        finally:
            exporter.shutdown()
    assert status == 200 and body["status"] == "healthy"
    sentry = body["sentry"]
    assert sentry["environment"] == "production" and sentry["release"] == "shop@2.0"
    assert sentry["traces_sample_rate"] == 0.05 and sentry["sample_rate"] == 1.0
    assert sentry["queue_depth"] == 0 and sentry["last_error"] is None


def test_degraded_when_the_queue_is_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = SentrySpanExporter(dsn="http://k@127.0.0.1:9/1")
    state = exporter.health_state()
    monkeypatch.setattr(
        exporter, "health_state", lambda: {**state, "queued": 3, "last_error": "refused"}
    )
    try:
        answer = biz.health()
        assert answer["status"] == "degraded"
        assert answer["sentry"]["queue_depth"] >= 3 and answer["sentry"]["last_error"] == "refused"
        sent = []

        async def receive() -> dict:
            return {"type": "http.request"}

        async def send(message: dict) -> None:
            sent.append(message)

        asyncio.run(biz.asgi_health_app({"type": "http"}, receive, send))
        assert sent[0]["status"] == 503
        assert json.loads(sent[1]["body"])["status"] == "degraded"
    finally:
        exporter.shutdown(timeout_millis=100)


def _only_new_exporters() -> None:
    """Forget the exporters earlier tests left: health() reports the first live one."""
    for exporter in list(health_module._exporters):
        health_module._exporters.discard(exporter)


@pytest.mark.parametrize(
    ("settings", "environment", "release"),
    [
        ({}, "staging", "shop@2.1.0"),  # from the resource, as the events carry them
        ({"environment": "canary", "release": "r42"}, "canary", "r42"),  # settings win
    ],
)
def test_health_reports_the_environment_and_release_the_events_carry(
    settings, environment, release
) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {"service.name": "shop", "service.version": "2.1.0", "deployment.environment": "staging"}
    )
    _only_new_exporters()
    with LocalReceiver() as receiver:
        provider = TracerProvider(resource=resource)
        pipeline = biz.configure(tracer_provider=provider, dsn=receiver.dsn, environ={}, **settings)
        try:
            reported = biz.health()["sentry"]
            with provider.get_tracer("t").start_as_current_span("checkout"):
                pass
            assert pipeline.force_flush(5_000)
            (sent,) = receiver.events("transaction")
        finally:
            pipeline.shutdown()
    assert (reported["environment"], reported["release"]) == (environment, release)
    assert (sent["environment"], sent["release"]) == (environment, release)


def test_health_reports_production_when_nothing_names_an_environment() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    _only_new_exporters()
    with LocalReceiver() as receiver:
        pipeline = biz.configure(tracer_provider=TracerProvider(), dsn=receiver.dsn, environ={})
        try:
            reported = biz.health()["sentry"]
        finally:
            pipeline.shutdown()
    assert (reported["environment"], reported["release"]) == ("production", None)
