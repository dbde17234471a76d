"""Default impact and category of an error, modelled on the billing seed, with overrides.

A finished span only tells us the exception's *type name* and message (OTel records
``exception.type`` as a string), so classification matches names and keywords, not classes.
Rules are data: an ordered list where the first rule that matches and has an opinion wins,
impact and category being decided independently. User rules go before the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from opentelemetry.trace import SpanKind

from otel_sentry_biz.impact import Category, Impact


@dataclass(frozen=True)
class ClassificationRule:
    """Match an error by exception type names and/or keywords; give it an impact and/or category.

    ``exception_types`` match the unqualified or dotted type name exactly
    (``"ConnectionError"`` matches ``requests.exceptions.ConnectionError``); ``keywords`` match
    case-insensitively at the start of a word of the type, message, span name or business
    operation: ``"format"`` finds "bad format" and "formatting", not "information";
    ``"payment"`` finds "CardPaymentError" and "payment_id" (words split at case changes,
    ``_``, ``.`` and any other non-alphanumeric character). A rule with both lists matches
    when either does.

    >>> ClassificationRule(keywords=("refund",), impact=Impact.CRITICAL)
    """

    impact: Optional[Impact] = None
    category: Optional[Category] = None
    exception_types: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    _keywords: Optional[re.Pattern[str]] = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        if self.impact is None and self.category is None:
            raise ValueError("a ClassificationRule needs an impact, a category or both")
        if not self.exception_types and not self.keywords:
            raise ValueError("a ClassificationRule needs exception_types or keywords to match")
        if self.impact is not None:
            object.__setattr__(self, "impact", Impact.parse(self.impact))
        if self.category is not None:
            object.__setattr__(self, "category", Category.parse(self.category))
        object.__setattr__(self, "keywords", tuple(k.lower() for k in self.keywords))
        # One search per rule; the lookbehind anchors each keyword at a word's start.
        pattern = "|".join(re.escape(keyword) for keyword in self.keywords)
        object.__setattr__(
            self, "_keywords", re.compile(f"(?<![a-z0-9])(?:{pattern})") if pattern else None
        )

    def matches(self, type_names: frozenset[str], text: str) -> bool:
        """Whether the rule matches; ``text`` is :func:`searchable` text."""
        if any(name in type_names for name in self.exception_types):
            return True
        return self._keywords is not None and self._keywords.search(text) is not None


#: Where a word starts inside a CamelCase name: "CardPaymentError", "HTTPConnectionPool".
_CASE_CHANGE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


#: Keywords are looked for in the first this many characters of each text: what names the
#: failure comes first, and classify runs on the app thread, where a megabyte message must
#: cost no more than a short one (tests/hostile/test_blocking.py).
CLASSIFIED_CHARS = 1024


def searchable(*texts: str) -> str:
    """``texts`` as one lower-case text whose CamelCase words are apart, for keywords."""
    joined = " ".join(text[:CLASSIFIED_CHARS] for text in texts)
    return _CASE_CHANGE.sub(" ", joined).lower()


_I, _C = Impact, Category

#: The default rules. Order matters: the first matching rule with an impact gives the impact,
#: the first with a category gives the category.
DEFAULT_RULES: tuple[ClassificationRule, ...] = (
    # Billing seed: CRITICAL = financial / billing impact.
    ClassificationRule(
        impact=_I.CRITICAL,
        keywords=("payment", "billing", "invoice", "charge", "refund", "audit", "ledger"),
    ),
    ClassificationRule(
        impact=_I.HIGH,
        category=_C.SECURITY,
        exception_types=(
            "PermissionError",
            "PermissionDenied",
            "AuthenticationError",
            "AuthenticationFailed",
            "NotAuthenticated",
            "Unauthorized",
            "Forbidden",
            "SuspiciousOperation",
            "CSRFError",
            "InvalidToken",
            "ExpiredSignatureError",
        ),
        keywords=("permission denied", "unauthori", "forbidden", "csrf", "suspicious"),
    ),
    ClassificationRule(
        impact=_I.HIGH,
        category=_C.SYSTEM_RESOURCE,
        exception_types=("MemoryError", "RecursionError", "ResourceWarning", "BlockingIOError"),
        keywords=(
            "no space left",
            "too many open files",
            "out of memory",
            "pool exhausted",
            "queuepool limit",
            "disk full",
        ),
    ),
    ClassificationRule(
        category=_C.PERFORMANCE,
        keywords=("slow operation", "deadline exceeded", "took too long"),
    ),
    ClassificationRule(
        impact=_I.HIGH,
        category=_C.INTEGRATION,
        exception_types=(
            "ConnectionError",
            "ConnectionRefusedError",
            "ConnectionResetError",
            "ConnectionAbortedError",
            "BrokenPipeError",
            "TimeoutError",
            "timeout",
            "Timeout",
            "ReadTimeout",
            "ConnectTimeout",
            "HTTPError",
            "URLError",
            "RemoteDisconnected",
            "ProtocolError",
            "MaxRetryError",
            "OperationalError",
            "InterfaceError",
            "SSLError",
            "gaierror",
            "TransportError",
        ),
        keywords=("connection", "timed out", "timeout", "unreachable", "upstream", "api error"),
    ),
    # Billing seed: HIGH = data / process impact (upload failures, data loss).
    ClassificationRule(
        impact=_I.HIGH,
        category=_C.DATA_QUALITY,
        exception_types=("IntegrityError", "DataError", "DatabaseError"),
        keywords=("upload", "data loss", "corrupt", "lost"),
    ),
    # Billing seed: MEDIUM = data-quality impact (validation, formatting).
    ClassificationRule(
        impact=_I.MEDIUM,
        category=_C.DATA_QUALITY,
        exception_types=(
            "ValueError",
            "ValidationError",
            "SchemaError",
            "JSONDecodeError",
            "UnicodeDecodeError",
            "UnicodeEncodeError",
            "UnicodeError",
            "InvalidOperation",
            "ParserError",
            "DecodeError",
        ),
        keywords=("validation", "invalid", "malformed", "format", "schema", "parse"),
    ),
    ClassificationRule(
        impact=_I.MEDIUM,
        category=_C.BUSINESS_LOGIC,
        exception_types=("BusinessRuleError", "BusinessLogicError", "RuleViolation"),
        keywords=("rule", "threshold", "violation", "not allowed", "insufficient"),
    ),
)


@dataclass(frozen=True)
class Classification:
    impact: Impact
    category: Category


@dataclass(frozen=True)
class ErrorClassifier:
    """Decide impact and category for an error; the first matching rule wins per judgement.

    >>> rule = ClassificationRule(keywords=("booking",), impact="HIGH")
    >>> classifier = ErrorClassifier(rules=[rule])
    >>> classifier.classify("BookingConflict", "slot taken").impact
    <Impact.HIGH: 'HIGH'>

    ``rules`` run before :data:`DEFAULT_RULES` (set ``include_defaults=False`` to replace them).
    When nothing matches, the impact is ``LOW`` and the category is ``integration`` for client
    and producer spans (the error came from a remote call) and ``business_logic`` otherwise.
    """

    rules: Sequence[ClassificationRule] = ()
    include_defaults: bool = True
    _all: tuple[ClassificationRule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        combined = tuple(self.rules) + (DEFAULT_RULES if self.include_defaults else ())
        object.__setattr__(self, "_all", combined)

    def classify(
        self,
        exception_type: str,
        message: str = "",
        *,
        span_name: str = "",
        operation: str = "",
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Classification:
        """Classify one error. Cheap enough for the error path; never raises."""
        type_names = _type_names(exception_type)
        text = searchable(exception_type, message, span_name, operation)
        impact: Optional[Impact] = None
        category: Optional[Category] = None
        for rule in self._all:
            has_opinion = (impact is None and rule.impact is not None) or (
                category is None and rule.category is not None
            )
            if has_opinion and rule.matches(type_names, text):
                impact = impact or rule.impact
                category = category or rule.category
                if impact is not None and category is not None:
                    break
        if category is None:
            remote = kind in (SpanKind.CLIENT, SpanKind.PRODUCER)
            category = Category.INTEGRATION if remote else Category.BUSINESS_LOGIC
        return Classification(impact or Impact.LOW, category)


def _type_names(exception_type: str) -> frozenset[str]:
    """``"requests.exceptions.ConnectionError"`` -> {that, ``"ConnectionError"``}."""
    short = exception_type.rsplit(".", 1)[-1]
    return frozenset((exception_type, short))


def rules_from_mapping(overrides: Mapping[str, Any]) -> list[ClassificationRule]:
    """Build rules from ``{"PaymentDeclined": "CRITICAL/business_logic", ...}``-style config.

    Keys are exception type names; values are ``"IMPACT"``, ``"category"`` or
    ``"IMPACT/category"``. Raises ``ValueError`` naming the bad entry.
    """
    rules: list[ClassificationRule] = []
    for type_name, spec in overrides.items():
        impact, category = parse_judgement(str(spec))
        try:
            rules.append(
                ClassificationRule(impact=impact, category=category, exception_types=(type_name,))
            )
        except ValueError as exc:
            raise ValueError(f"classification override {type_name}={spec!r}: {exc}") from None
    return rules


def parse_judgement(spec: str) -> tuple[Optional[Impact], Optional[Category]]:
    """``"CRITICAL/business_logic"`` -> (Impact.CRITICAL, Category.BUSINESS_LOGIC)."""
    impact: Optional[Impact] = None
    category: Optional[Category] = None
    for part in (p.strip() for p in spec.split("/") if p.strip()):
        if part.upper() in Impact.__members__:
            impact = Impact.parse(part)
        else:
            try:
                category = Category.parse(part)
            except ValueError:
                raise ValueError(
                    f"{part!r} is neither an impact ({', '.join(i.value for i in Impact)}) nor a "
                    f"category ({', '.join(c.value for c in Category)})"
                ) from None
    return impact, category
