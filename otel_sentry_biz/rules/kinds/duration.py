"""Duration: a slow operation (5 s by default, with per-operation overrides).

>>> Duration(name="slow_operation", above="5s",
...          overrides={"generate_report": "30s", "db.*": "500ms"})

``overrides`` maps globs to limits; a glob is matched against the span name, then its
``sentry.op``, in the order written, and the first match sets the limit.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from otel_sentry_biz.impact import Category
from otel_sentry_biz.rules.spec import (
    BuildContext,
    Duration,
    Finding,
    RuleSpec,
    SpanFacts,
    duration_problem,
    parse_duration,
)


@dataclass(frozen=True)
class SlowOperation(RuleSpec):
    """A span lasting longer than ``above`` (or its override) violates the rule."""

    kind: ClassVar[str] = "duration"
    default_category: ClassVar[Category] = Category.PERFORMANCE
    default_message: ClassVar[str] = "{operation} took {duration:.2f}s, over {limit:g}s"

    above: Duration = 5.0
    overrides: Mapping[str, Duration] = field(default_factory=dict)

    def kind_problems(self) -> list[str]:
        found = duration_problem("above", self.above)
        for pattern, limit in self.overrides.items():
            found.extend(duration_problem(f"overrides.{pattern}", limit))
        return found

    def build(self, context: BuildContext) -> DurationCheck:
        overrides = [
            (re.compile(fnmatch.translate(pattern)).match, parse_duration(limit))
            for pattern, limit in self.overrides.items()
        ]
        return DurationCheck(parse_duration(self.above), overrides)


class DurationCheck:
    def __init__(self, default: float, overrides: list) -> None:
        self._default = default
        self._overrides = overrides
        # Limits per span name: names are few, and this keeps glob matching off the hot path.
        self._limits: dict[tuple[str, object], float] = {}

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        duration = span.get("span.duration")
        if duration is None:
            return ()
        op = span.get("span.op")
        limit = self._limits.get((span.name, op))
        if limit is None:
            limit = self._limit_for(span.name, op)
            if len(self._limits) < 4096:
                self._limits[(span.name, op)] = limit
        if duration <= limit:
            return ()
        return (
            Finding(
                {"operation": span.name, "duration": duration, "limit": limit}, group=span.name
            ),
        )

    def _limit_for(self, name: str, op: object) -> float:
        for match, limit in self._overrides:
            if match(name) or (isinstance(op, str) and match(op)):
                return limit
        return self._default
