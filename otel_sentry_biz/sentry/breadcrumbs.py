"""Sentry breadcrumbs from a segment's span events: what happened before an error.

Log records (``log_breadcrumbs``) and the app's own span events become breadcrumbs; the span
events that are events of their own in Sentry (exceptions, violations, messages) do not.
"""

from __future__ import annotations

from typing import Any

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.log_breadcrumbs import LOG_EVENT, LOG_LEVEL, LOG_LOGGER, LOG_MESSAGE
from otel_sentry_biz.sentry.segments import Segment
from otel_sentry_biz.sentry.tags import json_safe
from otel_sentry_biz.spans import events_of

#: Span events that are events of their own in Sentry, not breadcrumbs.
_NOT_BREADCRUMBS = frozenset(
    {attr.EXCEPTION_EVENT, attr.VIOLATION_EVENT, attr.MESSAGE_EVENT, "biz.quality"}
)
_BREADCRUMB_LEVELS = {
    "CRITICAL": "fatal",
    "ERROR": "error",
    "WARNING": "warning",
    "INFO": "info",
    "DEBUG": "debug",
}


def breadcrumbs(segment: Segment) -> list[dict[str, Any]]:
    """The segment's span events (log records included) as Sentry breadcrumbs, oldest first."""
    crumbs = []
    for span in (segment.root, *segment.spans):
        for event in events_of(span):
            if event.name in _NOT_BREADCRUMBS:
                continue
            event_attrs = event.attributes or {}
            if event.name == LOG_EVENT:
                crumb: dict[str, Any] = {
                    "type": "default",
                    "category": str(event_attrs.get(LOG_LOGGER, "log")),
                    "level": _BREADCRUMB_LEVELS.get(str(event_attrs.get(LOG_LEVEL)), "info"),
                    "message": str(event_attrs.get(LOG_MESSAGE, "")),
                }
            else:
                crumb = {"type": "default", "category": "span.event", "message": event.name}
                if event_attrs:
                    crumb["data"] = {str(k): json_safe(v) for k, v in event_attrs.items()}
            crumb["timestamp"] = (event.timestamp or 0) / 1e9
            crumbs.append(crumb)
    crumbs.sort(key=lambda crumb: crumb["timestamp"])
    return crumbs
