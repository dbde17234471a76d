"""The rule kinds: one module per kind, one line per kind in :data:`KINDS`.

To add a kind, write a frozen dataclass subclassing
:class:`~otel_sentry_biz.rules.spec.RuleSpec` (its fields are the TOML keys) with
``kind_problems()`` and ``build()``, and register it here.
"""

from __future__ import annotations

from otel_sentry_biz.rules.kinds.aggregate import Aggregate
from otel_sentry_biz.rules.kinds.calendar import Calendar
from otel_sentry_biz.rules.kinds.consistency import Consistency
from otel_sentry_biz.rules.kinds.duplicate import Duplicate
from otel_sentry_biz.rules.kinds.duration import SlowOperation
from otel_sentry_biz.rules.kinds.failure_budget import FailureBudget
from otel_sentry_biz.rules.kinds.imbalance import Imbalance
from otel_sentry_biz.rules.kinds.rate import Rate
from otel_sentry_biz.rules.kinds.resource import Resource
from otel_sentry_biz.rules.kinds.round_numbers import RoundNumbers
from otel_sentry_biz.rules.kinds.threshold import Threshold
from otel_sentry_biz.rules.spec import RuleSpec

KINDS: dict[str, type[RuleSpec]] = {
    spec.kind: spec
    for spec in (
        Threshold,
        Aggregate,
        Consistency,
        Duplicate,
        Calendar,
        RoundNumbers,
        Imbalance,
        SlowOperation,
        Resource,
        Rate,
        FailureBudget,
    )
}

__all__ = [
    "KINDS",
    "Aggregate",
    "Calendar",
    "Consistency",
    "Duplicate",
    "FailureBudget",
    "Imbalance",
    "Rate",
    "Resource",
    "RoundNumbers",
    "SlowOperation",
    "Threshold",
]
