"""BizASGIMiddleware: a SERVER span per HTTP request for any ASGI app (Starlette, FastAPI, ...).

>>> app = FastAPI()
>>> app.add_middleware(BizASGIMiddleware, user_from_request=user_of_scope)

The span starts from the request's ``traceparent``/``baggage`` and is named by the route the
router matched (Starlette and FastAPI leave it in ``scope["route"]``; mounted apps add their
prefix). An exception escaping the app is recorded and fails the span, as does a 5xx
response; a 4xx does not. Lifespan and websocket scopes pass through untraced. Place it inside
contrib's ``OpenTelemetryMiddleware`` if you use both: ours then enriches contrib's span.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_sentry_biz_instrumentors.http.server import (
    IncomingRequest,
    ServerTracing,
    UserHook,
    split_host,
)

#: Where the request's :class:`~otel_sentry_biz_instrumentors.http.server.ServerSpan` waits.
SCOPE_KEY = "otel_sentry_biz.server_span"

ASGIApp = Callable[..., Any]


class BizASGIMiddleware:
    """Trace every HTTP request of ``app``; see the module docstring.

    ``user_from_request(scope)`` returns the authenticated user (``{"id": ...}``) or None; it
    runs when the response starts (or when the app raised before answering), so
    ``scope["user"]`` set by Starlette's ``AuthenticationMiddleware`` is there. Capture
    settings (``capture_headers``, ``capture_query``, ``send_default_pii``) default to the
    variables.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        user_from_request: Optional[UserHook] = None,
        tracer_provider: Any = None,
        **capture: Any,
    ) -> None:
        self.app = app
        self._tracing = ServerTracing(
            user_from_request=user_from_request, tracer_provider=tracer_provider, **capture
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or SCOPE_KEY in scope or not is_instrumentation_enabled():
            await self.app(scope, receive, send)
            return
        server_span = self._tracing.start(incoming_request(scope))
        scope[SCOPE_KEY] = server_span

        async def traced_send(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                server_span.set_route(route_of(scope))
                server_span.set_user(scope)
                server_span.response(message.get("status", 0), _decoded(message.get("headers")))
            await send(message)

        token = attach(server_span.context) if server_span.context is not None else None
        try:
            await self.app(scope, receive, traced_send)
        except Exception as exc:
            server_span.set_route(route_of(scope))
            if not server_span.responded:  # raised before answering: ask about the user now
                server_span.set_user(scope)
            server_span.finish(exc)
            raise
        else:
            server_span.set_route(route_of(scope))
            server_span.finish()
        finally:
            if token is not None:
                detach(token)


def route_of(scope: Mapping[str, Any]) -> Optional[str]:
    """The matched route's template (``/users/{user_id}``), mount prefix included, or None."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return None
    root_path = str(scope.get("root_path", ""))
    app_root_path = str(scope.get("app_root_path", root_path))
    prefix = root_path[len(app_root_path) :] if root_path.startswith(app_root_path) else ""
    return f"{prefix}{path}" or "/"


def incoming_request(scope: Mapping[str, Any]) -> IncomingRequest:
    """Describe an ASGI HTTP request (its connection scope)."""
    headers: dict[str, list[str]] = {}
    for name, value in _decoded(scope.get("headers")):
        headers.setdefault(name.lower(), []).append(value)
    if headers.get("host"):
        host, port = split_host(headers["host"][0])
    else:
        server = scope.get("server") or (None, None)
        host, port = server[0], server[1]
    client = scope.get("client") or (None, None)
    query = scope.get("query_string", b"")
    return IncomingRequest(
        method=str(scope.get("method", "GET")),
        scheme=str(scope.get("scheme", "http")),
        path=str(scope.get("path", "/")),
        query=query.decode("latin-1") if isinstance(query, bytes) else str(query),
        headers=headers,
        server_address=host,
        server_port=port,
        client_address=client[0],
        protocol_version=scope.get("http_version"),
    )


def _decoded(headers: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers or ()]
