"""Onboarding: the user journey and the conversion funnel, carried across requests by cookies.

The seed's ``user_journey.start_journey`` / ``add_step`` / ``complete_journey`` kept the
journey in one process's memory, so a journey started by one request was gone by the next.
Here the journey's id travels with the browser (``JOURNEY_COOKIE``) and its record lives in
the state store (``OTEL_SENTRY_BIZ_RULES_STATE``), so any request, in any process sharing
the store, continues it. ``business_metrics.track_conversion_funnel`` became the
``ONBOARDING`` funnel, fed with the visitor's cookie id from the first page view on.
"""

from __future__ import annotations

from typing import Any, Optional

from flask import Response, g, request

import otel_sentry_biz as biz

JOURNEY = "onboarding"
#: The browser carries the journey from sign-up to the first published post.
JOURNEY_COOKIE = "onboarding_journey"
#: A visitor is counted in the funnel from the first page view, before any account exists.
VISITOR_COOKIE = "visitor"

ONBOARDING = biz.Funnel("onboarding", ["visit", "signup", "first_post", "publish"])


def reached(step: str) -> None:
    """This visitor reached funnel ``step``."""
    ONBOARDING.step(g.visitor, step)


def start_journey(response: Response, user_id: int, **attrs: Any) -> str:
    """Start the onboarding journey of ``user_id``; the response hands its id to the browser."""
    journey_id = biz.journey_start(JOURNEY, user=user_id, **attrs)
    response.set_cookie(JOURNEY_COOKIE, journey_id, httponly=True, samesite="Lax")
    return journey_id


def journey_id() -> Optional[str]:
    """The id of the browser's onboarding journey, if it has one."""
    return request.cookies.get(JOURNEY_COOKIE)


def journey_step(step: str, **attrs: Any) -> None:
    found = journey_id()
    if found:
        biz.journey_step(found, step, **attrs)


def finish_journey(response: Response, *, abandoned: Optional[str] = None) -> None:
    """End the browser's journey: completed, or abandoned for reason ``abandoned``."""
    found = journey_id()
    if not found:
        return
    if abandoned:
        biz.journey_abandon(found, reason=abandoned)
    else:
        biz.journey_complete(found)
    response.delete_cookie(JOURNEY_COOKIE)
