"""``instrument_flask_app(app)``: a SERVER span per request of a Flask app, named by its rule.

>>> app = Flask(__name__)
>>> instrument_flask_app(app, user_from_request=lambda request: {"id": current_user.id})

Wraps ``app.wsgi_app`` in :class:`~otel_sentry_biz_instrumentors.http.wsgi.BizWSGIMiddleware`
and adds a ``teardown_request`` function that, after routing and the view, names the span by
``request.url_rule`` (``GET /users/<int:user_id>``), records an unhandled exception that Flask
turned into a 500, and asks the user hook about ``flask.request``. Importing this module does
not import Flask.
"""

from __future__ import annotations

from typing import Any, Optional

from otel_sentry_biz_instrumentors.http.server import UserHook
from otel_sentry_biz_instrumentors.http.wsgi import ENVIRON_KEY, BizWSGIMiddleware

_MARK = "_otel_sentry_biz_instrumented"


def instrument_flask_app(
    app: Any,
    *,
    user_from_request: Optional[UserHook] = None,
    tracer_provider: Any = None,
    **capture: Any,
) -> None:
    """Trace ``app``'s requests; calling it again on the same app does nothing.

    ``user_from_request(flask.request)`` returns ``{"id": ...}`` (plus ``email``,
    ``username``, ``name``, kept only with ``send_default_pii``) or None.
    """
    if getattr(app, _MARK, None) is not None:
        return
    import flask

    def finish_request(exc: Optional[BaseException]) -> None:
        server_span = flask.request.environ.get(ENVIRON_KEY)
        if server_span is None:
            return
        rule = flask.request.url_rule
        server_span.set_route(rule.rule if rule is not None else None)
        if exc is not None:
            server_span.record(exc)
        if user_from_request is not None:
            server_span.set_user(flask.request, user_from_request)

    middleware = BizWSGIMiddleware(app.wsgi_app, tracer_provider=tracer_provider, **capture)
    app.wsgi_app = middleware
    app.teardown_request(finish_request)
    setattr(app, _MARK, (middleware, finish_request))


def uninstrument_flask_app(app: Any) -> None:
    """Undo :func:`instrument_flask_app`: ``app.wsgi_app`` and the teardown list as before."""
    installed = getattr(app, _MARK, None)
    if installed is None:
        return
    middleware, finish_request = installed
    app.wsgi_app = middleware.app
    teardowns = app.teardown_request_funcs.get(None, [])
    if finish_request in teardowns:
        teardowns.remove(finish_request)
    delattr(app, _MARK)
