"""HttpSettings: what HTTP spans capture, built from arguments, then variables, then defaults.

=====================================  ==========================================================
``OTEL_SENTRY_BIZ_CAPTURE_HEADERS``    Header names recorded on client and server spans
                                       (comma-separated, any case). Unset: none. Values of
                                       sensitive headers (``Authorization``, ``Cookie``...) are
                                       recorded as ``REDACTED``.
``OTEL_SENTRY_BIZ_CAPTURE_QUERY``      Query keys whose values stay in ``url.full`` /
                                       ``url.query``. Unset or ``*``: all but sensitive keys.
``SENTRY_SEND_DEFAULT_PII``            Allow the user's e-mail and name (not only the id) and
                                       the client IP address on server spans.
``OTEL_SEMCONV_STABILITY_OPT_IN``      ``http/dup`` writes the old attribute names as well.
=====================================  ==========================================================
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

from otel_sentry_biz.config import VARIABLES, ConfigError
from otel_sentry_biz_instrumentors.http.semconv import http_mode

CAPTURE_HEADERS_ENV = "OTEL_SENTRY_BIZ_CAPTURE_HEADERS"
CAPTURE_QUERY_ENV = "OTEL_SENTRY_BIZ_CAPTURE_QUERY"
_PII = next(variable for variable in VARIABLES if variable.field == "send_default_pii")

Names = Union[str, Iterable[str]]


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
        headers = _names(
            capture_headers if capture_headers is not None else env.get(CAPTURE_HEADERS_ENV, "")
        )
        query_raw = capture_query if capture_query is not None else env.get(CAPTURE_QUERY_ENV, "")
        query = _names(query_raw)
        if send_default_pii is None:
            send_default_pii = _pii(env.get(_PII.env, ""))
        return cls(
            capture_headers=frozenset(headers - {"*"}),
            capture_query=None if not query or "*" in query else frozenset(query),
            send_default_pii=bool(send_default_pii),
            semconv=http_mode(),
        )


def _names(value: Any) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"header and query names must be strings, not {item!r}")
    return frozenset(item.strip().lower() for item in items if item.strip())


def _pii(raw: str) -> bool:
    if not raw.strip():
        return bool(_PII.default)
    try:
        return bool(_PII.parse(raw))
    except ValueError as exc:
        raise ConfigError(f"{_PII.env}={raw!r} is invalid ({exc}): {_PII.fix}") from None
