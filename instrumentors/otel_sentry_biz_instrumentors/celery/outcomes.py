"""What became of a task run, written on its span: failures, rejections, ignores.

Pure functions of a span and what Celery's signals hand over. A failure is recorded once, as the
SDK records an escaping exception (an ``exception`` event and an ERROR status whose description
starts with the exception's type), so the BusinessSpanProcessor classifies it and the Sentry
bridge reports it as unhandled.
"""

from __future__ import annotations

from typing import Any, Optional

from celery import states
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from otel_sentry_biz import attributes as biz_attr
from otel_sentry_biz_instrumentors.celery import semconv as sc

try:  # billiard >= 4.0.1 wraps exceptions crossing a pool boundary
    from billiard.einfo import ExceptionWithTraceback
except ImportError:  # pragma: no cover
    ExceptionWithTraceback = None


def record_failure(span: trace.Span, exc: BaseException) -> None:
    """Record ``exc`` once on ``span`` and mark it failed, the way the SDK does for an escape."""
    type_name, message = _describe(exc)
    overrides: dict[str, Any] = {}
    if type_name != _qualified(type(exc)):  # an exception Celery wrapped to pickle it
        overrides = {biz_attr.EXCEPTION_TYPE: type_name, biz_attr.EXCEPTION_MESSAGE: message}
    span.record_exception(exc, attributes=overrides or None, escaped=True)
    span.set_status(Status(StatusCode.ERROR, f"{type_name.rsplit('.', 1)[-1]}: {message}"))


def mark_outcome(span: trace.Span, state: Optional[str], retval: Any) -> None:
    """Show a run that ended REJECTED (``raise Reject``) or IGNORED (``raise Ignore``)."""
    if state == states.REJECTED:
        requeue = bool(getattr(retval, "requeue", False))
        reason = getattr(retval, "reason", None)
        span.add_event(
            sc.REJECTED_EVENT,
            {
                sc.CELERY_REJECTED_REQUEUE: requeue,
                sc.CELERY_REJECTED_REASON: "" if reason is None else str(reason),
            },
        )
        if not requeue:  # dead-lettered or dropped: the work is lost
            if isinstance(reason, BaseException):
                record_failure(span, reason)
            else:
                span.set_status(Status(StatusCode.ERROR, f"Reject: {reason or 'rejected'}"))
    elif state == states.IGNORED:
        span.add_event(sc.IGNORED_EVENT)


def unwrap_exception(exc: BaseException) -> BaseException:
    """The task's own exception, out of billiard's ``ExceptionWithTraceback`` if wrapped."""
    if ExceptionWithTraceback is not None and isinstance(exc, ExceptionWithTraceback):
        inner = getattr(exc, "exc", None)
        if isinstance(inner, BaseException):
            return inner
    return exc


def _describe(exc: BaseException) -> tuple[str, str]:
    """Type name and message, seeing through Celery's ``UnpickleableExceptionWrapper``."""
    wrapped_name = getattr(exc, "exc_cls_name", None)
    if isinstance(wrapped_name, str) and wrapped_name:
        module = getattr(exc, "exc_module", None)
        name = f"{module}.{wrapped_name}" if module and module != "builtins" else wrapped_name
        args = getattr(exc, "exc_args", None) or ()
        return name, " ".join(str(arg) for arg in args) or str(exc)
    return _qualified(type(exc)), str(exc)


def _qualified(cls: type) -> str:
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def is_expected(task: Any, exc: BaseException) -> bool:
    """``Task.throws``: errors the task declares as expected; Celery logs them without alarm."""
    throws = getattr(task, "throws", None) or ()
    try:
        return bool(throws) and isinstance(exc, tuple(throws))
    except TypeError:
        return False
