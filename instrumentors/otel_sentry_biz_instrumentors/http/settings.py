"""HttpSettings: what HTTP spans capture, built from arguments, then variables, then defaults.

The instrumentors' own variables are declared once in :data:`VARIABLES`
(``docs/configuration.md`` is generated from it). They also read two settings of the core
package: ``SENTRY_SEND_DEFAULT_PII`` (the user's e-mail and names, and the client IP address,
on server spans) and ``OTEL_SEMCONV_STABILITY_OPT_IN`` (``http/dup`` writes the old attribute
names as well).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

from otel_sentry_biz.config import VARIABLES as CORE_VARIABLES
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz_instrumentors.http.semconv import http_mode

Names = Union[str, Iterable[str]]


def _names(value: Any) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"header and query names must be strings, not {item!r}")
    return frozenset(item.strip().lower() for item in items if item.strip())


class Variable(NamedTuple):
    """One setting of the HTTP instrumentors: argument, variable, parser and documentation."""

    field: str  # the keyword of instrument() and of the middleware
    name: str  # the environment variable
    parse: Callable[[Any], Any]
    meaning: str
    default: str  # what leaving it unset means
    valid: str  # what is accepted


CAPTURE_HEADERS = Variable(
    "capture_headers",
    "OTEL_SENTRY_BIZ_CAPTURE_HEADERS",
    _names,
    "Header names recorded as http.request.header.<name> / http.response.header.<name> on "
    "client and server spans, comma-separated, any case. Values of sensitive headers "
    "(Authorization, Cookie, Set-Cookie, X-Api-Key, ...) are recorded as REDACTED.",
    "unset: no headers",
    "any list is accepted",
)
CAPTURE_QUERY = Variable(
    "capture_query",
    "OTEL_SENTRY_BIZ_CAPTURE_QUERY",
    _names,
    "Query keys whose values are kept in url.full / url.query, comma-separated.",
    "unset or `*`: every key but the sensitive ones",
    "any list is accepted",
)
VARIABLES: tuple[Variable, ...] = (CAPTURE_HEADERS, CAPTURE_QUERY)
_PII = next(variable for variable in CORE_VARIABLES if variable.field == "send_default_pii")


@dataclass(frozen=True)
class HttpSettings:
    """Validated capture settings of one instrumentor or middleware. Build with :meth:`load`."""

    capture_headers: frozenset[str] = frozenset()
    capture_query: Optional[frozenset[str]] = None  # None: every value but sensitive ones
    send_default_pii: bool = False
    semconv: str = "stable"

    @classmethod
    def load(
        cls,
        environ: Optional[Mapping[str, str]] = None,
        *,
        capture_headers: Optional[Names] = None,
        capture_query: Optional[Names] = None,
        send_default_pii: Optional[bool] = None,
    ) -> HttpSettings:
        """Arguments win over variables.

        >>> HttpSettings.load(capture_headers="X-Request-Id, User-Agent").capture_headers
        frozenset({'x-request-id', 'user-agent'})

        Raises :class:`~otel_sentry_biz.ConfigError` naming the variable, the value and the fix.
        """
        env = os.environ if environ is None else environ
        headers = _value(CAPTURE_HEADERS, capture_headers, env)
        query = _value(CAPTURE_QUERY, capture_query, env)
        if send_default_pii is None:
            send_default_pii = _pii(env.get(_PII.env, ""))
        return cls(
            capture_headers=frozenset(headers - {"*"}),
            capture_query=None if not query or "*" in query else frozenset(query),
            send_default_pii=bool(send_default_pii),
            semconv=http_mode(),
        )


def _value(variable: Variable, argument: Any, env: Mapping[str, str]) -> Any:
    """The argument if given, else the variable (unset: empty), parsed."""
    return variable.parse(argument if argument is not None else env.get(variable.name, ""))


def _pii(raw: str) -> bool:
    if not raw.strip():
        return bool(_PII.default)
    try:
        return bool(_PII.parse(raw))
    except ValueError as exc:
        raise ConfigError(f"{_PII.env}={raw!r} is invalid ({exc}): {_PII.fix}") from None
