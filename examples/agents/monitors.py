"""Monitors that check a company's sources and pause themselves after 5 failures in a row.

The agent seed counts errors by hand and pauses at five. Here each check is a
``monitor.check`` span; the ``monitor_failures`` failure budget counts the failed ones per
monitor (a success resets the count) and reports the fifth as one HIGH issue. The pipeline
tells :meth:`Monitors.on_violation` too, and the monitor pauses itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging

from sources import DataSource, ExternalAPIError

import otel_sentry_biz as biz
from otel_sentry_biz.rules import FailureBudget, Violation

log = logging.getLogger("agents.monitors")

#: Five failed checks in a row of one monitor: one Sentry issue per monitor.
MONITOR_FAILURES = FailureBudget(
    name="monitor_failures",
    span="monitor.check",
    group_by="monitor_id",
    failures=5,
    impact="HIGH",
    category="integration",
    message="Monitor {monitor_id} ({company}) failed {failures:g} checks in a row: paused",
)


class MonitorStatus(enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"


class IntelligenceMonitor:
    """Checks ``source`` for news about ``company`` until it is paused."""

    def __init__(self, monitor_id: str, company: str, source: DataSource) -> None:
        self.monitor_id = monitor_id
        self.company = company
        self.source = source
        self.status = MonitorStatus.ACTIVE
        self.checks = 0
        self.out_of_budget = False  # set by Monitors.on_violation

    async def run(self, checks: int, interval: float) -> None:
        """Check up to ``checks`` times, ``interval`` seconds apart; stop when paused."""
        for _ in range(checks):
            # A failure is recorded on the check's span, where the failure budget counts it.
            with contextlib.suppress(ExternalAPIError, TimeoutError):
                await self.check_for_updates()
            if self.out_of_budget:
                await self.pause()
                return
            await asyncio.sleep(interval)

    async def check_for_updates(self) -> None:
        self.checks += 1
        async with biz.operation(
            "monitor.check", op="monitor.check", monitor_id=self.monitor_id, company=self.company
        ):
            log.info("Checking %s for %s", self.source.name, self.company)
            await self.source.fetch(self.company)

    async def pause(self) -> None:
        async with biz.operation(
            "monitor.pause", op="monitor.pause", monitor_id=self.monitor_id, company=self.company
        ):
            self.status = MonitorStatus.PAUSED
            biz.record(monitor_status=self.status.value, checks=self.checks)
            log.warning("Monitor %s paused after %d checks", self.monitor_id, self.checks)


class Monitors:
    """The app's monitors by id; ``on_violation`` pauses the one whose budget ran out.

    >>> monitors = Monitors()
    >>> biz.configure(rules=[RuleSet([MONITOR_FAILURES])], on_violation=monitors.on_violation)
    """

    def __init__(self) -> None:
        self._by_id: dict[str, IntelligenceMonitor] = {}

    def add(self, monitor_id: str, company: str, source: DataSource) -> IntelligenceMonitor:
        monitor = IntelligenceMonitor(monitor_id, company, source)
        self._by_id[monitor_id] = monitor
        return monitor

    def on_violation(self, violation: Violation) -> None:
        # Called as the fifth failed check's span ends, on the event loop's thread: by the
        # time check_for_updates() returns to run(), the monitor knows. Only a flag here: the
        # pause itself is async and a span of its own.
        if violation.rule != MONITOR_FAILURES.name:
            return
        monitor = self._by_id.get(violation.group or "")
        if monitor is not None:
            monitor.out_of_budget = True
