"""Request hooks: who is asking, the business context of the request, suspicious requests.

What the seed's ``config/middleware.py`` did by hand, minus what the HTTP instrumentation
now does (timing, the transaction per request named by route, status, errors): it loads the
signed-in user, puts ``user_type`` in the business context of everything the request does
(the fingerprint rules group errors by it), and reports requests that look like an attack
as ``suspicious_activity`` security events.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Optional
from urllib.parse import unquote_plus

from flask import Flask, Response, current_app, g, request, session
from onboarding import VISITOR_COOKIE

import otel_sentry_biz as biz

#: What the seed's security middleware looked for in a request's path and query.
SUSPICIOUS = {
    "sql_injection": re.compile(r"'\s*(or|and)\s|union\s+select|;\s*drop\s", re.I),
    "path_traversal": re.compile(r"\.\./"),
    "script_injection": re.compile(r"<script", re.I),
}


def install(app: Flask) -> None:
    """Register the hooks on ``app``."""
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)


def user_of(request_: Any) -> Optional[dict[str, Any]]:
    """The Sentry user of the request (``instrument_flask_app``'s ``user_from_request``)."""
    user = g.get("user")
    return {"id": user.id, "username": user.username} if user else None


def _before() -> None:
    g.visitor = request.cookies.get(VISITOR_COOKIE) or uuid.uuid4().hex
    user_id = session.get("user_id")
    g.user = current_app.extensions["store"].user(user_id) if user_id else None
    user_type = g.user.user_type if g.user else "anonymous"
    # user_type on the request's transaction (a tag) and on every span the request starts,
    # so the fingerprint rules can read it on whichever span fails.
    biz.record(user_type=user_type)
    g.business = biz.context(user_type=user_type, user_id=g.user.id if g.user else None)
    g.business.__enter__()
    _report_suspicious()


def _after(response: Response) -> Response:
    if request.cookies.get(VISITOR_COOKIE) != g.visitor:
        response.set_cookie(VISITOR_COOKIE, g.visitor, httponly=True, samesite="Lax")
    return response


def _teardown(exc: Optional[BaseException]) -> None:
    business = g.pop("business", None)
    if business is not None:
        business.__exit__(None, None, None)


def _report_suspicious() -> None:
    seen = unquote_plus(f"{request.path}?{request.query_string.decode('latin-1')}")
    for pattern, found in SUSPICIOUS.items():
        if found.search(seen):
            # The pattern and the route, not the request itself: it may hold anything.
            biz.security_event(
                "suspicious_activity", ip=request.remote_addr, pattern=pattern, path=request.path
            )
            return
