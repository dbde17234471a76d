"""Server middleware on real servers on 127.0.0.1: Flask (werkzeug), Django (wsgiref),
FastAPI and Starlette (uvicorn); and one connected trace from a client to a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.http import (
    BizASGIMiddleware,
    BizRequestsInstrumentor,
    BizWSGIMiddleware,
    instrument_flask_app,
)
from tests.instrumentors.test_http_support import (
    asgi_server,
    exception_events,
    instrumented,
    of_kind,
    wait_for_spans,
    wsgi_server,
)

pytest.importorskip("flask")

CAPTURE = {"capture_headers": "X-Request-Id, Authorization", "capture_query": "page"}


def user_of_request(request: Any) -> Any:
    """The test apps' user hook: the user named by the X-User-Id header, with PII fields.

    Flask and Django give their request; ASGI gives the scope.
    """
    if isinstance(request, dict):
        from starlette.requests import Request

        request = Request(request)
    user_id = request.headers.get("x-user-id")
    return {"id": user_id, "email": "ann@example.com", "username": "ann"} if user_id else None


def _server_span(finished: Any) -> Any:
    spans = wait_for_spans(finished, lambda found: bool(of_kind(found, SpanKind.SERVER)))
    (server,) = of_kind(spans, SpanKind.SERVER)
    return server


# -- Flask -----------------------------------------------------------------------------


def _flask_app(**options: Any) -> Any:
    import flask

    app = flask.Flask("biz_test")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        with trace.get_tracer("tests").start_as_current_span("load user"):
            return {"user_id": user_id, "business": dict(biz.current_business())}

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("kaboom")

    @app.get("/teapot")
    def teapot() -> Any:
        flask.abort(418)

    instrument_flask_app(app, user_from_request=user_of_request, **options)
    return app


@pytest.fixture(scope="module")
def flask_url() -> Iterator[str]:
    with wsgi_server(_flask_app(**CAPTURE), werkzeug=True) as url:
        yield url


def test_flask_span_is_named_by_rule_with_user_id_only(flask_url, finished):
    response = requests.get(
        f"{flask_url}/users/7?page=2&token=t&other=o",
        headers={"X-User-Id": "u-7", "X-Request-Id": "r-1", "Authorization": "Basic x"},
        timeout=5,
    )

    assert response.status_code == 200
    server = _server_span(finished)
    assert server.name == "GET /users/<int:user_id>"
    assert server.status.status_code is StatusCode.UNSET
    attrs = server.attributes
    assert attrs["http.route"] == "/users/<int:user_id>"
    assert attrs["http.response.status_code"] == 200
    assert attrs["url.path"] == "/users/7"
    assert attrs["url.query"] == "page=2&token=REDACTED&other=REDACTED"
    assert attrs["http.request.header.x-request-id"] == ("r-1",)
    assert attrs["http.request.header.authorization"] == ("REDACTED",)
    assert attrs["user.id"] == "u-7"
    assert "user.email" not in attrs and "user.name" not in attrs  # no PII by default
    assert "client.address" not in attrs
    assert "http.method" not in attrs  # old names only under http/dup


def test_flask_500_fails_the_span_and_records_the_exception_once(flask_url, finished):
    response = requests.get(f"{flask_url}/boom", timeout=5)

    assert response.status_code == 500
    server = _server_span(finished)
    assert server.status.status_code is StatusCode.ERROR
    assert server.status.description == "RuntimeError: kaboom"
    (event,) = exception_events(server)
    assert event.attributes["exception.message"] == "kaboom"
    assert event.attributes["exception.escaped"] == "False"  # Flask answered it: no escape
    assert server.attributes["error.type"] == "RuntimeError"


def test_flask_4xx_is_not_an_error(flask_url, finished):
    response = requests.get(f"{flask_url}/teapot", timeout=5)

    assert response.status_code == 418
    server = _server_span(finished)
    assert server.status.status_code is StatusCode.UNSET
    assert exception_events(server) == []


def test_user_pii_and_client_address_only_when_allowed(finished):
    with wsgi_server(_flask_app(send_default_pii=True), werkzeug=True) as url:
        requests.get(f"{url}/users/1", headers={"X-User-Id": "u-1"}, timeout=5)
        server = _server_span(finished)

    assert server.attributes["user.id"] == "u-1"
    assert server.attributes["user.email"] == "ann@example.com"
    assert server.attributes["user.name"] == "ann"
    assert server.attributes["client.address"] == "127.0.0.1"


def test_client_to_server_is_one_trace_with_business_baggage(flask_url, finished, tracer):
    with instrumented(BizRequestsInstrumentor()):
        with tracer.start_as_current_span("checkout"):
            with biz.context(customer="ACME", work_request="WR-1", propagate=["customer"]):
                answer = requests.get(f"{flask_url}/users/3", timeout=5).json()
        spans = wait_for_spans(finished, lambda found: len(found) >= 4)

    (client,) = of_kind(spans, SpanKind.CLIENT)
    (server,) = of_kind(spans, SpanKind.SERVER)
    (inner,) = [span for span in spans if span.name == "load user"]
    assert server.context.trace_id == client.context.trace_id
    assert server.parent.span_id == client.context.span_id
    assert server.parent.is_remote
    assert inner.parent.span_id == server.context.span_id
    assert server.attributes["biz.customer"] == "ACME"  # from baggage
    assert inner.attributes["biz.customer"] == "ACME"
    assert "biz.work_request" not in server.attributes  # not propagated
    assert answer["business"] == {"biz.customer": "ACME"}


# -- Django ----------------------------------------------------------------------------


def _django_views() -> list[Any]:
    from django.http import Http404, JsonResponse
    from django.urls import path

    def order(request: Any, order_id: int) -> Any:
        return JsonResponse({"order": order_id, "business": dict(biz.current_business())})

    def boom(request: Any) -> Any:
        raise ValueError("bad order")

    def missing(request: Any) -> Any:
        raise Http404("no such order")

    return [
        path("orders/<int:order_id>/", order),
        path("boom/", boom),
        path("missing/", missing),
    ]


urlpatterns: list[Any] = []  # Django's ROOT_URLCONF points here; filled by the fixture


@pytest.fixture(scope="module")
def django_url() -> Iterator[str]:
    pytest.importorskip("django")
    from django.conf import settings

    if settings.configured:
        pytest.skip("Django settings were configured by another test module")
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["otel_sentry_biz_instrumentors.http.django.BizDjangoMiddleware"],
        OTEL_SENTRY_BIZ_USER_FROM_REQUEST=user_of_request,
        INSTALLED_APPS=[],
        LOGGING_CONFIG=None,
    )
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    urlpatterns[:] = _django_views()
    with wsgi_server(get_wsgi_application()) as url:
        yield url


def test_django_span_is_named_by_url_pattern(django_url, finished):
    response = requests.get(f"{django_url}/orders/42/", headers={"X-User-Id": "u-42"}, timeout=5)

    assert response.status_code == 200
    server = _server_span(finished)
    assert server.name == "GET /orders/<int:order_id>/"
    assert server.attributes["http.route"] == "/orders/<int:order_id>/"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["user.id"] == "u-42"
    assert "user.email" not in server.attributes


def test_django_500_fails_the_span_with_the_view_exception(django_url, finished):
    response = requests.get(f"{django_url}/boom/", timeout=5)

    assert response.status_code == 500
    server = _server_span(finished)
    assert server.status.status_code is StatusCode.ERROR
    (event,) = exception_events(server)
    assert event.attributes["exception.message"] == "bad order"
    assert server.attributes["http.route"] == "/boom/"


def test_django_404_is_not_an_error(django_url, finished):
    response = requests.get(f"{django_url}/missing/", timeout=5)

    assert response.status_code == 404
    server = _server_span(finished)
    assert server.status.status_code is StatusCode.UNSET
    # Django hands Http404 to process_exception too: it must not become a Sentry error.
    assert [event.name for event in server.events if event.name == "exception"] == []


def test_django_receives_business_baggage(django_url, finished):
    with instrumented(BizRequestsInstrumentor()):
        with biz.context(customer="ACME", propagate=True):
            answer = requests.get(f"{django_url}/orders/1/", timeout=5).json()

    assert answer["business"] == {"biz.customer": "ACME"}
    assert _server_span(finished).attributes["biz.customer"] == "ACME"


def test_django_behind_our_wsgi_middleware_gives_one_span(django_url, finished):
    from django.core.wsgi import get_wsgi_application

    with wsgi_server(BizWSGIMiddleware(get_wsgi_application())) as url:
        requests.get(f"{url}/orders/7/", timeout=5)
        spans = wait_for_spans(finished, lambda found: bool(of_kind(found, SpanKind.SERVER)))

    (server,) = of_kind(spans, SpanKind.SERVER)
    assert server.name == "GET /orders/<int:order_id>/"
    assert server.attributes["http.response.status_code"] == 200


# -- a bare WSGI app -------------------------------------------------------------------


def test_bare_wsgi_app_exception_and_user_from_environ(finished):
    def app(environ: Any, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/boom":
            raise ZeroDivisionError("no rate")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def user_of_environ(environ: Any) -> Any:
        return {"id": environ.get("HTTP_X_USER_ID")}

    with wsgi_server(BizWSGIMiddleware(app, user_from_request=user_of_environ)) as url:
        assert requests.get(f"{url}/fine", headers={"X-User-Id": "u-9"}, timeout=5).text == "ok"
        boom_response = requests.get(f"{url}/boom", headers={"X-User-Id": "u-8"}, timeout=5)
        assert boom_response.status_code == 500
        spans = wait_for_spans(finished, lambda found: len(of_kind(found, SpanKind.SERVER)) == 2)

    fine, boom = sorted(of_kind(spans, SpanKind.SERVER), key=lambda span: span.start_time)
    assert fine.name == "GET"  # no router: no route
    assert fine.attributes["user.id"] == "u-9"
    assert boom.status.status_code is StatusCode.ERROR
    assert boom.status.description == "ZeroDivisionError: no rate"
    assert boom.attributes["http.response.status_code"] == 500
    assert boom.attributes["user.id"] == "u-8"  # asked although no response started
    (event,) = exception_events(boom)
    assert event.attributes["exception.escaped"] == "True"


# -- FastAPI and Starlette -------------------------------------------------------------


def _fastapi_app(native_tracing: bool) -> Any:
    fastapi = pytest.importorskip("fastapi")

    app = fastapi.FastAPI(telemetry={"tracing": native_tracing, "metrics": False, "logs": False})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> Any:
        return {"item": item_id, "business": dict(biz.current_business())}

    @app.get("/boom")
    async def boom() -> Any:
        raise KeyError("no stock")

    @app.get("/missing")
    async def missing() -> Any:
        raise fastapi.HTTPException(status_code=404)

    app.add_middleware(BizASGIMiddleware, user_from_request=user_of_request, **CAPTURE)
    return app


@pytest.fixture(scope="module", params=["fastapi-native-tracing", "fastapi-no-native-tracing"])
def fastapi_url(request: pytest.FixtureRequest) -> Iterator[str]:
    # FastAPI 0.165+ starts its own SERVER span outside the middleware stack: ours, added
    # with add_middleware, then enriches that span instead of starting a second one.
    native = request.param == "fastapi-native-tracing"
    with asgi_server(_fastapi_app(native)) as url:
        yield url


def test_fastapi_one_span_named_by_route_with_our_enrichment(fastapi_url, finished):
    response = requests.get(
        f"{fastapi_url}/items/5?page=1&token=t",
        headers={"X-User-Id": "u-5", "X-Request-Id": "r-5"},
        timeout=5,
    )

    assert response.status_code == 200
    server = _server_span(finished)
    assert server.name == "GET /items/{item_id}"
    assert server.attributes["http.route"] == "/items/{item_id}"
    assert server.attributes["url.query"] == "page=1&token=REDACTED"
    assert server.attributes["user.id"] == "u-5"
    assert server.attributes["http.request.header.x-request-id"] == ("r-5",)
    assert server.attributes["network.protocol.version"] == "1.1"


def test_fastapi_unhandled_exception_fails_the_span_once(fastapi_url, finished):
    response = requests.get(f"{fastapi_url}/boom", headers={"X-User-Id": "u-3"}, timeout=5)

    assert response.status_code == 500
    server = _server_span(finished)
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["http.response.status_code"] == 500
    # The exception passed ours before Starlette's error middleware answered: the user was
    # asked when it did, and it is marked as escaped for the Sentry bridge.
    assert server.attributes["user.id"] == "u-3"
    (event,) = exception_events(server)
    assert event.attributes["exception.type"].endswith("KeyError")
    assert event.attributes["exception.escaped"] == "True"


def test_fastapi_404_is_not_an_error(fastapi_url, finished):
    response = requests.get(f"{fastapi_url}/missing", timeout=5)

    assert response.status_code == 404
    server = _server_span(finished)
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes["http.response.status_code"] == 404


def test_starlette_wrapped_whole_gives_one_trace_and_mounted_routes(finished):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def hello(request: Any) -> Any:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    async def thing(request: Any) -> Any:
        return PlainTextResponse(f"thing {request.path_params['thing_id']}")

    routes = [
        Route("/hello/{name}", hello),
        Mount("/api", routes=[Route("/things/{thing_id}", thing)]),
    ]
    app = BizASGIMiddleware(Starlette(routes=routes))
    with asgi_server(app) as url, instrumented(BizRequestsInstrumentor()):
        with biz.context(customer="ACME", propagate=True):
            assert requests.get(f"{url}/hello/ann", timeout=5).text == "hello ann"
        assert requests.get(f"{url}/api/things/9", timeout=5).text == "thing 9"
        spans = wait_for_spans(finished, lambda found: len(of_kind(found, SpanKind.SERVER)) == 2)

    hello_span, thing_span = sorted(of_kind(spans, SpanKind.SERVER), key=lambda s: s.start_time)
    client = min(of_kind(spans, SpanKind.CLIENT), key=lambda s: s.start_time)
    assert hello_span.name == "GET /hello/{name}"
    assert hello_span.parent.span_id == client.context.span_id
    assert hello_span.attributes["biz.customer"] == "ACME"
    assert thing_span.attributes["http.route"] == "/api/things/{thing_id}"
