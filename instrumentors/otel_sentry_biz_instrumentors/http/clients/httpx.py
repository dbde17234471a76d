"""BizHttpxInstrumentor: CLIENT spans for ``httpx``, sync and async, one per request sent.

>>> BizHttpxInstrumentor().instrument()
>>> httpx.get("https://api.example.com/v1/orders")
>>> await httpx.AsyncClient().get("https://api.example.com/v1/orders")

Wraps the connection pools of httpcore, httpx's network layer
(``httpcore.ConnectionPool.handle_request``, ``AsyncConnectionPool.handle_async_request``;
the proxy pools inherit them), so every ``httpx.HTTPTransport`` is covered, custom ones
included. With contrib's ``HTTPXClientInstrumentor`` active too, contrib's span (from the
transport) is current here and ours enriches it. A failure is recorded as httpcore raised
it (``httpcore.ConnectError``); httpx re-raises it under the same name (``httpx.ConnectError``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_sentry_biz_instrumentors.http.clients.call import ClientCall, ClientTracing
from otel_sentry_biz_instrumentors.http.package import _instruments_httpx
from otel_sentry_biz_instrumentors.http.patching import unwrap, wrap


class BizHttpxInstrumentor(BaseInstrumentor):
    """Business-aware tracing of ``httpx``; see the module docstring.

    ``instrument()`` accepts ``tracer_provider``, ``capture_headers`` and ``capture_query``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_httpx

    def _instrument(self, **kwargs: Any) -> None:
        self._tracing = ClientTracing.for_instrumentor(__name__, kwargs)
        _instrument_sync_pool(self._tracing)
        _instrument_async_pool(self._tracing)

    def _uninstrument(self, **kwargs: Any) -> None:
        _uninstrument_sync_pool()
        _uninstrument_async_pool()
        self._tracing.close()


def _instrument_sync_pool(tracing: ClientTracing) -> None:
    import httpcore

    def handle_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs["request"]
        call = _begin(tracing, request)
        if call is None:
            return wrapped(*args, **kwargs)
        with call:
            response = wrapped(*args, **kwargs)
            call.response(response.status, _decoded(response.headers))
            return response

    wrap(httpcore.ConnectionPool, "handle_request", handle_request)


def _instrument_async_pool(tracing: ClientTracing) -> None:
    import httpcore

    async def handle_async_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs["request"]
        call = _begin(tracing, request)
        if call is None:
            return await wrapped(*args, **kwargs)
        with call:
            response = await wrapped(*args, **kwargs)
            call.response(response.status, _decoded(response.headers))
            return response

    wrap(httpcore.AsyncConnectionPool, "handle_async_request", handle_async_request)


def _uninstrument_sync_pool() -> None:
    import httpcore

    unwrap(httpcore.ConnectionPool, "handle_request")


def _uninstrument_async_pool() -> None:
    import httpcore

    unwrap(httpcore.AsyncConnectionPool, "handle_async_request")


def _begin(tracing: ClientTracing, request: Any) -> ClientCall | None:
    call = tracing.begin(
        request.method.decode("ascii", "replace"),
        request_url(request.url),
        _decoded(request.headers),
    )
    if call is not None and call.propagation_headers:
        # httpx builds this httpcore.Request for this one send: replacing its list is safe.
        added = {name.lower() for name in call.propagation_headers}
        request.headers = [
            *(pair for pair in request.headers if pair[0].decode("latin-1").lower() not in added),
            *(
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in call.propagation_headers.items()
            ),
        ]
    return call


def request_url(url: Any) -> str:
    """The ``str`` of an ``httpcore.URL`` (scheme, host, port and target are bytes)."""
    scheme = url.scheme.decode("ascii")
    host = url.host.decode("ascii")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = f":{url.port}" if url.port else ""
    return f"{scheme}://{host}{port}{url.target.decode('ascii', 'replace')}"


def _decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
