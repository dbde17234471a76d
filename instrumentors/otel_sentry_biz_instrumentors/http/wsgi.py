"""BizWSGIMiddleware: a SERVER span per request for any WSGI app (Flask, Django, ...).

>>> application = BizWSGIMiddleware(application, user_from_request=user_of_environ)

The span starts from the request's ``traceparent``/``baggage``, is current while the app runs
and while it makes each chunk of the body (not in between: the server's own work is not the
request's), and ends when the body is exhausted or the server closes it. The app (or
a framework helper: :func:`~otel_sentry_biz_instrumentors.http.flask.instrument_flask_app`,
:class:`~otel_sentry_biz_instrumentors.http.django.BizDjangoMiddleware`) finds it in the
environ under :data:`ENVIRON_KEY` to name it by route and record handled errors. Place it
inside contrib's ``OpenTelemetryMiddleware`` if you use both: ours then enriches contrib's span.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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

#: Where the request's :class:`~otel_sentry_biz_instrumentors.http.server.ServerSpan` waits.
ENVIRON_KEY = "otel_sentry_biz.server_span"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BizWSGIMiddleware:
    """Trace every request of ``app``; see the module docstring.

    ``user_from_request(environ)`` returns the authenticated user (``{"id": ...}``) or None;
    it runs when the response starts (or when the app raised before answering), after the
    app's authentication. Capture settings (``capture_headers``, ``capture_query``,
    ``send_default_pii``) default to the variables.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        user_from_request: Optional[UserHook] = None,
        tracer_provider: Any = None,
        **capture: Any,
    ) -> None:
        self.app = app
        self._tracing = ServerTracing(
            user_from_request=user_from_request, tracer_provider=tracer_provider, **capture
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if ENVIRON_KEY in environ or not is_instrumentation_enabled():
            return self.app(environ, start_response)  # an outer middleware of ours has it
        server_span = self._tracing.start(incoming_request(environ))
        environ[ENVIRON_KEY] = server_span

        def traced_start_response(status: str, headers: Any, *exc_info: Any) -> Any:
            server_span.set_user(environ)
            server_span.response(status.split(" ", 1)[0], headers)
            return start_response(status, headers, *exc_info)

        with _current(server_span):
            try:
                body = self.app(environ, traced_start_response)
            except Exception as exc:
                _fail(server_span, environ, exc)
                raise
        return _ResponseBody(body, server_span, environ)


class _ResponseBody:
    """The app's body, sent with the request's span current; ends the span once the body is
    exhausted or closed, whichever comes first.

    The context is attached around each call into the app's body (every ``next()``, and
    ``close()``) and detached before that call returns to the server, never held between two
    chunks: the server may do anything in between (Flask's test client serves the next request
    before it reads the body of the last), and that must not run inside this request's span.
    Each detach happens in the call that attached, as OTel requires.
    """

    def __init__(
        self, body: Iterable[bytes], server_span: ServerSpan, environ: dict[str, Any]
    ) -> None:
        self._body = body
        self._server_span = server_span
        self._environ = environ
        self._iterator: Optional[Iterator[bytes]] = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        with _current(self._server_span):
            try:
                if self._iterator is None:
                    self._iterator = iter(self._body)  # may run app code: inside the span
                return next(self._iterator)
            except StopIteration:  # the end of the body (an Exception too), not an error
                # Ended here too, not only on close(): a test client reading the body without
                # closing the response must not leave the request open for ever.
                self._server_span.finish()
                raise
            except Exception as exc:
                _fail(self._server_span, self._environ, exc)
                raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                with _current(self._server_span):  # the app's clean-up runs in its request
                    close()
        finally:
            self._server_span.finish()


def _fail(server_span: ServerSpan, environ: dict[str, Any], exc: BaseException) -> None:
    """End the request with ``exc``; ask about the user first if no response started."""
    if not server_span.responded:
        server_span.set_user(environ)
    server_span.finish(exc)


@contextmanager
def _current(server_span: ServerSpan) -> Iterator[None]:
    """``server_span``'s context attached for the duration of the block (if it has one)."""
    context = server_span.context
    token = attach(context) if context is not None else None
    try:
        yield
    finally:
        if token is not None:
            detach(token)


def incoming_request(environ: Mapping[str, Any]) -> IncomingRequest:
    """Describe a WSGI request (PEP 3333 environ)."""
    headers: dict[str, list[str]] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = [value]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = [environ[key]]
    host, port = _host_port(environ, headers)
    protocol = str(environ.get("SERVER_PROTOCOL", ""))
    return IncomingRequest(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        scheme=str(environ.get("wsgi.url_scheme", "http")),
        path=f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}" or "/",
        query=str(environ.get("QUERY_STRING", "")),
        headers=headers,
        server_address=host,
        server_port=port,
        client_address=environ.get("REMOTE_ADDR") or None,
        protocol_version=protocol.partition("/")[2] or None,
    )


def _host_port(
    environ: Mapping[str, Any], headers: Mapping[str, list[str]]
) -> tuple[Optional[str], Optional[int]]:
    if headers.get("host"):
        return split_host(headers["host"][0])
    port = str(environ.get("SERVER_PORT", ""))
    return environ.get("SERVER_NAME") or None, int(port) if port.isdigit() else None
