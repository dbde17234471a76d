"""HTTP: client instrumentors and server middleware, business-aware.

Clients (``BaseInstrumentor`` subclasses, loaded by ``opentelemetry-instrument`` through the
``opentelemetry_instrumentor`` entry points)::

    from otel_sentry_biz_instrumentors.http import BizRequestsInstrumentor
    BizRequestsInstrumentor().instrument()

Servers are wired by middleware, as contrib does per framework::

    application = BizWSGIMiddleware(application)          # any WSGI app
    instrument_flask_app(app)                             # Flask
    "otel_sentry_biz_instrumentors.http.django.BizDjangoMiddleware"   # Django MIDDLEWARE
    app.add_middleware(BizASGIMiddleware)                 # Starlette, FastAPI

See ``docs/instrumentors/http.md``. Importing this package imports none of the instrumented
libraries (names are resolved on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "BizRequestsInstrumentor": "otel_sentry_biz_instrumentors.http.clients.requests",
    "BizHttpxInstrumentor": "otel_sentry_biz_instrumentors.http.clients.httpx",
    "BizUrllib3Instrumentor": "otel_sentry_biz_instrumentors.http.clients.urllib3",
    "BizUrllibInstrumentor": "otel_sentry_biz_instrumentors.http.clients.urllib",
    "BizWSGIMiddleware": "otel_sentry_biz_instrumentors.http.wsgi",
    "BizASGIMiddleware": "otel_sentry_biz_instrumentors.http.asgi",
    "BizDjangoMiddleware": "otel_sentry_biz_instrumentors.http.django",
    "instrument_flask_app": "otel_sentry_biz_instrumentors.http.flask",
    "uninstrument_flask_app": "otel_sentry_biz_instrumentors.http.flask",
    "HttpSettings": "otel_sentry_biz_instrumentors.http.settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = sorted(_EXPORTS)
