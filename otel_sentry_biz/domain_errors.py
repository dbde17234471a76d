"""Report the errors of one business domain (payments, bookings, integrations) with its context.

>>> except CardDeclined as exc:
...     biz.capture_payment_error(exc, amount=129.0, currency="EUR", provider="stripe",
...                               payment_id=payment.id)

Thin layers over :func:`~otel_sentry_biz.capture_error` and
:func:`~otel_sentry_biz.violation`: each helper names the facts its domain carries, and the
:data:`DOMAINS` table gives its default impact and category (the billing seed's levels:
money is CRITICAL). Every report is tagged ``error_domain``. Context values pass through the
package's scrubber (card numbers, tokens, passwords, e-mail addresses found in any value)
before they become span attributes, so no exporter ever sees them; personal data found only
by its key (``client_ip``, ``phone``) is left to the Sentry exporter, which knows whether
``send_default_pii`` is on. Like ``capture_error``, the helpers never raise into the caller.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional, Union

from opentelemetry.context import attach, detach

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.capture import capture_error, printable, violation
from otel_sentry_biz.context import context_with
from otel_sentry_biz.impact import Category, Impact

_logger = logging.getLogger("otel_sentry_biz.domain_errors")


@dataclass(frozen=True)
class ErrorDomain:
    """How the errors of one domain are reported unless the caller says otherwise."""

    impact: Impact
    category: Category


#: The default judgement of each domain's errors. A declined payment is a business outcome
#: that loses money (CRITICAL); a failing partner API is an integration problem.
DOMAINS: Mapping[str, ErrorDomain] = {
    "business": ErrorDomain(Impact.HIGH, Category.BUSINESS_LOGIC),
    "payment": ErrorDomain(Impact.CRITICAL, Category.BUSINESS_LOGIC),
    "booking": ErrorDomain(Impact.HIGH, Category.BUSINESS_LOGIC),
    "integration": ErrorDomain(Impact.HIGH, Category.INTEGRATION),
}
#: Business key (and Sentry tag) naming the domain of a report.
DOMAIN_KEY = "error_domain"
#: Rule name of a business error reported as a message (no exception).
BUSINESS_ERROR_RULE = "business_logic_error"
#: Rule name of a slow operation (the same as the ``duration`` rule kind's usual name, so a
#: rule and a decorator flagging the same operation make one Sentry issue).
SLOW_OPERATION_RULE = "slow_operation"
Judgement = Optional[Union[Impact, str]]
Kind = Optional[Union[Category, str]]


def capture_business_error(
    exc_or_message: Union[BaseException, str],
    *,
    rule: Optional[str] = None,
    impact: Judgement = None,
    category: Kind = None,
    **context: Any,
) -> Optional[str]:
    """Report a broken business rule, as an exception or as a message.

    >>> biz.capture_business_error("Insufficient stock for order", rule="stock_available",
    ...                            operation="create_sales_order", product=p.id, requested=5)

    An exception is reported like :func:`~otel_sentry_biz.capture_error` (HIGH,
    business_logic by default; ``rule`` becomes the ``business_rule`` tag). A message is
    reported as a violation of ``rule``: one Sentry issue per rule (per message text when no
    rule is given). Either way ``context`` is business context (``biz.<key>``, tagged) and
    the event id is returned (None when nothing could be reported).
    """
    if isinstance(exc_or_message, BaseException):
        return _capture("business", exc_or_message, impact, category, business_rule=rule, **context)
    try:
        domain = DOMAINS["business"]
        message = printable(exc_or_message)
        with _business_context({DOMAIN_KEY: "business", **context}):
            return violation(
                rule or BUSINESS_ERROR_RULE,
                impact if impact is not None else domain.impact,
                message,
                category=category if category is not None else domain.category,
                group=None if rule else message,
            )
    except Exception:
        _logger.exception("could not report a business error")
        return None


def capture_payment_error(
    exc: BaseException,
    *,
    amount: Any = None,
    currency: Optional[str] = None,
    provider: Optional[str] = None,
    payment_id: Any = None,
    impact: Judgement = None,
    category: Kind = None,
    **context: Any,
) -> Optional[str]:
    """Report a failed payment (CRITICAL, business_logic by default); return the event id.

    >>> biz.capture_payment_error(exc, amount=Decimal("129.00"), currency="EUR",
    ...                           provider="stripe", payment_id="pay_123", decline_code=code)

    Tags: ``currency``, ``payment_provider``, ``payment_id``; ``amount`` travels as data.
    Never pass card data on purpose: a card number in any value is replaced by ``[Filtered]``
    before it reaches a span.
    """
    return _capture(
        "payment",
        exc,
        impact,
        category,
        amount=amount,
        currency=currency,
        payment_provider=provider,
        payment_id=payment_id,
        **context,
    )


def capture_booking_error(
    exc: BaseException,
    *,
    booking_id: Any = None,
    impact: Judgement = None,
    category: Kind = None,
    **context: Any,
) -> Optional[str]:
    """Report a failed booking (HIGH, business_logic by default); return the event id.

    >>> biz.capture_booking_error(exc, booking_id=appointment.id, location=location.id)
    """
    return _capture("booking", exc, impact, category, booking_id=booking_id, **context)


def capture_integration_error(
    exc: BaseException,
    *,
    service: str,
    endpoint: Optional[str] = None,
    status_code: Optional[int] = None,
    impact: Judgement = None,
    category: Kind = None,
    **context: Any,
) -> Optional[str]:
    """Report a failed call to a partner service (HIGH, integration); return the event id.

    >>> biz.capture_integration_error(exc, service="google_calendar", endpoint="events.sync",
    ...                               status_code=503, calendar=calendar_id)

    Tags: ``integration`` (the service), ``integration_endpoint``, ``integration_status``
    (named apart from the app's own ``endpoint``).
    """
    return _capture(
        "integration",
        exc,
        impact,
        category,
        integration=service,
        integration_endpoint=endpoint,
        integration_status=status_code,
        **context,
    )


def capture_performance_issue(
    operation: str,
    duration_ms: float,
    threshold_ms: float,
    *,
    impact: Union[Impact, str] = Impact.MEDIUM,
    **context: Any,
) -> Optional[str]:
    """Report ``operation`` as slow when ``duration_ms`` is over ``threshold_ms``.

    >>> biz.capture_performance_issue("generate_report", elapsed_ms, 5000, report="sales")

    A ``slow_operation`` violation (category performance, MEDIUM by default): one Sentry
    issue per operation, with ``duration_ms`` and ``threshold_ms`` as data and ``context`` as
    business context (``biz.<key>``, tagged). Returns the event id; None when the duration
    is within the threshold (nothing is reported). Bad numbers are logged, never raised.
    """
    try:
        duration, limit = float(duration_ms), float(threshold_ms)
        if not (math.isfinite(duration) and math.isfinite(limit) and limit > 0):
            raise ValueError("not finite, or a threshold not over 0")
    except (TypeError, ValueError) as exc:
        _logger.error(
            "capture_performance_issue(%r, duration_ms=%r, threshold_ms=%r): %s; give "
            "milliseconds as numbers, threshold over 0",
            operation,
            duration_ms,
            threshold_ms,
            exc,
        )
        return None
    if duration <= limit:
        return None
    try:
        name = printable(operation)
        with _business_context(context):
            return violation(
                SLOW_OPERATION_RULE,
                impact,
                f"{name} took {duration:,.0f} ms, over its {limit:g} ms limit",
                category=Category.PERFORMANCE,
                group=name,
                duration_ms=round(duration, 3),
                threshold_ms=limit,
            )
    except Exception:
        _logger.exception("could not report slow operation %r", operation)
        return None


def _capture(
    domain: str, exc: BaseException, impact: Judgement, category: Kind, **context: Any
) -> Optional[str]:
    """``capture_error`` with the domain's defaults and its secret-free context."""
    try:
        defaults = DOMAINS[domain]
        facts = without_secrets({DOMAIN_KEY: domain, **context})
        return capture_error(
            exc,
            impact if impact is not None else defaults.impact,
            category if category is not None else defaults.category,
            **facts,
        )
    except Exception:  # capture_error does not raise; a hostile context mapping might
        _logger.exception("could not capture a %s error", domain)
        return None


@contextmanager
def _business_context(context: Mapping[str, Any]) -> Iterator[None]:
    """``context``, secret-free, as business context while a violation is reported: it is
    business context, not a finding, so the issue is tagged with it (a violation's data is
    not). ``context_with``, not ``biz.context``: any key is fine, ``propagate`` too."""
    token = attach(context_with(without_secrets(context)))
    try:
        yield
    finally:
        detach(token)


def without_secrets(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` as attribute values (Nones dropped), passed through the package's scrubber.

    For the helpers that report business context given by the caller (here and
    :mod:`otel_sentry_biz.security`); keys stay bare (``amount``, not ``biz.amount``).
    """
    present = {}
    for key, value in context.items():
        coerced = attr.coerce_value(value)  # first: a Decimal amount must stay a number
        if coerced is not None:
            present[str(key)] = coerced
    return _secrets_scrubber().scrub_attributes(present)


@functools.lru_cache(maxsize=1)
def _secrets_scrubber() -> Any:
    # Personal data by key (client_ip, phone) is left to the Sentry exporter, which alone
    # knows whether send_default_pii is on; secrets must never reach a span, whatever the
    # exporter. Built on first use, so that importing the package does not pay for it.
    from otel_sentry_biz.scrub import Scrubber, ScrubConfig

    return Scrubber(ScrubConfig(send_default_pii=True))
