"""BizDjangoMiddleware: a SERVER span per Django request, named by its URL pattern.

Add it first in ``MIDDLEWARE``::

    MIDDLEWARE = [
        "otel_sentry_biz_instrumentors.http.django.BizDjangoMiddleware",
        ...
    ]

It starts the span from the request's ``traceparent``/``baggage`` (or, when the WSGI app is
wrapped in :class:`~otel_sentry_biz_instrumentors.http.wsgi.BizWSGIMiddleware`, adopts that
one), names it by ``request.resolver_match.route`` (``GET /users/<int:user_id>/``), records a
view's exception that Django turns into a 500 (``process_exception``), and attaches the user.

Settings (all optional): ``OTEL_SENTRY_BIZ_USER_FROM_REQUEST``, a callable or its dotted path,
``user_from_request(request) -> {"id": ...}``; by default :func:`django_user` reads
``request.user``. Capture settings come from the variables. Sync only: under ASGI Django runs
it in a thread, with the context carried.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_sentry_biz_instrumentors.http.server import (
    IncomingRequest,
    ServerSpan,
    ServerTracing,
    UserHook,
    split_host,
)
from otel_sentry_biz_instrumentors.http.wsgi import ENVIRON_KEY

USER_HOOK_SETTING = "OTEL_SENTRY_BIZ_USER_FROM_REQUEST"


def django_user(request: Any) -> Optional[dict[str, Any]]:
    """The default user hook: ``request.user`` when authenticated (id, username, e-mail)."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return {"id": user.pk, "username": user.get_username(), "email": getattr(user, "email", None)}


class BizDjangoMiddleware:
    """Django middleware; see the module docstring."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self._tracing = ServerTracing(
            user_from_request=_user_hook(getattr(settings, USER_HOOK_SETTING, None))
        )

    def __call__(self, request: Any) -> Any:
        outer: Optional[ServerSpan] = request.META.get(ENVIRON_KEY)
        if outer is None and not is_instrumentation_enabled():
            return self.get_response(request)
        server_span = outer or self._tracing.start(incoming_request(request))
        request.META[ENVIRON_KEY] = server_span
        token = None
        if outer is None and server_span.context is not None:
            token = attach(server_span.context)
        try:
            response = self.get_response(request)
            server_span.set_route(route_of(request))
            server_span.set_user(request, self._tracing.user_from_request)
            failed = request.META.pop(VIEW_EXCEPTION_KEY, None)
            if failed is not None and response.status_code >= 500:
                server_span.record(failed)  # a 404 or 403 is the view's answer, not an error
            if outer is None:  # the WSGI middleware records the response itself
                server_span.response(response.status_code, response.items())
        except Exception as exc:
            if outer is None:
                server_span.finish(exc)
            raise
        finally:
            if token is not None:
                detach(token)
        if outer is None:
            server_span.finish()
        return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        # Django calls this for Http404 and PermissionDenied too, which it answers 404/403:
        # the exception is kept and recorded only if the answer turns out to be a 5xx.
        request.META[VIEW_EXCEPTION_KEY] = exception


#: Where process_exception leaves the view's exception for __call__ to judge by the answer.
VIEW_EXCEPTION_KEY = "otel_sentry_biz.view_exception"


def route_of(request: Any) -> Optional[str]:
    """The URL pattern that matched, with a leading ``/`` (regex patterns as written)."""
    route = getattr(getattr(request, "resolver_match", None), "route", None)
    if not route:
        return None
    return route if route.startswith(("/", "^")) else f"/{route}"


def incoming_request(request: Any) -> IncomingRequest:
    """Describe a Django ``HttpRequest`` (WSGI or ASGI)."""
    meta = request.META
    headers = {name.lower(): [value] for name, value in request.headers.items()}
    if headers.get("host"):
        host, port = split_host(headers["host"][0])
    else:
        port_text = str(meta.get("SERVER_PORT", ""))
        host, port = meta.get("SERVER_NAME"), int(port_text) if port_text.isdigit() else None
    protocol = str(meta.get("SERVER_PROTOCOL", ""))
    return IncomingRequest(
        method=request.method or "GET",
        scheme=request.scheme or "http",
        path=request.path,
        query=str(meta.get("QUERY_STRING", "")),
        headers=headers,
        server_address=host,
        server_port=port,
        client_address=meta.get("REMOTE_ADDR") or None,
        protocol_version=protocol.partition("/")[2] or None,
    )


def _user_hook(setting: Any) -> UserHook:
    if setting is None:
        return django_user
    if callable(setting):
        return setting
    from django.utils.module_loading import import_string

    return import_string(setting)
