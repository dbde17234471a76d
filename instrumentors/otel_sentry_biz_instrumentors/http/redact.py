"""What of a URL or a header may be written on a span: pure functions, tested without sockets.

URLs keep their shape (semconv: credentials become ``REDACTED:REDACTED``, values of sensitive
query keys become ``REDACTED``). Headers are captured only when named in an allowlist, and even
then the values of sensitive ones are redacted. A key is sensitive when the business context's
rule says so (:func:`otel_sentry_biz.context.is_sensitive`, extended by
``OTEL_SENTRY_BIZ_SENSITIVE_KEYS``) or when it names a URL credential (:data:`URL_SECRET_NAMES`).

This is the one place to swap in the shared scrubber (``otel_sentry_biz.scrub``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Optional
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from otel_sentry_biz.context import is_sensitive

REDACTED = "REDACTED"

#: Query and header names that carry credentials in URLs (signed URLs, API keys, OAuth codes),
#: compared lowercased with ``-``, ``.`` and spaces read as ``_``.
URL_SECRET_NAMES = frozenset(
    {
        "sig",
        "signature",
        "key",
        "code",
        "state",
        "nonce",
        "jwt",
        "otp",
        "sid",
        "awsaccesskeyid",
        "x_amz_signature",
        "x_amz_credential",
        "x_amz_security_token",
        "x_goog_signature",
        "x_goog_credential",
    }
)
#: Suffixes that mark a credential whatever comes before (``access_key``, ``url_sig``).
URL_SECRET_SUFFIX = re.compile(r"_(key|sig|signature|jwt)$")
_SEPARATORS = re.compile(r"[-.\s]+")


def is_sensitive_name(name: str) -> bool:
    """True when the value under ``name`` (a query key or header name) must not be recorded."""
    normalised = _SEPARATORS.sub("_", name.strip().lower())
    return (
        normalised in URL_SECRET_NAMES
        or URL_SECRET_SUFFIX.search(normalised) is not None
        or is_sensitive(normalised)
    )


def redact_query(query: str, keep: Optional[frozenset[str]] = None) -> str:
    """Replace the values of sensitive keys (and, with ``keep``, of keys not in it).

    >>> redact_query("page=2&access_token=abc")
    'page=2&access_token=REDACTED'

    Encoding and order are left as they were; keys are compared decoded and lowercased.
    """
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        name = unquote_plus(key)
        if sep and value and _hide(name, keep):
            part = f"{key}={REDACTED}"
        parts.append(part)
    return "&".join(parts)


def _hide(name: str, keep: Optional[frozenset[str]]) -> bool:
    if is_sensitive_name(name):
        return True
    return keep is not None and name.lower() not in keep


def redact_url(url: str, keep: Optional[frozenset[str]] = None) -> str:
    """``url`` without credentials, query values redacted as :func:`redact_query` does.

    >>> redact_url("https://me:pw@api.example.com/v1?key=k1&page=2#top")
    'https://REDACTED:REDACTED@api.example.com/v1?key=REDACTED&page=2'

    The fragment is dropped: it never leaves the client. Unparseable input is returned as is.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}:{REDACTED}@{netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, redact_query(parts.query, keep), ""))


def captured_headers(
    headers: Mapping[str, list[str]], allow: frozenset[str], prefix: str
) -> dict[str, tuple[str, ...]]:
    """Span attributes for the allowlisted ``headers`` (lowercased names), values redacted.

    >>> captured_headers({"x-request-id": ["r1"]}, frozenset({"x-request-id"}),
    ...                  "http.request.header.")
    {'http.request.header.x-request-id': ('r1',)}
    """
    found: dict[str, tuple[str, ...]] = {}
    for name in allow:
        values = headers.get(name)
        if not values:
            continue
        if is_sensitive_name(name):
            values = [REDACTED] * len(values)
        found[prefix + name] = tuple(values)
    return found


def header_map(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Lowercased name -> values, from ``(name, value)`` pairs as clients and servers give."""
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        found.setdefault(name.lower(), []).append(value)
    return found
