"""BizUrllib3Instrumentor: CLIENT spans for ``urllib3``, one per attempt (retries and redirects
each get theirs, as semconv asks).

>>> BizUrllib3Instrumentor().instrument()
>>> urllib3.PoolManager().request("GET", "https://api.example.com/v1/orders")

Wraps ``HTTPConnectionPool._make_request``, the one call that sends a request and reads its
answer (present in urllib3 1.26 and 2.x). With contrib's ``URLLib3Instrumentor`` active too,
contrib's span (from ``urlopen``) is current here and ours enriches it. Under our
``requests`` instrumentor, ours stands aside: the ``requests`` span covers the request.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_sentry_biz_instrumentors.http.clients.call import ClientTracing
from otel_sentry_biz_instrumentors.http.package import _instruments_urllib3
from otel_sentry_biz_instrumentors.http.patching import unwrap, wrap

#: Position of ``headers`` in ``_make_request(conn, method, url, body, headers, ...)`` (2.x);
#: urllib3 itself always passes it by keyword.
_HEADERS_POSITION = 4


class BizUrllib3Instrumentor(BaseInstrumentor):
    """Business-aware tracing of ``urllib3``; see the module docstring.

    ``instrument()`` accepts ``tracer_provider``, ``capture_headers`` and ``capture_query``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_urllib3

    def _instrument(self, **kwargs: Any) -> None:
        self._tracing = ClientTracing.for_instrumentor(__name__, kwargs)
        _instrument_make_request(self._tracing)

    def _uninstrument(self, **kwargs: Any) -> None:
        _uninstrument_make_request()
        self._tracing.close()


def _instrument_make_request(tracing: ClientTracing) -> None:
    from urllib3.connectionpool import HTTPConnectionPool

    def make_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        method = args[1] if len(args) > 1 else kwargs["method"]
        target = args[2] if len(args) > 2 else kwargs["url"]
        positional = len(args) > _HEADERS_POSITION
        headers = args[_HEADERS_POSITION] if positional else kwargs.get("headers")
        call = tracing.begin(method, pool_url(instance, target), (headers or {}).items())
        if call is None:
            return wrapped(*args, **kwargs)
        if call.propagation_headers:
            # Often the pool's own default headers: add ours to a copy, never to the original.
            sent = headers.copy() if headers is not None else {}
            sent.update(call.propagation_headers)
            if positional:
                args = (*args[:_HEADERS_POSITION], sent, *args[_HEADERS_POSITION + 1 :])
            else:
                kwargs = {**kwargs, "headers": sent}
        with call:
            response = wrapped(*args, **kwargs)
            call.response(response.status, response.headers.items())
            return response

    wrap(HTTPConnectionPool, "_make_request", make_request)


def _uninstrument_make_request() -> None:
    from urllib3.connectionpool import HTTPConnectionPool

    unwrap(HTTPConnectionPool, "_make_request")


def pool_url(pool: Any, target: str) -> str:
    """The full URL of ``target`` (a path, or an absolute URL when sent through a proxy)."""
    if target.startswith(("http://", "https://")):
        return target
    host = pool.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    port = f":{pool.port}" if pool.port else ""
    return f"{pool.scheme}://{host}{port}{target}"
