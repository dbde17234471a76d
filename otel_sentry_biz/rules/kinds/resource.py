"""Resource: the process's memory (RSS) or CPU beyond a limit, sampled with psutil.

>>> Resource(name="memory", memory_mb=500, interval="30s", impact="HIGH")

Sampling costs tens of microseconds, so it happens at most once per ``interval`` (on whichever
span ends first after the interval), never per span. The rule is edge-triggered: it fires when
a metric goes over its limit and re-arms once a sample is back under it, so a process that
stays big reports once, not every interval.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

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

#: A sample: (resident memory in MB, CPU percent since the previous sample).
Sample = tuple[float, float]


@dataclass(frozen=True)
class Resource(RuleSpec):
    """Process memory over ``memory_mb`` or CPU over ``cpu_percent`` violates the rule."""

    kind: ClassVar[str] = "resource"
    default_category: ClassVar[Category] = Category.SYSTEM_RESOURCE
    default_message: ClassVar[str] = "process {metric} {value:.0f}{unit} is over {limit:g}{unit}"

    memory_mb: Optional[float] = 500
    cpu_percent: Optional[float] = None
    interval: Duration = "30s"

    def kind_problems(self) -> list[str]:
        found = duration_problem("interval", self.interval)
        if self.memory_mb is None and self.cpu_percent is None:
            found.append("no limit given: set memory_mb and/or cpu_percent")
        for name in ("memory_mb", "cpu_percent"):
            limit = getattr(self, name)
            if limit is not None and limit <= 0:
                found.append(f"{name} must be more than 0, not {limit:g}")
        return found

    def build(self, context: BuildContext) -> ResourceCheck:
        return ResourceCheck(self.memory_mb, self.cpu_percent, parse_duration(self.interval))


def psutil_sample() -> Callable[[], Sample]:
    """A sampler of this process (re-created after fork, so a child samples itself)."""
    import psutil

    state = {"pid": 0, "process": None}

    def sample() -> Sample:
        if state["pid"] != os.getpid():
            state["pid"], state["process"] = os.getpid(), psutil.Process()
        process = state["process"]
        return process.memory_info().rss / 1_048_576, process.cpu_percent(interval=None)

    return sample


class ResourceCheck:
    def __init__(
        self,
        memory_mb: Optional[float],
        cpu_percent: Optional[float],
        interval: float,
        *,
        sampler: Optional[Callable[[], Sample]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"memory": memory_mb, "cpu": cpu_percent}
        self._interval = interval
        self._sample = sampler or psutil_sample()
        self._clock = clock
        self._next = 0.0
        self._over = {"memory": False, "cpu": False}
        self._lock = threading.Lock()

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        now = self._clock()
        # Another thread sampling, or not due yet: this span pays nothing.
        if now < self._next or not self._lock.acquire(blocking=False):
            return ()
        try:
            if now < self._next:
                return ()
            self._next = now + self._interval
            memory, cpu = self._sample()
            found = []
            for metric, value, unit in (("memory", memory, "MB"), ("cpu", cpu, "%")):
                limit = self._limits[metric]
                if limit is None:
                    continue
                over = value > limit
                if over and not self._over[metric]:
                    values = {
                        "metric": metric,
                        "value": value,
                        "limit": limit,
                        "unit": unit,
                        "pid": os.getpid(),
                    }
                    found.append(Finding(values, group=metric))
                self._over[metric] = over
            return found
        finally:
            self._lock.release()
