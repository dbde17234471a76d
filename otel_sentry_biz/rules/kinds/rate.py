"""Rate: more matching spans per minute (or any period) than a limit.

>>> Rate(name="failed_logins", span="login", status="error", limit=10, per="1m",
...      group_by="user", impact="HIGH", category="security")

A windowed count (the aggregate kind's machinery) with the billing seed's defaults: 100 calls
per minute. Fires once per group and period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from otel_sentry_biz.rules.bounds import Bounds
from otel_sentry_biz.rules.kinds.aggregate import WindowAggregate
from otel_sentry_biz.rules.spec import (
    BuildContext,
    Duration,
    RuleSpec,
    as_tuple,
    duration_problem,
    parse_duration,
)


@dataclass(frozen=True)
class Rate(RuleSpec):
    """More than ``limit`` matching spans in one ``per`` period violates the rule."""

    kind: ClassVar[str] = "rate"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = "{value:g} calls in {window}, limit {limit:g}"

    limit: float = 100
    per: Duration = "1m"

    def kind_problems(self) -> list[str]:
        found = duration_problem("per", self.per)
        if self.limit < 0:
            found.append(f"limit must be 0 or more, not {self.limit:g}")
        return found

    def build(self, context: BuildContext) -> WindowAggregate:
        return WindowAggregate(
            self.name,
            context.store,
            function="count",
            attribute=None,
            window=parse_duration(self.per),
            bounds=Bounds(above=self.limit),
            group_by=as_tuple(self.group_by),
        )
