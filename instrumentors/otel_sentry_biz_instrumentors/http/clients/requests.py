"""BizRequestsInstrumentor: CLIENT spans for ``requests``, one per request sent (and per redirect).

>>> BizRequestsInstrumentor().instrument()
>>> requests.get("https://api.example.com/v1/orders?page=2")

Wraps ``requests.adapters.HTTPAdapter.send`` (custom adapters that call ``super().send()``
are covered). With contrib's ``RequestsInstrumentor`` active too, contrib's span (from
``Session.send``) is current here and ours enriches it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_sentry_biz_instrumentors.http.clients.call import ClientTracing
from otel_sentry_biz_instrumentors.http.package import _instruments_requests
from otel_sentry_biz_instrumentors.http.patching import unwrap, wrap


class BizRequestsInstrumentor(BaseInstrumentor):
    """Business-aware tracing of ``requests``; see the module docstring.

    ``instrument()`` accepts ``tracer_provider``, ``capture_headers`` and ``capture_query``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_requests

    def _instrument(self, **kwargs: Any) -> None:
        self._tracing = ClientTracing.for_instrumentor(__name__, kwargs)
        _instrument_adapter_send(self._tracing)

    def _uninstrument(self, **kwargs: Any) -> None:
        _uninstrument_adapter_send()
        self._tracing.close()


def _instrument_adapter_send(tracing: ClientTracing) -> None:
    from requests.adapters import HTTPAdapter

    def send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs["request"]
        call = tracing.begin(request.method or "GET", request.url, request.headers.items())
        if call is None:
            return wrapped(*args, **kwargs)
        request.headers.update(call.propagation_headers)  # this PreparedRequest is per send
        with call:
            response = wrapped(*args, **kwargs)
            call.response(response.status_code, response.headers.items())
            return response

    wrap(HTTPAdapter, "send", send)


def _uninstrument_adapter_send() -> None:
    from requests.adapters import HTTPAdapter

    unwrap(HTTPAdapter, "send")
