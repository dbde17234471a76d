"""Failure budget: N consecutive failures of one operation raise ONE violation.

>>> FailureBudget(name="agent_failures", failures=5, span="agent.*", impact="HIGH")

The agent seed pauses an agent after five failures in a row. Each failed span (status ERROR)
of an operation adds to its streak in the state store and a success resets it; the span that
makes the streak reach ``failures`` reports it, the ones after it do not, until a success
starts a new streak. Operations are told apart by ``group_by`` (default: the span name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from otel_sentry_biz.rules.span_view import display_key
from otel_sentry_biz.rules.spec import (
    BuildContext,
    Duration,
    Finding,
    RuleSpec,
    SpanFacts,
    as_tuple,
    duration_problem,
    parse_duration,
)


@dataclass(frozen=True)
class FailureBudget(RuleSpec):
    """``failures`` failed spans in a row of one operation violate the rule, once."""

    kind: ClassVar[str] = "failure_budget"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = "{operation} failed {failures:g} times in a row"

    failures: int = 5
    #: A streak with no new failure for this long is forgotten.
    window: Duration = "1h"

    def kind_problems(self) -> list[str]:
        found = duration_problem("window", self.window)
        if self.failures < 1:
            found.append(f"failures must be at least 1, not {self.failures}")
        if self.status is not None:
            found.append("failure_budget needs successes too, to reset a streak: remove status")
        return found

    def build(self, context: BuildContext) -> FailureBudgetCheck:
        group_by = as_tuple(self.group_by) or ("span.name",)
        return FailureBudgetCheck(
            self.name, context.store, group_by, self.failures, parse_duration(self.window)
        )


class FailureBudgetCheck:
    def __init__(
        self, rule: str, store, group_by: tuple[str, ...], failures: int, window: float
    ) -> None:
        self._rule = rule
        self._store = store
        self._group_by = group_by
        self._failures = failures
        self._window = window

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        operation = span.key(self._group_by)
        if operation is None:
            return ()
        key = f"streak:{self._rule}:{operation}"
        if not span.failed:
            self._store.delete(key)
            return ()
        streak = self._store.incr(key, {"failures": 1.0}, self._window)["failures"]
        # Exactly one span sees the streak reach the budget, even across processes.
        if streak != self._failures:
            return ()
        shown = display_key(operation)
        return (Finding({"operation": shown, "failures": streak}, group=shown),)
