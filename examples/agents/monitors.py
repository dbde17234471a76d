"""Monitors that check a company's sources and pause themselves after 5 failures in a row.

The agent seed counts errors by hand and pauses at five. Here each check is a
``monitor.check`` span; the ``monitor_failures`` failure budget counts the failed ones per
monitor (a success resets the count), reports the fifth as one HIGH issue, and the monitor
reads the budget after each check to pause itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging

from budgets import FailureBudgets
from sources import DataSource, ExternalAPIError

import otel_sentry_biz as biz
from otel_sentry_biz.rules import FailureBudget

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

    def __init__(
        self, monitor_id: str, company: str, source: DataSource, budgets: FailureBudgets
    ) -> None:
        self.monitor_id = monitor_id
        self.company = company
        self.source = source
        self.budgets = budgets
        self.status = MonitorStatus.ACTIVE
        self.checks = 0

    async def run(self, checks: int, interval: float) -> None:
        """Check up to ``checks`` times, ``interval`` seconds apart; stop when paused."""
        for _ in range(checks):
            # A failure is recorded on the check's span, where the failure budget counts it.
            with contextlib.suppress(ExternalAPIError, TimeoutError):
                await self.check_for_updates()
            if self.budgets.spent(MONITOR_FAILURES.name, self.monitor_id):
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
