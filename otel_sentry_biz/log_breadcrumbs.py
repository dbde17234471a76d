"""Log records as breadcrumbs: what the app logged before an error shows up on that error.

:class:`BreadcrumbHandler` (a stdlib ``logging.Handler``) adds each record as a ``log`` event
on the span that is current when it is logged; the Sentry bridge turns a segment's span events
into the breadcrumbs of its errors (at most ``SENTRY_MAX_BREADCRUMBS``, latest kept). Since
they are span events, any OTel backend sees them too. ``configure()`` installs the handler;
records logged outside a span are left alone.

The handler is deliberately attached to no logger. :func:`install_breadcrumbs` hooks
``logging.Logger.callHandlers`` (as sentry-sdk's ``LoggingIntegration`` does) and hands it every
record a logger lets through, after the app's own handlers. A handler on the root logger would
change what the app sees and lose records:

- ``logging.basicConfig()`` does nothing when the root logger has a handler, so an app calling
  it after ``configure()`` would get no console output; and an app without any logging set-up
  would lose ``logging.lastResort``, which prints warnings and errors to stderr only when no
  handler exists.
- Frameworks replace the root logger's handlers: a Celery worker does when it starts
  (``worker_hijack_root_logger``), ``logging.config.dictConfig`` does for every logger it
  configures.
- Records of loggers that do not propagate (Celery's task loggers) never reach the root.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from opentelemetry import trace

#: Span event name and attributes of a log record.
LOG_EVENT = "log"
LOG_LEVEL = "log.level"
LOG_LOGGER = "log.logger"
LOG_MESSAGE = "log.message"

_OWN_LOGGERS = "otel_sentry_biz"
_installed_lock = threading.Lock()
#: The handler the hook feeds; None until installed, and again after uninstalling.
_installed: Optional[BreadcrumbHandler] = None
#: Whether ``Logger.callHandlers`` is hooked: once per process, since another library
#: (sentry-sdk) may wrap our hook and it cannot be taken out of the chain again.
_hooked = False


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
    """Send every log record of ``level`` and above to one :class:`BreadcrumbHandler`.

    Idempotent: a second call returns the handler already installed. The root logger's
    handlers are left as they are (see the module docstring).
    """
    global _installed, _hooked
    with _installed_lock:
        if _installed is None:
            _installed = BreadcrumbHandler(level)
        if not _hooked:
            _hook_call_handlers()
            _hooked = True
        return _installed


def uninstall_breadcrumbs() -> None:
    """Stop turning log records into breadcrumbs (the hook stays, and passes records by)."""
    global _installed
    with _installed_lock:
        _installed = None


def _hook_call_handlers() -> None:
    original = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> Any:
        try:
            return original(self, record)
        finally:
            # After the app's handlers, and even when one of them raised: logging goes on.
            handler = _installed
            if handler is not None and record.levelno >= handler.level:
                handler.handle(record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
