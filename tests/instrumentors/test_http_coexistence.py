"""Ours beside contrib's instrumentors and middleware: one span per request, enriched by ours."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import pytest
import requests
import urllib3
from opentelemetry.trace import SpanKind, StatusCode

from otel_sentry_biz_instrumentors.http import (
    BizASGIMiddleware,
    BizHttpxInstrumentor,
    BizRequestsInstrumentor,
    BizUrllib3Instrumentor,
    BizUrllibInstrumentor,
    instrument_flask_app,
)
from tests.instrumentors.test_http_support import (
    asgi_server,
    closed_port_url,
    echo_server,
    exception_events,
    instrumented,
    of_kind,
    wait_for_spans,
    wsgi_server,
)

contrib_requests = pytest.importorskip("opentelemetry.instrumentation.requests")
contrib_httpx = pytest.importorskip("opentelemetry.instrumentation.httpx")
contrib_urllib3 = pytest.importorskip("opentelemetry.instrumentation.urllib3")
contrib_urllib = pytest.importorskip("opentelemetry.instrumentation.urllib")

#: What the clients raise when the server cannot be reached or is too slow.
CLIENT_ERRORS = (OSError, httpx.HTTPError, urllib3.exceptions.HTTPError)


def _requests(url: str) -> int:
    return requests.get(url, timeout=2).status_code


def _httpx(url: str) -> int:
    return httpx.get(url, timeout=2).status_code


def _urllib3(url: str) -> int:
    with urllib3.PoolManager(retries=False) as pool:
        return pool.request("GET", url, timeout=2).status


def _urllib(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status


#: client -> (contrib's instrumentor, ours, a GET).
PAIRS: dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[str], int]]] = {
    "requests": (contrib_requests.RequestsInstrumentor, BizRequestsInstrumentor, _requests),
    "httpx": (contrib_httpx.HTTPXClientInstrumentor, BizHttpxInstrumentor, _httpx),
    "urllib3": (contrib_urllib3.URLLib3Instrumentor, BizUrllib3Instrumentor, _urllib3),
    "urllib": (contrib_urllib.URLLibInstrumentor, BizUrllibInstrumentor, _urllib),
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with echo_server() as url:
        yield url


@pytest.fixture(
    params=[(name, order) for name in sorted(PAIRS) for order in ("contrib-first", "ours-first")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def pair(request: pytest.FixtureRequest) -> Iterator[Callable[[str], int]]:
    name, order = request.param
    contrib, ours, get = PAIRS[name]
    both = (contrib(), ours()) if order == "contrib-first" else (ours(), contrib())
    with instrumented(*both):
        yield get


def test_one_client_span_enriched_by_ours(pair, base_url, finished):
    assert pair(f"{base_url}/orders?page=2&api_key=k1") == 200

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert client.instrumentation_scope.name.startswith("opentelemetry.instrumentation.")
    attrs = client.attributes
    # Contrib writes the old names by default; ours adds the stable ones and redacts.
    assert attrs["http.request.method"] == "GET"
    assert attrs["url.full"] == f"{base_url}/orders?page=2&api_key=REDACTED"
    assert "k1" not in attrs.get("http.url", "")
    assert attrs["server.port"] == int(base_url.rsplit(":", 1)[1])
    assert attrs["http.response.status_code"] == 200


def test_error_response_gets_our_category(pair, base_url, finished):
    with contextlib.suppress(urllib.error.HTTPError):  # how urllib answers a 5xx
        pair(f"{base_url}/status/502")

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert client.status.status_code is StatusCode.ERROR
    assert client.attributes["biz.category"] == "integration"


def test_connection_error_recorded_once_with_our_category(pair, finished):
    with pytest.raises(CLIENT_ERRORS):
        pair(closed_port_url())

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert client.attributes["biz.category"] == "integration"
    assert len(exception_events(client)) <= 1  # contrib's httpx and urllib3 record none


def test_everything_at_once_gives_one_span(base_url, finished):
    everything = [cls() for pair in PAIRS.values() for cls in pair[:2]]
    with instrumented(*everything):
        requests.get(f"{base_url}/echo", timeout=2)
        with urllib3.PoolManager() as pool:
            echoed = json.loads(pool.request("GET", f"{base_url}/echo").data)

    clients = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert len(clients) == 2
    assert echoed["traceparent"].split("-")[2] == f"{clients[1].context.span_id:016x}"


# -- servers ---------------------------------------------------------------------------


def test_contrib_wsgi_middleware_outside_ours_gives_one_enriched_span(finished):
    flask = pytest.importorskip("flask")
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    app = flask.Flask("coexistence")
    app.add_url_rule("/users/<int:user_id>", "user", lambda user_id: {"id": user_id})
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    instrument_flask_app(app, user_from_request=lambda request: {"id": "u-1"})
    app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)
    with wsgi_server(app, werkzeug=True) as url:
        requests.get(f"{url}/users/3", timeout=5)
        requests.get(f"{url}/boom", timeout=5)
        spans = wait_for_spans(finished, lambda found: len(of_kind(found, SpanKind.SERVER)) == 2)

    user, boom = sorted(of_kind(spans, SpanKind.SERVER), key=lambda span: span.start_time)
    assert user.instrumentation_scope.name == "opentelemetry.instrumentation.wsgi"
    assert user.name == "GET /users/<int:user_id>"
    assert user.attributes["http.route"] == "/users/<int:user_id>"
    assert user.attributes["user.id"] == "u-1"
    assert user.attributes["http.request.method"] == "GET"  # stable name added by ours
    assert boom.status.status_code is StatusCode.ERROR
    assert len(exception_events(boom)) == 1  # contrib's WSGI middleware records none: ours


def test_contrib_asgi_middleware_outside_ours_gives_one_enriched_span(finished):
    pytest.importorskip("starlette")
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Any) -> Any:
        return PlainTextResponse("ok")

    async def boom(request: Any) -> Any:
        raise LookupError("gone")

    # Ours inside Starlette's error middleware sees the exception while contrib's span is open.
    starlette_app = Starlette(
        routes=[Route("/items/{item_id}", item), Route("/boom", boom)],
        middleware=[Middleware(BizASGIMiddleware)],
    )
    app = OpenTelemetryMiddleware(starlette_app)
    with asgi_server(app) as url:
        requests.get(f"{url}/items/1", timeout=5)
        requests.get(f"{url}/boom", timeout=5)
        spans = wait_for_spans(finished, lambda found: len(of_kind(found, SpanKind.SERVER)) == 2)

    item_span, boom_span = sorted(of_kind(spans, SpanKind.SERVER), key=lambda s: s.start_time)
    assert item_span.instrumentation_scope.name == "opentelemetry.instrumentation.asgi"
    assert item_span.attributes["http.route"] == "/items/{item_id}"
    assert item_span.name == "GET /items/{item_id}"
    assert boom_span.status.status_code is StatusCode.ERROR
    assert len(exception_events(boom_span)) == 1  # recorded by ours, once
