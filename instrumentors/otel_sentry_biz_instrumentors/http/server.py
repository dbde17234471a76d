"""One incoming request: a SERVER span of ours, or enrichment of the one already there.

The WSGI and ASGI middleware and the framework helpers describe the request in the neutral
:class:`IncomingRequest`, then drive one :class:`ServerSpan` through its life: started from the
request's headers (W3C ``traceparent``/``baggage``: business keys sent as ``biz.*`` baggage
become the request's business context), named by route once routing happened, given the
user and the response, finished with the exception that escaped, if any.

When another instrumentation (contrib's middleware placed outside ours, FastAPI's native
telemetry) already started a SERVER span, it is current when ours runs: ours enriches it
(route if it has none, user, captured headers, stable names, redacted query) and records an
exception only if that instrumentation would not (:data:`RECORDING_SCOPES`).

Statuses (semconv for servers): 5xx fail the span, 4xx do not (the client's mistake).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_sentry_biz.attributes import EXCEPTION_EVENT, EXCEPTION_MESSAGE, EXCEPTION_TYPE
from otel_sentry_biz.version import __version__
from otel_sentry_biz_instrumentors.http import semconv
from otel_sentry_biz_instrumentors.http.redact import captured_headers, header_map, redact_query
from otel_sentry_biz_instrumentors.http.settings import HttpSettings

_logger = logging.getLogger("otel_sentry_biz.instrumentors.http.server")

#: What a user hook may return, and the attribute each key becomes. Only the fields in
#: :data:`USER_FIELDS_WITHOUT_PII` are kept unless ``send_default_pii`` is on.
USER_FIELDS: Mapping[str, str] = {
    "id": "user_id",
    "email": "user.email",
    "username": "user.name",
    "name": "user.full_name",
}
USER_FIELDS_WITHOUT_PII = frozenset({"id"})

#: Instrumentation scopes whose SERVER span records the exceptions of its request itself:
#: contrib's Django and Flask instrumentors (``use_span(..., end_on_exit=True)`` exits with the
#: exception while the span is open). When ours enriches such a span it leaves recording to
#: them, so an error is recorded once. On any other span ours records it: contrib's WSGI
#: middleware records none, nor does FastAPI's native telemetry, and contrib's ASGI
#: middleware has usually ended its span (on the 500 Starlette sends) before the exception
#: reaches it. (An ASGI app that raises before answering gets a second, identical event
#: from contrib's ASGI middleware; the Sentry bridge merges the two.)
RECORDING_SCOPES = frozenset(
    {
        "opentelemetry.instrumentation.django",
        "opentelemetry.instrumentation.flask",
    }
)

_REQUEST_HEADER = "http.request.header."
_RESPONSE_HEADER = "http.response.header."

#: ``user_from_request(request) -> {"id": ..., "email": ..., "username": ...}`` or None.
UserHook = Callable[[Any], Optional[Mapping[str, Any]]]


@dataclass(frozen=True)
class IncomingRequest:
    """What every server integration knows about a request before the app runs."""

    method: str
    scheme: str
    path: str
    query: str = ""
    headers: Mapping[str, list[str]] = field(default_factory=dict)  # lowercased names
    server_address: Optional[str] = None
    server_port: Optional[int] = None
    client_address: Optional[str] = None
    protocol_version: Optional[str] = None


class ServerTracing:
    """Tracer, settings and user hook of one middleware, fixed when it is built.

    >>> tracing = ServerTracing(user_from_request=lambda environ: {"id": environ["USER_ID"]})
    """

    def __init__(
        self,
        *,
        user_from_request: Optional[UserHook] = None,
        tracer_provider: Optional[trace.TracerProvider] = None,
        settings: Optional[HttpSettings] = None,
        **capture: Any,
    ) -> None:
        self.settings = settings or HttpSettings.load(**capture)
        self.user_from_request = user_from_request
        self._tracer = trace.get_tracer(
            __name__, __version__, tracer_provider, schema_url=semconv.SCHEMA_URL
        )

    def start(self, request: IncomingRequest) -> ServerSpan:
        """Start the request's span, or adopt the SERVER span already current."""
        mode = self.settings.semconv
        attributes: dict[str, Any] = {}
        method_name = semconv.set_method(attributes, request.method, mode)
        attributes.update(request_attributes(request, self.settings))
        current = trace.get_current_span()
        if getattr(current, "kind", None) is SpanKind.SERVER and current.is_recording():
            _enrich(current, attributes, self.settings)
            scope = getattr(getattr(current, "instrumentation_scope", None), "name", "")
            return ServerSpan(
                current,
                None,
                self,
                method_name,
                owned=False,
                records_exceptions=scope not in RECORDING_SCOPES,
            )
        if not is_instrumentation_enabled():
            return ServerSpan(
                trace.INVALID_SPAN, None, self, method_name, owned=False, records_exceptions=False
            )
        parent = extract(request.headers)
        span = self._tracer.start_span(
            method_name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        return ServerSpan(
            span,
            trace.set_span_in_context(span, parent),
            self,
            method_name,
            owned=True,
            records_exceptions=True,
        )


def _enrich(span: Span, attributes: Mapping[str, Any], settings: HttpSettings) -> None:
    """Add what another instrumentation's span lacks; redact a query it left readable."""
    existing = getattr(span, "attributes", None) or {}
    for name in semconv.names("url_query", semconv.DUP) + semconv.names("target", semconv.DUP):
        value = existing.get(name)
        if isinstance(value, str):
            path, sep, query = value.rpartition("?") if "?" in value else ("", "", value)
            redacted = f"{path}{sep}{redact_query(query, settings.capture_query)}"
            if redacted != value:
                span.set_attribute(name, redacted)  # scrubbing outranks "never overwrite"
    span.set_attributes({k: v for k, v in attributes.items() if k not in existing})


def request_attributes(request: IncomingRequest, settings: HttpSettings) -> dict[str, Any]:
    """The span attributes of ``request`` (method aside), redacted and filtered by settings."""
    mode = settings.semconv
    attributes: dict[str, Any] = {}
    query = redact_query(request.query, settings.capture_query)
    semconv.set_http(attributes, "url_scheme", request.scheme, mode)
    semconv.set_http(attributes, "url_path", request.path, mode)
    semconv.set_http(attributes, "url_query", query, mode)
    semconv.set_http(
        attributes, "target", f"{request.path}?{query}" if query else request.path, mode
    )
    semconv.set_http(attributes, "host_address", request.server_address, mode)
    semconv.set_http(attributes, "host_port", request.server_port, mode)
    semconv.set_http(attributes, "protocol_version", request.protocol_version, mode)
    agent = request.headers.get("user-agent")
    semconv.set_http(attributes, "user_agent", agent[0] if agent else None, mode)
    if settings.send_default_pii:  # an IP address is personal data
        semconv.set_http(attributes, "client_address", request.client_address, mode)
    if settings.capture_headers:
        attributes.update(
            captured_headers(request.headers, settings.capture_headers, _REQUEST_HEADER)
        )
    return attributes


class ServerSpan:
    """The span of one request, driven by a middleware. Never raises into the app.

    ``context`` is what the middleware attaches while the app runs (None when enriching
    another instrumentation's span: its context is already current).
    """

    def __init__(
        self,
        span: Span,
        context: Optional[Context],
        tracing: ServerTracing,
        method_name: str,
        *,
        owned: bool,
        records_exceptions: bool,
    ) -> None:
        self.span = span
        self.context = context
        self._tracing = tracing
        self._method_name = method_name
        self._owned = owned
        self._records_exceptions = records_exceptions
        self._status_code: Optional[int] = None
        self._recorded: Optional[BaseException] = None
        self._routed = False
        self._finished = False

    @property
    def responded(self) -> bool:
        """Whether the response started (:meth:`response` was given its status)."""
        return self._status_code is not None

    def set_route(self, route: Optional[str]) -> None:
        """Name the span by ``route`` (``/users/{id}``), known once routing happened.

        The first route given wins: routers may restore an outer route (a mount) on the way
        out, after the inner one answered.
        """
        if not route or self._routed or not self.span.is_recording():
            return
        self._routed = True
        try:
            existing = getattr(self.span, "attributes", None) or {}
            if not self._owned and "http.route" in existing:
                return  # the other instrumentation routed it already
            found: dict[str, Any] = {}
            semconv.set_http(found, "route", route, self._tracing.settings.semconv)
            self.span.set_attributes(found)
            self.span.update_name(semconv.span_name(self._method_name, route))
        except Exception:
            _logger.exception("could not set the route of a request span")

    def set_user(self, request: Any, hook: Optional[UserHook] = None) -> None:
        """Ask the user hook (``hook``, else the middleware's) about ``request``.

        The id is kept; e-mail and names only with ``send_default_pii``.
        """
        hook = hook or self._tracing.user_from_request
        if hook is None or not self.span.is_recording():
            return
        try:
            user = hook(request)
            if user:
                self.span.set_attributes(user_attributes(user, self._tracing.settings))
        except Exception:
            _logger.exception("user_from_request failed; the request span has no user")

    def response(self, status_code: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Record the response's status and captured headers as it starts."""
        try:
            self._status_code = int(status_code)
            settings = self._tracing.settings
            found: dict[str, Any] = {}
            semconv.set_http(found, "status_code", self._status_code, settings.semconv)
            if self._status_code >= 500:
                semconv.set_http(found, "error_type", str(self._status_code), settings.semconv)
            if settings.capture_headers:
                found.update(
                    captured_headers(
                        header_map(headers), settings.capture_headers, _RESPONSE_HEADER
                    )
                )
            self._set(found)
        except Exception:
            _logger.exception("could not record the response of a request span")

    def record(self, exc: BaseException) -> None:
        """Record an exception the framework turned into an error response (once)."""
        self._record(exc, escaped=False)

    def _record(self, exc: BaseException, *, escaped: bool) -> None:
        try:
            span = self.span
            if (
                self._recorded is exc
                or not self._records_exceptions
                or not span.is_recording()
                or _already_recorded(span, exc)
            ):
                self._recorded = exc
                return
            self._recorded = exc
            found: dict[str, Any] = {}
            semconv.set_http(
                found, "error_type", semconv.error_type(exc), self._tracing.settings.semconv
            )
            self.span.set_attributes(found)  # the exception names the error better than a code
            # ``escaped`` tells the Sentry bridge the app did not handle it, even when another
            # instrumentation's span carries no status description naming the exception.
            span.record_exception(exc, escaped=escaped)
        except Exception:
            _logger.exception("could not record an exception on a request span")

    def finish(self, exc: Optional[BaseException] = None) -> None:
        """End the request: ``exc`` escaped the app. Idempotent."""
        if self._finished:
            return
        self._finished = True
        try:
            if exc is not None:
                self._record(exc, escaped=True)
                if self._status_code is None:
                    self.response(500)  # what the server answers when the app raised
            if self._owned:
                self._set_status(exc)
        except Exception:
            _logger.exception("could not finish a request span")
        finally:
            if self._owned:
                self.span.end()

    def _set_status(self, exc: Optional[BaseException]) -> None:
        failed = exc is not None or (self._status_code or 0) >= 500
        if not failed:
            return
        cause = exc or self._recorded
        description = f"{type(cause).__name__}: {cause}" if cause is not None else None
        self.span.set_status(Status(StatusCode.ERROR, description))

    def _set(self, found: Mapping[str, Any]) -> None:
        if self._owned:
            self.span.set_attributes(found)
            return
        existing = getattr(self.span, "attributes", None) or {}
        self.span.set_attributes({k: v for k, v in found.items() if k not in existing})


def user_attributes(user: Mapping[str, Any], settings: HttpSettings) -> dict[str, Any]:
    """``{"id": 42, "email": ...}`` -> ``{"user.id": "42"}`` (more with ``send_default_pii``)."""
    found: dict[str, Any] = {}
    for key, concept in USER_FIELDS.items():
        value = user.get(key)
        if value is None or value == "":
            continue
        if key not in USER_FIELDS_WITHOUT_PII and not settings.send_default_pii:
            continue
        if concept in semconv.HTTP_ATTRIBUTES:
            semconv.set_http(found, concept, str(value), settings.semconv)
        else:
            found[concept] = str(value)
    return found


def _already_recorded(span: Span, exc: BaseException) -> bool:
    """Did someone (the app, another instrumentation) record this exception on ``span``?"""
    wanted = (type(exc).__name__, str(exc))
    for event in getattr(span, "events", None) or ():
        if event.name != EXCEPTION_EVENT or not event.attributes:
            continue
        recorded_type = str(event.attributes.get(EXCEPTION_TYPE, "")).rsplit(".", 1)[-1]
        if (recorded_type, str(event.attributes.get(EXCEPTION_MESSAGE, ""))) == wanted:
            return True
    return False


def split_host(value: str) -> tuple[Optional[str], Optional[int]]:
    """``"api.example.com:8443"`` -> ``("api.example.com", 8443)``; IPv6 in brackets too."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    return host or None, int(port) if port.isdigit() else None
