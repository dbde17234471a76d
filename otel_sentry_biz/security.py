"""Security events: failed logins, denied permissions, suspicious activity, as spans rules count.

>>> biz.security_event("auth_failure", user=form.username, ip=client_ip, reason="bad password")
>>> @biz.security_monitor(auth_errors=(InvalidToken,))
... def delete_project(request, project_id): ...

Each event is a short span named ``security.<kind>`` (op ``security``, category security)
carrying ``biz.security.event``, ``biz.security.user`` and ``biz.security.client_ip``. It is a
span, not only an event on the request's span, because rules judge spans: the shipped
``security`` rule set (``OTEL_SENTRY_BIZ_RULES=security``) counts them per user and per client
and turns bursts into Sentry issues. The span also holds an event of the same name, which
Sentry shows as a breadcrumb on the errors of the same request.

The user and IP stay as given on the span, because the rules group by them; the Sentry
exporter scrubs the IP (it is personal data) unless ``send_default_pii`` is on, and e-mail
addresses always. Other ``data`` passes through the package's scrubber first.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Optional, TypeVar

from opentelemetry import trace

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.capture import printable
from otel_sentry_biz.context import current_business
from otel_sentry_biz.domain_errors import without_secrets
from otel_sentry_biz.impact import Category
from otel_sentry_biz.operations import ExceptionTypes, exception_types

_logger = logging.getLogger("otel_sentry_biz.security")
_tracer = trace.get_tracer("otel_sentry_biz")

F = TypeVar("F", bound=Callable[..., Any])

AUTH_FAILURE = "auth_failure"
PERMISSION_DENIED = "permission_denied"
SUSPICIOUS_ACTIVITY = "suspicious_activity"
#: The kinds of security event; the shipped rules match their spans by name.
KINDS = (AUTH_FAILURE, PERMISSION_DENIED, SUSPICIOUS_ACTIVITY)

#: Span (and span event) name of an event of kind ``k``: ``security.<k>``.
SPAN_PREFIX = "security."
OP = "security"
EVENT = "biz.security.event"
USER = "biz.security.user"
#: "client_ip": the Sentry exporter's scrubber treats it as personal data.
CLIENT_IP = "biz.security.client_ip"
#: Where the user is found when the caller does not name one (``biz.context(user_id=...)``).
CONTEXT_USER_KEYS = ("biz.user_id", "biz.user")


def security_event(kind: str, *, user: Any = None, ip: Optional[str] = None, **data: Any) -> None:
    """Record a security event of ``kind``: auth_failure, permission_denied, suspicious_activity.

    >>> biz.security_event("permission_denied", user=user.id, ip=client_ip, action="export")

    ``user`` defaults to the business context's ``user_id`` (or ``user``); ``data`` becomes
    ``biz.<key>`` attributes. An unknown kind is logged and recorded as suspicious_activity
    (with ``reported_kind``). Never raises into the caller.
    """
    try:
        if kind not in KINDS:
            _logger.error(
                "security_event kind %r: use one of %s; recorded as %s",
                kind,
                ", ".join(KINDS),
                SUSPICIOUS_ACTIVITY,
            )
            data["reported_kind"] = printable(kind)
            kind = SUSPICIOUS_ACTIVITY
        if user is None:
            user = _context_user()
        attributes: dict[str, Any] = attr.business_attributes(without_secrets(data))
        for key, value in ((USER, user), (CLIENT_IP, ip)):
            coerced = attr.coerce_value(value)
            if coerced is not None:
                attributes[key] = coerced
        attributes.update({EVENT: kind, attr.CATEGORY: Category.SECURITY.value, attr.SENTRY_OP: OP})
        name = SPAN_PREFIX + kind
        with _tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False
        ) as span:
            span.add_event(
                name, {k: v for k, v in attributes.items() if k.startswith(attr.BIZ_PREFIX)}
            )
    except Exception:
        _logger.exception("could not record security event %r", kind)


class security_monitor:
    """Report denied permissions and failed authentication raised inside; re-raise them.

    >>> @biz.security_monitor(auth_errors=(jwt.InvalidTokenError,), area="admin")
    ... def export_customers(request): ...
    >>> with biz.security_monitor(permission_errors=(PermissionDenied,)):
    ...     check_access(user, project)

    An exception of an ``auth_errors`` type becomes an ``auth_failure`` event, one of the
    ``permission_errors`` types (``PermissionError`` by default) a ``permission_denied``
    event, with ``data``, the exception type and, for a decorated function, its name as
    ``action``. The exception itself propagates unchanged. Bad arguments raise
    :class:`~otel_sentry_biz.ConfigError` here, never in a request.
    """

    __slots__ = ("_auth", "_data", "_denied")

    def __init__(
        self,
        *,
        auth_errors: ExceptionTypes = (),
        permission_errors: ExceptionTypes = (PermissionError,),
        **data: Any,
    ) -> None:
        self._auth = exception_types(auth_errors, "auth_errors", "security_monitor")
        self._denied = exception_types(permission_errors, "permission_errors", "security_monitor")
        self._data = data

    def __enter__(self) -> security_monitor:
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if exc is not None:
            self._report(exc)

    async def __aenter__(self) -> security_monitor:
        return self

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _report(self, exc: BaseException) -> None:
        try:
            # Authentication first: an auth error type may subclass PermissionError.
            if isinstance(exc, self._auth):
                kind = AUTH_FAILURE
            elif isinstance(exc, self._denied):
                kind = PERMISSION_DENIED
            else:
                return
            error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
            security_event(kind, **{"error_type": error_type, **self._data})
        except Exception:
            _logger.exception("could not report %r as a security event", type(exc).__name__)

    def __call__(self, func: F) -> F:
        # Stateless, so one monitor serves every call; it names the action it guards.
        monitor = security_monitor(
            auth_errors=self._auth,
            permission_errors=self._denied,
            **{"action": getattr(func, "__qualname__", "?"), **self._data},
        )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with monitor:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with monitor:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _context_user() -> Any:
    business = current_business()
    for key in CONTEXT_USER_KEYS:
        value = business.get(key)
        if value is not None:
            return value
    return None
