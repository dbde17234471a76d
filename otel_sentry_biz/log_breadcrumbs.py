"""Log records as breadcrumbs: what the app logged before an error shows up on that error.

:class:`BreadcrumbHandler` (a stdlib ``logging.Handler``) adds each record as a ``log`` event
on the span that is current when it is logged; the Sentry bridge turns a segment's span events
into the breadcrumbs of its errors (at most ``SENTRY_MAX_BREADCRUMBS``, latest kept). Since
they are span events, any OTel backend sees them too. ``configure()`` installs the handler on
the root logger; records logged outside a span are left alone.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import trace

#: Span event name and attributes of a log record.
LOG_EVENT = "log"
LOG_LEVEL = "log.level"
LOG_LOGGER = "log.logger"
LOG_MESSAGE = "log.message"

_OWN_LOGGERS = "otel_sentry_biz"
_installed_lock = threading.Lock()


class BreadcrumbHandler(logging.Handler):
    """Record each log record as a ``log`` event on the current span. Never raises."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_OWN_LOGGERS):
            return  # our own diagnostics are not the app's story
        try:
            span = trace.get_current_span()
            if not span.is_recording():
                return
            span.add_event(
                LOG_EVENT,
                {
                    LOG_LEVEL: record.levelname,
                    LOG_LOGGER: record.name,
                    LOG_MESSAGE: record.getMessage(),
                },
                timestamp=int(record.created * 1e9),
            )
        except Exception:  # a bad %-format or a broken span: the app's log call must go on
            return


def install_breadcrumbs(level: int = logging.INFO) -> BreadcrumbHandler:
    """Add one :class:`BreadcrumbHandler` to the root logger (idempotent); return it."""
    root = logging.getLogger()
    with _installed_lock:
        for handler in root.handlers:
            if isinstance(handler, BreadcrumbHandler):
                return handler
        handler = BreadcrumbHandler(level)
        root.addHandler(handler)
        return handler
