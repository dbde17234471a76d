"""The rules seam: what a business rule is and what it reports.

A rule looks at one finished span and returns the violations it finds. The processor runs
every rule on every span it judges and records each violation on the span it hands on, so the
Sentry bridge (or any other exporter) reports it. Rule kinds, rule files and shared state for
windows plug in here without changing the processor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable

from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.impact import Category, Impact


@dataclass(frozen=True)
class Violation:
    """One broken business rule, as reported on the span and to Sentry."""

    rule: str
    impact: Impact
    message: str
    category: Category = Category.BUSINESS_LOGIC
    group: Optional[str] = None
    risk: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)

    def event_attributes(self) -> dict[str, Any]:
        """The attributes of the ``biz.violation`` span event that carries this violation."""
        out: dict[str, Any] = {
            attr.VIOLATION_RULE: self.rule,
            attr.VIOLATION_IMPACT: Impact.parse(self.impact).value,
            attr.VIOLATION_CATEGORY: Category.parse(self.category).value,
            attr.VIOLATION_MESSAGE: self.message,
        }
        if self.group is not None:
            out[attr.VIOLATION_GROUP] = self.group
        if self.risk:
            out[attr.VIOLATION_RISK] = float(self.risk)
        for key, value in self.data.items():
            coerced = attr.coerce_value(value)
            if coerced is not None:
                out[attr.VIOLATION_DATA_PREFIX + key] = coerced
        return out


@runtime_checkable
class Rule(Protocol):
    """A business rule: ``evaluate`` a finished span, return what it violates.

    Called on the thread that ends the span, so it must be cheap and must not block on I/O;
    the processor catches and logs anything it raises.
    """

    name: str

    def evaluate(self, span: ReadableSpan) -> Iterable[Violation]: ...
