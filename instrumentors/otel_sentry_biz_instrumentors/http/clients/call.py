"""One outgoing request: a CLIENT span of ours, or enrichment of the one already there.

Every client wrapper asks :meth:`ClientTracing.begin` and gets one of three answers:

* ``None`` — do nothing: instrumentation is suppressed (our exporter's own traffic), an outer
  wrapper of ours already covers this request (``requests`` over ``urllib3``), or the request is
  sentry-sdk's own envelope upload (it carries ``X-Sentry-Auth``).
* an enriching call — another instrumentation (contrib's) made the CLIENT span and it is
  current, marked by contrib's HTTP-suppression key or simply by being an HTTP CLIENT span:
  we add what it lacks (stable names, redacted URL, captured headers, error category) and
  never record its exception a second time.
* an owning call — we start the CLIENT span, hand back the ``traceparent``/``baggage`` headers
  the global propagator writes for it, and end it when the response (or the error) arrives.

>>> call = tracing.begin("GET", url, request.headers.items())
>>> if call is None:
...     return wrapped(*args, **kwargs)
>>> with call:
...     response = wrapped(*args, **kwargs)
...     call.response(response.status_code, response.headers.items())
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Optional
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import attach, create_key, detach, get_value, set_value
from opentelemetry.instrumentation.utils import (
    is_http_instrumentation_enabled,
    is_instrumentation_enabled,
    suppress_http_instrumentation,
)
from opentelemetry.propagate import inject
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.impact import Category
from otel_sentry_biz.version import __version__
from otel_sentry_biz_instrumentors.http import semconv
from otel_sentry_biz_instrumentors.http.redact import captured_headers, header_map, redact_url
from otel_sentry_biz_instrumentors.http.settings import HttpSettings

_logger = logging.getLogger("otel_sentry_biz.instrumentors.http.clients")

#: Set while one of our wrappers handles a request, so inner wrappers of ours stand aside.
_HANDLED = create_key("otel_sentry_biz.http.client_handled")

#: sentry-sdk's transport authenticates every upload with this header: never trace it.
SENTRY_AUTH_HEADER = "x-sentry-auth"

#: Exception classes (by name, anywhere in the MRO) that mean the remote side could not be
#: reached or answered badly: connection refused, DNS, TLS, timeouts, broken responses. OSError
#: covers the standard library, ``requests`` and ``urllib.error``; HTTPError and TransportError
#: are the roots of ``urllib3``'s and ``httpx``/``httpcore``'s own hierarchies.
TRANSPORT_ERROR_BASES = frozenset(
    {"OSError", "HTTPError", "TransportError", "TimeoutException", "NetworkError"}
)

_REQUEST_HEADER = "http.request.header."
_RESPONSE_HEADER = "http.response.header."


def is_transport_error(exc: BaseException) -> bool:
    """True when ``exc`` says the call failed on the way (category ``integration``)."""
    return any(cls.__name__ in TRANSPORT_ERROR_BASES for cls in type(exc).__mro__)


class ClientTracing:
    """Starts client calls for one instrumentor: its tracer and settings, fixed at instrument().

    Threading: ``begin`` may be called from any thread or task; it keeps no state.
    """

    def __init__(self, tracer: trace.Tracer, settings: HttpSettings) -> None:
        self._tracer = tracer
        self._settings = settings
        self._closed = False

    @classmethod
    def for_instrumentor(cls, name: str, kwargs: Mapping[str, Any]) -> ClientTracing:
        """Tracer and settings from ``instrument(**kwargs)``: ``tracer_provider``,
        ``capture_headers``, ``capture_query`` (variables fill what is not given)."""
        settings = HttpSettings.load(
            capture_headers=kwargs.get("capture_headers"),
            capture_query=kwargs.get("capture_query"),
        )
        tracer = trace.get_tracer(
            name, __version__, kwargs.get("tracer_provider"), schema_url=semconv.SCHEMA_URL
        )
        return cls(tracer, settings)

    def close(self) -> None:
        """Stop tracing: a wrapper that could not be removed passes every call through."""
        self._closed = True

    def begin(
        self, method: str, url: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Optional[ClientCall]:
        """Decide what to do for this request; never raises (``None`` on any failure)."""
        try:
            return self._begin(method, url, headers)
        except Exception:
            _logger.exception("could not trace an HTTP request; sending it untraced")
            return None

    def _begin(
        self, method: str, url: str, headers: Iterable[tuple[str, str]]
    ) -> Optional[ClientCall]:
        if self._closed or not is_instrumentation_enabled() or get_value(_HANDLED):
            return None
        request_headers = header_map(headers)
        if SENTRY_AUTH_HEADER in request_headers:
            return None
        current = trace.get_current_span()
        outer = _is_http_client_span(current)
        if outer or not is_http_instrumentation_enabled():
            if not outer or not current.is_recording():
                return None  # suppressed by whoever set the key; not ours to trace
            call = ClientCall(current, self._settings, owned=False)
            call.describe_request(method, url, request_headers)
            return call
        mode = self._settings.semconv
        attributes: dict[str, Any] = {}
        name = semconv.set_method(attributes, method, mode)
        attributes.update(request_attributes(url, request_headers, self._settings))
        span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return ClientCall(span, self._settings, owned=True)


def request_attributes(
    url: str, headers: Mapping[str, list[str]], settings: HttpSettings
) -> dict[str, Any]:
    """URL, server and captured request headers of a client request, as span attributes."""
    mode = settings.semconv
    attributes: dict[str, Any] = {}
    semconv.set_http(attributes, "url_full", redact_url(url, settings.capture_query), mode)
    try:
        parts = urlsplit(url)
        port = parts.port or semconv.DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return attributes
    semconv.set_http(attributes, "peer_address", parts.hostname, mode)
    semconv.set_http(attributes, "peer_port", port, mode)
    if settings.capture_headers:
        attributes.update(captured_headers(headers, settings.capture_headers, _REQUEST_HEADER))
    return attributes


class ClientCall:
    """One request in flight: a context manager around the library's real call.

    ``propagation_headers`` are the headers to add to the request (empty when enriching:
    the owner of the span injected them). Entering marks the request handled (and, for our
    own span, makes it current and suppresses HTTP instrumentation below); leaving records
    the outcome and, for our own span, ends it.
    """

    __slots__ = ("_owned", "_settings", "_span", "_suppress", "_token", "propagation_headers")

    def __init__(self, span: Span, settings: HttpSettings, *, owned: bool) -> None:
        self._span = span
        self._settings = settings
        self._owned = owned
        self._token: Optional[object] = None
        self._suppress: Any = None
        self.propagation_headers: dict[str, str] = {}
        if owned:
            inject(self.propagation_headers, context=trace.set_span_in_context(span))

    def describe_request(self, method: str, url: str, headers: Mapping[str, list[str]]) -> None:
        """Fill what the other instrumentation's span lacks; redact a URL it left readable."""
        span = self._span
        existing = getattr(span, "attributes", None) or {}
        mode = self._settings.semconv
        ours: dict[str, Any] = {}
        semconv.set_method(ours, method, mode)
        ours.update(request_attributes(url, headers, self._settings))
        for name in semconv.names("url_full", semconv.DUP):
            if isinstance(existing.get(name), str):
                redacted = redact_url(existing[name], self._settings.capture_query)
                if redacted != existing[name]:
                    span.set_attribute(name, redacted)  # scrubbing outranks "never overwrite"
        span.set_attributes({k: v for k, v in ours.items() if k not in existing})

    def __enter__(self) -> ClientCall:
        ctx = set_value(_HANDLED, True)
        if self._owned:
            ctx = trace.set_span_in_context(self._span, ctx)
        self._token = attach(ctx)
        if self._owned:
            self._suppress = suppress_http_instrumentation()
            self._suppress.__enter__()
        return self

    def response(self, status_code: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Record the answer: status code (4xx and 5xx fail a client span) and headers."""
        try:
            self._response(int(status_code), headers)
        except Exception:
            _logger.exception("could not record an HTTP response on span %r", self._span)

    def _response(self, status_code: int, headers: Iterable[tuple[str, str]]) -> None:
        span = self._span
        if not span.is_recording():
            return
        mode = self._settings.semconv
        found: dict[str, Any] = {}
        semconv.set_http(found, "status_code", status_code, mode)
        if self._settings.capture_headers:
            found.update(
                captured_headers(
                    header_map(headers), self._settings.capture_headers, _RESPONSE_HEADER
                )
            )
        if status_code >= 400:
            semconv.set_http(found, "error_type", str(status_code), mode)
            found[attr.CATEGORY] = Category.INTEGRATION.value
        self._set(found)
        if status_code >= 400 and self._owned:
            span.set_status(Status(StatusCode.ERROR))

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        try:
            if exc is not None and isinstance(exc, Exception):
                self._failed(exc)
        except Exception:
            _logger.exception("could not record an HTTP client error")
        finally:
            if self._suppress is not None:
                self._suppress.__exit__(None, None, None)
                self._suppress = None
            if self._token is not None:
                detach(self._token)
                self._token = None
            if self._owned:
                self._span.end()

    def _failed(self, exc: Exception) -> None:
        span = self._span
        if not span.is_recording():
            return
        found: dict[str, Any] = {}
        semconv.set_http(found, "error_type", semconv.error_type(exc), self._settings.semconv)
        if is_transport_error(exc):
            found[attr.CATEGORY] = Category.INTEGRATION.value
        self._set(found)
        if self._owned:  # the owner of an enriched span records its exception itself
            span.record_exception(exc, attributes=_judged(found), escaped=True)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def _set(self, found: Mapping[str, Any]) -> None:
        if self._owned:
            self._span.set_attributes(found)
            return
        existing = getattr(self._span, "attributes", None) or {}
        self._span.set_attributes({k: v for k, v in found.items() if k not in existing})


def _judged(found: Mapping[str, Any]) -> dict[str, Any]:
    return {attr.CATEGORY: found[attr.CATEGORY]} if attr.CATEGORY in found else {}


def _is_http_client_span(span: Span) -> bool:
    if getattr(span, "kind", None) is not SpanKind.CLIENT:
        return False
    existing = getattr(span, "attributes", None) or {}
    return any(name in existing for name in semconv.HTTP_ATTRIBUTES["method"] if name)
