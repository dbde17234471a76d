"""HTTP semantic-convention names, stable and old, and the one switch that picks between them.

Stable names are always written. ``OTEL_SEMCONV_STABILITY_OPT_IN=http/dup`` adds the old
names too, read once through contrib's switch (``opentelemetry.instrumentation._semconv``) so
that our spans and contrib's agree. Unlike contrib, the default here is the stable names:
the Sentry bridge reads both, and new dashboards should not be built on names being retired.

>>> attrs = {}
>>> set_http(attrs, "status_code", 503, DUP)
>>> attrs
{'http.response.status_code': 503, 'http.status_code': 503}
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Optional

STABLE = "stable"
DUP = "dup"

#: The first schema with the stable HTTP names.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.21.0"

#: Concept -> (stable name, old name); ``None`` where that convention has no such attribute.
#: ``peer_*`` describe the server a client calls, ``host_*`` the server handling a request.
HTTP_ATTRIBUTES: Mapping[str, tuple[Optional[str], Optional[str]]] = {
    "method": ("http.request.method", "http.method"),
    "method_original": ("http.request.method_original", None),
    "status_code": ("http.response.status_code", "http.status_code"),
    "url_full": ("url.full", "http.url"),
    "url_scheme": ("url.scheme", "http.scheme"),
    "url_path": ("url.path", None),
    "url_query": ("url.query", None),
    "target": (None, "http.target"),
    "route": ("http.route", "http.route"),
    "peer_address": ("server.address", "net.peer.name"),
    "peer_port": ("server.port", "net.peer.port"),
    "host_address": ("server.address", "net.host.name"),
    "host_port": ("server.port", "net.host.port"),
    "client_address": ("client.address", "net.peer.ip"),
    "user_agent": ("user_agent.original", "http.user_agent"),
    "protocol_version": ("network.protocol.version", "http.flavor"),
    "error_type": ("error.type", None),
    "user_id": ("user.id", "enduser.id"),
}

#: Methods semconv knows; any other is reported as ``_OTHER`` with the original kept.
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
OTHER_METHOD = "_OTHER"

#: Default port per scheme: ``server.port`` is required on client spans even when implicit.
DEFAULT_PORTS: Mapping[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def http_mode() -> str:
    """``DUP`` under ``OTEL_SEMCONV_STABILITY_OPT_IN=http/dup``, else ``STABLE``.

    Read once per instrumentor or middleware; contrib caches the variable per process.
    """
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetrySemanticConventionStability,
        _OpenTelemetryStabilitySignalType,
        _StabilityMode,
    )

    _OpenTelemetrySemanticConventionStability._initialize()
    mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
        _OpenTelemetryStabilitySignalType.HTTP
    )
    return DUP if mode is _StabilityMode.HTTP_DUP else STABLE


def names(concept: str, mode: str) -> tuple[str, ...]:
    """The attribute names ``concept`` is written under in ``mode``."""
    stable, old = HTTP_ATTRIBUTES[concept]
    found = [stable] if stable else []
    if old and mode == DUP and old != stable:
        found.append(old)
    return tuple(found)


def set_http(attrs: MutableMapping[str, Any], concept: str, value: Any, mode: str) -> None:
    """Write ``value`` under the names of ``concept``; empty values are not written."""
    if value is None or value == "":
        return
    for name in names(concept, mode):
        attrs[name] = value


def set_method(attrs: MutableMapping[str, Any], method: str, mode: str) -> str:
    """Write the request method the semconv way; return the span name it implies."""
    normalised = method.strip().upper()
    if normalised in KNOWN_METHODS:
        set_http(attrs, "method", normalised, mode)
        if normalised != method:
            set_http(attrs, "method_original", method, mode)
        return normalised
    set_http(attrs, "method", OTHER_METHOD, mode)
    set_http(attrs, "method_original", method, mode)
    return "HTTP"


def span_name(method_name: str, route: Optional[str] = None) -> str:
    """``GET /users/{id}`` when the route is known, else the method alone (semconv)."""
    return f"{method_name} {route}" if route else method_name


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its qualified class name; builtins keep the bare name.

    >>> error_type(ConnectionRefusedError())
    'ConnectionRefusedError'
    """
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
