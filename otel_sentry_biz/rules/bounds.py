"""Limits on a number: ``above``, ``at_or_above``, ``below``, ``at_or_below``.

A value breaches when it is past *any* given limit, so one rule says "unit price >= 500 or
<= 0.01" (``at_or_above = 500``, ``at_or_below = 0.01``). Shared by the threshold kind (on an
attribute) and the aggregate kind (on a windowed count, sum or average).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from otel_sentry_biz.rules.spec import RuleSpec


@dataclass(frozen=True)
class Bounds:
    """Compiled limits; ``breach(value)`` says which one a value is past, if any."""

    above: Optional[float] = None
    at_or_above: Optional[float] = None
    below: Optional[float] = None
    at_or_below: Optional[float] = None

    def breach(self, value: float) -> Optional[tuple[str, float]]:
        """(``"above 15000"``, 15000.0) for the limit ``value`` is past, else None."""
        if self.above is not None and value > self.above:
            return f"above {self.above:g}", self.above
        if self.at_or_above is not None and value >= self.at_or_above:
            return f"at or above {self.at_or_above:g}", self.at_or_above
        if self.below is not None and value < self.below:
            return f"below {self.below:g}", self.below
        if self.at_or_below is not None and value <= self.at_or_below:
            return f"at or below {self.at_or_below:g}", self.at_or_below
        return None

    def problems(self) -> list[str]:
        found = []
        if all(v is None for v in (self.above, self.at_or_above, self.below, self.at_or_below)):
            found.append(
                "no limit given: set above, at_or_above, below and/or at_or_below "
                "(e.g. above = 15000)"
            )
        if self.above is not None and self.at_or_above is not None:
            found.append("both above and at_or_above are set: keep one")
        if self.below is not None and self.at_or_below is not None:
            found.append("both below and at_or_below are set: keep one")
        upper = self.above if self.above is not None else self.at_or_above
        lower = self.below if self.below is not None else self.at_or_below
        if upper is not None and lower is not None and lower >= upper:
            found.append(
                f"the lower limit {lower:g} is not under the upper limit {upper:g}, so every "
                "value would breach one: a value breaches when it is past either limit "
                "(did you swap above and below?)"
            )
        return found


@dataclass(frozen=True)
class BoundedSpec(RuleSpec):
    """A rule spec with limits (see :class:`Bounds`)."""

    above: Optional[float] = None
    at_or_above: Optional[float] = None
    below: Optional[float] = None
    at_or_below: Optional[float] = None

    def bounds(self) -> Bounds:
        return Bounds(self.above, self.at_or_above, self.below, self.at_or_below)

    def kind_problems(self) -> list[str]:
        return self.bounds().problems()
