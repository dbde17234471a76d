"""Pattern: round-number bias, a fraud indicator (the billing seed's "> 30% round amounts").

>>> RoundNumbers(name="round_amount_bias", attribute="amount", multiple=100, share=0.3,
...              min_sample=20, window="1d", group_by="foreman")

Per window (and group), counts the amounts seen and those that are non-zero multiples of
``multiple``; once ``min_sample`` amounts are in and the round share exceeds ``share``, the
rule fires, once per window and group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from otel_sentry_biz.rules import window as windows
from otel_sentry_biz.rules.span_view import as_number
from otel_sentry_biz.rules.spec import (
    REQUIRED,
    BuildContext,
    Duration,
    Finding,
    RuleSpec,
    SpanFacts,
    as_tuple,
    duration_label,
    duration_problem,
    parse_duration,
)


@dataclass(frozen=True)
class RoundNumbers(RuleSpec):
    """More than ``share`` of the amounts in a window are round multiples of ``multiple``."""

    kind: ClassVar[str] = "round_numbers"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = (
        "{round:g} of {count:g} {attribute} values in {window} ({observed:.0%}) are multiples "
        "of {multiple:g}, over the {share:.0%} limit"
    )

    attribute: Optional[str] = field(default=None, metadata=REQUIRED)
    multiple: float = 100
    share: float = 0.30
    min_sample: int = 20
    window: Duration = "1d"

    def needs(self) -> tuple[str, ...]:
        return (self.attribute,) if self.attribute else ()

    def kind_problems(self) -> list[str]:
        found = duration_problem("window", self.window)
        if self.multiple <= 0:
            found.append(f"multiple must be more than 0, not {self.multiple:g} (e.g. 100)")
        if not 0 < self.share < 1:
            found.append(f"share must be between 0 and 1, not {self.share:g} (e.g. 0.3)")
        if self.min_sample < 1:
            found.append(f"min_sample must be at least 1, not {self.min_sample}")
        return found

    def build(self, context: BuildContext) -> RoundNumbersCheck:
        return RoundNumbersCheck(self, context.store)


class RoundNumbersCheck:
    def __init__(self, spec: RoundNumbers, store) -> None:
        self._rule = spec.name
        self._store = store
        self._attribute = spec.attribute or ""
        self._multiple = spec.multiple
        self._share = spec.share
        self._min_sample = spec.min_sample
        self._window = parse_duration(spec.window)
        self._ttl = windows.ttl(self._window)
        self._group_by = as_tuple(spec.group_by)

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        amount = as_number(span.get(self._attribute))
        group = span.key(self._group_by) if self._group_by else ""
        if amount is None or group is None:
            return ()
        key = f"round:{self._rule}:{windows.bucket(span.time, self._window)}:{group}"
        seen = self._store.incr(
            key,
            {"count": 1.0, "round": 1.0 if is_round(amount, self._multiple) else 0.0},
            self._ttl,
        )
        count, round_count = seen["count"], seen["round"]
        if count < self._min_sample or round_count / count <= self._share:
            return ()
        if not self._store.add_once(f"{key}:fired", self._ttl):
            return ()
        values = {
            "attribute": self._attribute,
            "round": round_count,
            "count": count,
            "observed": round_count / count,
            "share": self._share,
            "multiple": self._multiple,
            "window": duration_label(self._window),
        }
        return (Finding(values),)


def is_round(amount: float, multiple: float) -> bool:
    """A non-zero whole multiple of ``multiple`` (1500.0 of 100, not 1499.99 nor 0)."""
    if amount == 0:
        return False
    quotient = amount / multiple
    return abs(quotient - round(quotient)) < 1e-9
