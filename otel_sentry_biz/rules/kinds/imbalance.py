"""Imbalance: one group's load is more than ``factor`` times the average group's.

>>> Imbalance(name="foreman_workload", group_by="foreman", attribute="amount", factor=3,
...           window="1d", span="process_work_request")

Per window, each group's load (the sum of ``attribute``, or a count of spans without it), the
total and the number of groups are kept in the state store. With ``n`` groups one group carries
at most ``n`` times the average, so the rule needs ``min_groups`` > ``factor`` groups before
it judges, and ``min_total`` load so that the first few spans of a window do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Optional

from otel_sentry_biz.rules import window as windows
from otel_sentry_biz.rules.span_view import as_number, display_key
from otel_sentry_biz.rules.spec import (
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
class Imbalance(RuleSpec):
    """A group (``group_by``) carries more than ``factor`` x the average load in a window."""

    kind: ClassVar[str] = "imbalance"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = (
        "{group} carries {load:g}, {ratio:.1f}x the average {average:.1f} of {groups:g} groups "
        "in {window}"
    )

    attribute: Optional[str] = None
    factor: float = 3.0
    window: Duration = "1d"
    min_groups: int = 4
    min_total: float = 10

    def needs(self) -> tuple[str, ...]:
        return (self.attribute,) if self.attribute else ()

    def kind_problems(self) -> list[str]:
        found = duration_problem("window", self.window)
        if not as_tuple(self.group_by):
            found.append("imbalance needs group_by: the attribute naming whose load it is")
        if self.factor <= 1:
            found.append(f"factor must be more than 1, not {self.factor:g} (e.g. 3)")
        if self.min_groups <= self.factor:
            found.append(
                f"min_groups ({self.min_groups}) must be more than factor ({self.factor:g}): "
                "with n groups one group carries at most n x the average"
            )
        if self.min_total < 0:
            found.append(f"min_total must be 0 or more, not {self.min_total:g}")
        return found

    def build(self, context: BuildContext) -> ImbalanceCheck:
        return ImbalanceCheck(self, context.store)


class ImbalanceCheck:
    def __init__(self, spec: Imbalance, store) -> None:
        self._rule = spec.name
        self._store = store
        self._attribute = spec.attribute
        self._group_by = as_tuple(spec.group_by)
        self._factor = spec.factor
        self._window = parse_duration(spec.window)
        self._ttl = windows.ttl(self._window)
        self._min_groups = spec.min_groups
        self._min_total = spec.min_total

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        load = 1.0
        if self._attribute is not None:
            number = as_number(span.get(self._attribute))
            if number is None:
                return ()
            load = number
        group = span.key(self._group_by)
        if group is None:
            return ()
        key = f"imb:{self._rule}:{windows.bucket(span.time, self._window)}"
        joined = self._store.add_once(f"{key}:member:{group}", self._ttl)
        totals = self._store.incr(
            key,
            {f"g:{group}": load, "total": load, "groups": 1.0 if joined else 0.0},
            self._ttl,
        )
        groups, total, mine = totals["groups"], totals["total"], totals[f"g:{group}"]
        if groups < self._min_groups or total < self._min_total or total <= 0:
            return ()
        average = total / groups
        if mine <= self._factor * average:
            return ()
        if not self._store.add_once(f"{key}:fired:{group}", self._ttl):
            return ()
        values = {
            "load": mine,
            "average": average,
            "ratio": mine / average,
            "factor": self._factor,
            "groups": groups,
            "total": total,
            "window": duration_label(self._window),
        }
        return (Finding(values, group=display_key(group)),)
