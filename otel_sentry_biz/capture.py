"""Report a handled error or a business-rule violation on the current span.

Both become span events (so any OTel backend sees them); the Sentry bridge turns an
``exception`` event into a Sentry error and a ``biz.violation`` event into a Sentry issue.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Optional, Union

from opentelemetry import trace

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.context import current_business
from otel_sentry_biz.impact import Category, Impact

_logger = logging.getLogger("otel_sentry_biz.capture")
_tracer = trace.get_tracer("otel_sentry_biz")

#: Attribute of an exception, message or violation event: the Sentry event id we promised.
EVENT_ID = "sentry.event_id"
#: Marks an exception event the app handled (reported on purpose, not escaping).
HANDLED = "biz.handled"


def capture_error(
    exc: BaseException,
    impact: Optional[Union[Impact, str]] = None,
    category: Optional[Union[Category, str]] = None,
    **context: Any,
) -> Optional[str]:
    """Report a handled exception with its business impact; return the Sentry event id.

    >>> except PaymentDeclined as exc:
    ...     biz.capture_error(exc, impact="CRITICAL", category="business_logic", order=order.id)

    Recorded on the current span (or a short ``capture_error`` span when none is recording).
    ``context`` becomes ``biz.<key>`` attributes of the error. Never raises into the caller:
    a bad impact or category is logged and the error is still reported, classified by default.
    """
    try:
        event_id = uuid.uuid4().hex
        extra: dict[str, Any] = {EVENT_ID: event_id, HANDLED: True}
        extra.update(_judgement(impact, category))
        extra.update(current_business())
        extra.update(attr.business_attributes(context))
        with _recording_span("capture_error") as span:
            record_exception_safely(span, exc, extra)
        return event_id
    except Exception:
        _logger.exception("could not capture %r", type(exc).__name__)
        return None


#: Sentry's event levels, for capture_message.
MESSAGE_LEVELS = ("debug", "info", "warning", "error", "fatal")


def capture_message(message: str, level: str = "info", **context: Any) -> Optional[str]:
    """Send a message event to Sentry (an issue grouped by its text); return its event id.

    >>> biz.capture_message("nightly import finished with 3 skipped rows", "warning", rows=3)

    Recorded as a ``biz.message`` event on the current span (or a short span when none is
    recording), with the business context and ``context`` as ``biz.<key>`` tags. ``level``
    is one of debug, info, warning, error, fatal; anything else is logged and sent as info.
    Never raises into the caller.
    """
    try:
        if level not in MESSAGE_LEVELS:
            _logger.error(
                "capture_message level %r: use one of %s; sent as info", level, MESSAGE_LEVELS
            )
            level = "info"
        event_id = uuid.uuid4().hex
        attributes: dict[str, Any] = dict(current_business())
        attributes.update(attr.business_attributes(context))
        attributes.update(
            {attr.MESSAGE_TEXT: printable(message), attr.MESSAGE_LEVEL: level, EVENT_ID: event_id}
        )
        with _recording_span("capture_message") as span:
            span.add_event(attr.MESSAGE_EVENT, attributes=attributes)
        return event_id
    except Exception:
        _logger.exception("could not capture a message")
        return None


def violation(
    rule: str,
    impact: Union[Impact, str],
    message: str,
    *,
    category: Union[Category, str] = Category.BUSINESS_LOGIC,
    group: Optional[str] = None,
    risk: Optional[float] = None,
    **data: Any,
) -> Optional[str]:
    """Report a business-rule violation; return the Sentry event id of its issue event.

    >>> biz.violation("work_request_limit", "HIGH", "WR-7 total $18,200 exceeds $15,000",
    ...               group="WR-7", amount=18200.0)

    The fingerprint is (rule, group): every violation of one rule for one group key is one
    issue. ``data`` (what was found: amounts, limits) becomes ``biz.violation.data.<key>``
    attributes, shown in the event's ``business_violation`` context, never as tags; the
    current business context comes along as ``biz.<key>``, so the issue is tagged with it.
    Never raises: None when the violation could not be recorded.
    """
    try:
        event_id = uuid.uuid4().hex
        attributes: dict[str, Any] = dict(current_business())
        attributes.update(
            {
                attr.VIOLATION_RULE: printable(rule),
                attr.VIOLATION_MESSAGE: printable(message),
                EVENT_ID: event_id,
            }
        )
        attributes.update(_violation_judgement(impact, category))
        if group is not None:
            attributes[attr.VIOLATION_GROUP] = printable(group)
        if risk is not None:
            try:
                attributes[attr.VIOLATION_RISK] = float(risk)
            except (TypeError, ValueError):
                _logger.error("violation %r: risk %r is not a number; ignored", rule, risk)
        if "window_risk" not in data:  # validate_batch has already counted itself
            data["window_risk"] = _add_window_risk(
                rule,
                attributes[attr.VIOLATION_IMPACT],
                attributes[attr.VIOLATION_CATEGORY],
                risk,
            )
        for key, value in data.items():
            coerced = attr.coerce_value(value)
            if coerced is not None:
                attributes[attr.VIOLATION_DATA_PREFIX + key] = coerced
        with _recording_span(f"violation {rule}") as span:
            span.add_event(attr.VIOLATION_EVENT, attributes=attributes)
        return event_id
    except Exception:
        _logger.exception("could not record violation %r", rule)
        return None


def printable(value: Any) -> str:
    """``str(value)``, or a placeholder when its ``__str__`` raises: a report is never lost."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def record_exception_safely(
    span: trace.Span, exc: BaseException, extra: Mapping[str, Any], *, escaped: bool = False
) -> None:
    """``span.record_exception``, even for an exception whose ``__str__`` raises.

    The SDK formats the message with ``str(exc)``; an exception that cannot be printed would
    otherwise be lost (and the error with it). It is recorded with a placeholder message.
    """
    try:
        span.record_exception(exc, attributes=dict(extra), escaped=escaped)
        return
    except Exception:
        pass
    try:
        stack = "".join(traceback.format_tb(exc.__traceback__))
    except Exception:
        stack = ""
    span.add_event(
        attr.EXCEPTION_EVENT,
        {
            attr.EXCEPTION_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}",
            attr.EXCEPTION_MESSAGE: f"<unprintable {type(exc).__name__}>",
            attr.EXCEPTION_STACKTRACE: stack,
            attr.EXCEPTION_ESCAPED: str(escaped),
            **extra,
        },
    )


def _add_window_risk(
    rule: str, impact: Union[Impact, str], category: Union[Category, str], risk: Optional[float]
) -> float:
    """Count a violation in the process's risk window; the window's score after it."""
    from otel_sentry_biz.rules.alerting import DEFAULT_RISK
    from otel_sentry_biz.rules.risk import process_risk

    level = Impact.parse(impact)
    delta = DEFAULT_RISK[level] if risk is None else float(risk)
    return process_risk().add(delta, impact=level, category=category, rule=rule)


def violation_attributes(event_attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` of a violation event, without the ``biz.violation.data.`` prefix."""
    prefix = attr.VIOLATION_DATA_PREFIX
    return {k[len(prefix) :]: v for k, v in event_attributes.items() if k.startswith(prefix)}


@contextmanager
def _recording_span(name: str) -> Iterator[trace.Span]:
    span = trace.get_current_span()
    if span.is_recording():
        yield span
        return
    with _tracer.start_as_current_span(name, record_exception=False) as own:
        yield own


def _judgement(
    impact: Optional[Union[Impact, str]], category: Optional[Union[Category, str]]
) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        if impact is not None:
            out[attr.IMPACT] = Impact.parse(impact).value
        if category is not None:
            out[attr.CATEGORY] = Category.parse(category).value
    except ValueError as exc:
        _logger.error("%s; reporting with the default classification", exc)
    return out


def _violation_judgement(
    impact: Union[Impact, str], category: Union[Category, str]
) -> dict[str, str]:
    judged = _judgement(impact, category)
    return {
        attr.VIOLATION_IMPACT: judged.get(attr.IMPACT, Impact.MEDIUM.value),
        attr.VIOLATION_CATEGORY: judged.get(attr.CATEGORY, Category.BUSINESS_LOGIC.value),
    }
