"""Client instrumentors against a real server on 127.0.0.1: spans, propagation, errors."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import pytest
import requests
import urllib3
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.http import (
    BizHttpxInstrumentor,
    BizRequestsInstrumentor,
    BizUrllib3Instrumentor,
    BizUrllibInstrumentor,
)
from tests.instrumentors.test_http_support import (
    SLOW_SECONDS,
    closed_port_url,
    echo_server,
    exception_events,
    instrumented,
    of_kind,
)

TIMEOUT = SLOW_SECONDS / 3

#: What the clients raise when the server cannot be reached or is too slow.
CLIENT_ERRORS = (OSError, httpx.HTTPError, urllib3.exceptions.HTTPError)


def _requests(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = requests.get(url, headers=headers, timeout=TIMEOUT)
    return response.status_code, response.json()


def _httpx(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = httpx.get(url, headers=headers, timeout=TIMEOUT)
    return response.status_code, response.json()


def _httpx_async(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            return await client.get(url, headers=headers)

    response = asyncio.run(get())  # the task runs in a copy of the caller's context
    return response.status_code, response.json()


def _urllib3(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    with urllib3.PoolManager(retries=False, timeout=TIMEOUT) as pool:
        response = pool.request("GET", url, headers=headers)
    return response.status, json.loads(response.data)


def _urllib(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 4xx and 5xx arrive as exceptions
        return exc.code, json.loads(exc.read())


CLIENTS: dict[str, Callable[[str, dict[str, str]], tuple[int, dict[str, Any]]]] = {
    "requests": _requests,
    "httpx": _httpx,
    "httpx-async": _httpx_async,
    "urllib3": _urllib3,
    "urllib": _urllib,
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    instrumentors = (
        BizRequestsInstrumentor(),
        BizHttpxInstrumentor(),
        BizUrllib3Instrumentor(),
        BizUrllibInstrumentor(),
    )
    with echo_server() as url, instrumented(*instrumentors):
        yield url


@pytest.fixture(params=sorted(CLIENTS))
def get(request: pytest.FixtureRequest) -> Callable[..., tuple[int, dict[str, Any]]]:
    return CLIENTS[request.param]


def test_client_span_has_stable_attributes_and_redacted_url(base_url, get, finished, tracer):
    with tracer.start_as_current_span("handler") as parent:
        status, _ = get(f"{base_url}/orders?page=2&access_token=s3cret&sig=abc", {})

    assert status == 200
    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    port = int(base_url.rsplit(":", 1)[1])
    assert client.name == "GET"
    assert client.parent.span_id == parent.get_span_context().span_id
    assert client.status.status_code is StatusCode.UNSET
    assert {k: v for k, v in client.attributes.items() if not k.startswith("biz.")} == {
        "http.request.method": "GET",
        "url.full": f"{base_url}/orders?page=2&access_token=REDACTED&sig=REDACTED",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
    }


def test_traceparent_and_business_baggage_are_injected(base_url, get, finished):
    with biz.context(customer="ACME", card_number="4111", propagate=True):
        _, echoed = get(f"{base_url}/echo", {})

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    context = client.get_span_context()
    assert echoed["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert "biz.customer=ACME" in echoed["baggage"]
    assert "card_number" not in echoed["baggage"]  # sensitive keys never travel
    assert client.attributes["biz.customer"] == "ACME"


@pytest.mark.parametrize("code", [404, 503])
def test_4xx_and_5xx_fail_a_client_span(base_url, get, finished, code):
    status, _ = get(f"{base_url}/status/{code}", {})

    assert status == code
    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert client.status.status_code is StatusCode.ERROR
    assert client.attributes["error.type"] == str(code)
    assert client.attributes["http.response.status_code"] == code
    assert client.attributes["biz.category"] == "integration"
    assert exception_events(client) == []


def test_connection_refused_is_an_integration_error_recorded_once(get, finished, base_url):
    with pytest.raises(CLIENT_ERRORS) as raised:
        get(closed_port_url(), {})

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert client.status.status_code is StatusCode.ERROR
    assert client.attributes["biz.category"] == "integration"
    assert client.attributes["biz.impact"] == "HIGH"
    (event,) = exception_events(client)
    assert event.attributes["biz.category"] == "integration"
    assert client.attributes["error.type"].rsplit(".", 1)[-1] in (
        type(raised.value).__name__,
        "ConnectError",  # httpx re-raises httpcore.ConnectError as httpx.ConnectError
        "NewConnectionError",  # urllib3 wraps it in MaxRetryError after the attempt
        "ConnectionRefusedError",  # urllib wraps it in URLError
    )


def test_timeout_is_an_integration_error(base_url, get, finished):
    with pytest.raises(CLIENT_ERRORS):
        get(f"{base_url}/slow", {})

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    assert client.status.status_code is StatusCode.ERROR
    assert client.attributes["biz.category"] == "integration"
    assert len(exception_events(client)) == 1


def test_nothing_is_traced_under_suppress_instrumentation(base_url, get, finished):
    with suppress_instrumentation():
        _, echoed = get(f"{base_url}/echo", {})

    assert finished.get_finished_spans() == ()
    assert "traceparent" not in echoed


def test_requests_over_urllib3_gives_one_span(base_url, finished):
    requests.get(f"{base_url}/echo", timeout=2)

    assert len(of_kind(finished.get_finished_spans(), SpanKind.CLIENT)) == 1


def test_sentry_sdk_uploads_are_not_traced(base_url, finished):
    # sentry-sdk's own transport (urllib3) authenticates with X-Sentry-Auth.
    _, echoed = _urllib3(f"{base_url}/api/1/envelope/", {"X-Sentry-Auth": "Sentry sentry_key=k"})

    assert finished.get_finished_spans() == ()
    assert "traceparent" not in echoed


def test_headers_are_captured_by_allowlist_and_redacted(base_url, finished):
    instrumentor = BizRequestsInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(capture_headers="X-Request-Id, Authorization, Set-Cookie")
    try:
        requests.get(
            f"{base_url}/echo",
            headers={"X-Request-Id": "req-1", "Authorization": "Bearer t", "X-Other": "o"},
            timeout=2,
        )
    finally:
        instrumentor.uninstrument()
        instrumentor.instrument()

    (client,) = of_kind(finished.get_finished_spans(), SpanKind.CLIENT)
    captured = {k: v for k, v in client.attributes.items() if ".header." in k}
    assert captured == {
        "http.request.header.x-request-id": ("req-1",),
        "http.request.header.authorization": ("REDACTED",),
        "http.response.header.x-request-id": ("resp-1",),
        "http.response.header.set-cookie": ("REDACTED",),
    }
