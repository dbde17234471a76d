"""BizUrllibInstrumentor: CLIENT spans for ``urllib.request``, one per request sent.

>>> BizUrllibInstrumentor().instrument()
>>> urllib.request.urlopen("https://api.example.com/v1/orders")

Wraps ``urllib.request.AbstractHTTPHandler.do_open``, which both the HTTP and HTTPS handlers
use to send a request and read its answer; an error status is still an answer here (the
``HTTPError`` is raised later, by the error processor). With contrib's
``URLLibInstrumentor`` active too, contrib's span (from ``OpenerDirector.open``) is current
here and ours enriches it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_sentry_biz_instrumentors.http.clients.call import ClientTracing
from otel_sentry_biz_instrumentors.http.package import _instruments_urllib
from otel_sentry_biz_instrumentors.http.patching import unwrap, wrap


class BizUrllibInstrumentor(BaseInstrumentor):
    """Business-aware tracing of ``urllib.request``; see the module docstring.

    ``instrument()`` accepts ``tracer_provider``, ``capture_headers`` and ``capture_query``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_urllib

    def _instrument(self, **kwargs: Any) -> None:
        self._tracing = ClientTracing.for_instrumentor(__name__, kwargs)
        _instrument_do_open(self._tracing)

    def _uninstrument(self, **kwargs: Any) -> None:
        _uninstrument_do_open()
        self._tracing.close()


def _instrument_do_open(tracing: ClientTracing) -> None:
    from urllib.request import AbstractHTTPHandler

    def do_open(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[1] if len(args) > 1 else kwargs["req"]
        call = tracing.begin(request.get_method(), request.full_url, request.header_items())
        if call is None:
            return wrapped(*args, **kwargs)
        # Unredirected headers stay on this request: a redirect builds a new one, with its own.
        saved = dict(request.unredirected_hdrs)
        for name, value in call.propagation_headers.items():
            request.add_unredirected_header(name, value)
        try:
            with call:
                response = wrapped(*args, **kwargs)
                call.response(response.status, response.headers.items())
                return response
        finally:
            request.unredirected_hdrs = saved  # the caller's Request is left as it was

    wrap(AbstractHTTPHandler, "do_open", do_open)


def _uninstrument_do_open() -> None:
    from urllib.request import AbstractHTTPHandler

    unwrap(AbstractHTTPHandler, "do_open")
