"""Failure budgets the app can ask about: which operations have used theirs up.

A ``FailureBudget`` rule reports N failures in a row of one operation to Sentry, once. The
app needs to know too, to pause what keeps failing. The rules API reports violations only on
the spans it hands on, so this :class:`~otel_sentry_biz.rules.Rule` wraps the rules: it
passes their violations on unchanged and remembers which (rule, group) ran out of budget.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_biz.rules import FailureBudget, RuleSet, Violation


class FailureBudgets:
    """Failure-budget rules for ``configure(rules=[...])`` that remember what they found.

    >>> budgets = FailureBudgets(FailureBudget(name="monitor_failures", group_by="monitor_id"))
    >>> biz.configure(rules=[budgets])
    >>> budgets.spent("monitor_failures", "mon-1")   # after its 5th failure in a row
    True
    """

    name = "failure_budgets"

    def __init__(self, *budgets: FailureBudget, state: str = "memory://") -> None:
        # state: a shared store (sqlite:// or redis://) makes the streaks span processes.
        self._rules = RuleSet(budgets, state=state)
        self._spent: set[tuple[str, str]] = set()

    def evaluate(self, span: ReadableSpan) -> list[Violation]:
        # Runs on the thread that ends the span: the app sees the answer right after.
        found = self._rules.evaluate(span)
        for violation in found:
            self._spent.add((violation.rule, violation.group or ""))
        return found

    def spent(self, rule: str, group: str = "") -> bool:
        """Whether ``rule``'s budget ran out for ``group`` (e.g. a monitor's id)."""
        return (rule, group) in self._spent

    def close(self) -> None:
        self._rules.close()
