"""Threshold / range: one attribute of one span past a limit.

>>> Threshold(name="unit_price_range", attribute="unit_price", at_or_above=500,
...           at_or_below=0.01, impact="MEDIUM", category="data_quality")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from otel_sentry_biz.rules.bounds import BoundedSpec, Bounds
from otel_sentry_biz.rules.span_view import as_number
from otel_sentry_biz.rules.spec import REQUIRED, BuildContext, Finding, SpanFacts


@dataclass(frozen=True)
class Threshold(BoundedSpec):
    """A span whose ``attribute`` is past a limit violates the rule."""

    kind: ClassVar[str] = "threshold"
    default_message: ClassVar[str] = "{attribute} {value:g} is {breach}"

    attribute: Optional[str] = field(default=None, metadata=REQUIRED)

    def needs(self) -> tuple[str, ...]:
        return (self.attribute,) if self.attribute else ()

    def build(self, context: BuildContext) -> ThresholdCheck:
        return ThresholdCheck(self.attribute or "", self.bounds())


class ThresholdCheck:
    __slots__ = ("_attribute", "_bounds")

    def __init__(self, attribute: str, bounds: Bounds) -> None:
        self._attribute = attribute
        self._bounds = bounds

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        value = as_number(span.get(self._attribute))
        if value is None:
            return ()
        breach = self._bounds.breach(value)
        if breach is None:
            return ()
        text, limit = breach
        return (
            Finding({"attribute": self._attribute, "value": value, "breach": text, "limit": limit}),
        )
