"""Aggregate: a count, sum or average over a time window, per group, past a limit.

>>> Aggregate(name="daily_billing_total", function="sum", attribute="amount", window="1d",
...           above=50_000, group_by="customer", span="process_work_request")

Each matching span adds to its window's record in the state store (atomically, so processes
sharing a store add up exactly); the rule fires once per group and window, when the total
first breaches the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from otel_sentry_biz.rules import window as windows
from otel_sentry_biz.rules.bounds import BoundedSpec, Bounds
from otel_sentry_biz.rules.span_view import as_number
from otel_sentry_biz.rules.spec import (
    REQUIRED,
    BuildContext,
    Duration,
    Finding,
    SpanFacts,
    as_tuple,
    duration_label,
    duration_problem,
    parse_duration,
)

FUNCTIONS = ("count", "sum", "avg")


@dataclass(frozen=True)
class Aggregate(BoundedSpec):
    """The ``function`` of ``attribute`` over each ``window``, per ``group_by``, is limited."""

    kind: ClassVar[str] = "aggregate"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = "{function} over {window} is {value:g}, {breach}"

    function: str = "sum"
    attribute: Optional[str] = None
    window: Optional[Duration] = field(default=None, metadata=REQUIRED)
    #: Samples a window needs before it is judged (an average of 1 sample says little).
    min_samples: int = 1

    def needs(self) -> tuple[str, ...]:
        return (self.attribute,) if self.attribute else ()

    def kind_problems(self) -> list[str]:
        found = super().kind_problems()
        if self.function not in FUNCTIONS:
            found.append(f"unknown function {self.function!r}: use one of {', '.join(FUNCTIONS)}")
        elif self.function != "count" and not self.attribute:
            found.append(
                f"function {self.function!r} needs the attribute it adds up, "
                'e.g. attribute = "amount"'
            )
        found.extend(duration_problem("window", self.window))
        if self.min_samples < 1:
            found.append(f"min_samples must be at least 1, not {self.min_samples}")
        return found

    def build(self, context: BuildContext) -> WindowAggregate:
        return WindowAggregate(
            self.name,
            context.store,
            function=self.function,
            attribute=self.attribute,
            window=parse_duration(self.window),
            bounds=self.bounds(),
            group_by=as_tuple(self.group_by),
            min_samples=self.min_samples,
        )


class WindowAggregate:
    """The check behind ``aggregate`` and ``rate``: a windowed count/sum/avg per group."""

    def __init__(
        self,
        rule: str,
        store,
        *,
        function: str,
        attribute: Optional[str],
        window: float,
        bounds: Bounds,
        group_by: tuple[str, ...],
        min_samples: int = 1,
    ) -> None:
        self._rule = rule
        self._store = store
        self._function = function
        self._attribute = attribute
        self._window = window
        self._label = duration_label(window)
        self._ttl = windows.ttl(window)
        self._bounds = bounds
        self._group_by = group_by
        self._min_samples = min_samples

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        amount = 1.0
        if self._attribute is not None:
            number = as_number(span.get(self._attribute))
            if number is None:
                return ()
            amount = number
        group = span.key(self._group_by) if self._group_by else ""
        if group is None:
            return ()
        window = windows.bucket(span.time, self._window)
        key = f"agg:{self._rule}:{window}:{group}"
        totals = self._store.incr(key, {"sum": amount, "count": 1.0}, self._ttl)
        count, total = totals["count"], totals["sum"]
        if count < self._min_samples:
            return ()
        value = {"count": count, "sum": total, "avg": total / count}[self._function]
        breach = self._bounds.breach(value)
        # Once per group and window: the first process to see the breach reports it.
        if breach is None or not self._store.add_once(f"{key}:fired", self._ttl):
            return ()
        text, limit = breach
        return (
            Finding(
                {
                    "function": self._function,
                    "value": value,
                    "count": count,
                    "sum": total,
                    "limit": limit,
                    "breach": text,
                    "window": self._label,
                }
            ),
        )
