"""Agents: every run is a span with the agent's business context; what they log is kept.

``BaseAgent.execute`` wraps a run in ``biz.operation``: a Sentry transaction when the agent
runs on its own, a span of the report when the orchestrator runs it. What the agents log
with the standard ``logging`` module becomes the breadcrumbs of the errors that follow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from sources import DataSource, ExternalAPIError

import otel_sentry_biz as biz

log = logging.getLogger("agents")


class BaseAgent:
    """An agent that fetches from one data source and summarises what it got."""

    name = "base"

    def __init__(self, source: DataSource) -> None:
        self.source = source

    async def execute(self, company: str) -> dict[str, Any]:
        async with biz.operation(
            f"agent.{self.name}", op="agent.execution", agent_name=self.name, company=company
        ):
            log.info("%s agent started for %s", self.name, company)
            return await self._execute_internal(company)

    async def _execute_internal(self, company: str) -> dict[str, Any]:
        log.info("Fetching data from %s for %s", self.source.name, company)
        try:
            data = await self.source.fetch(company)
        except ExternalAPIError:
            log.warning("External API failed: %s", self.source.name)
            raise  # recorded on this agent's span, with the log above as a breadcrumb
        return {"agent": self.name, "findings": data["items"]}


class ResearchAgent(BaseAgent):
    name = "research"


class FinancialAgent(BaseAgent):
    name = "financial"


class NewsAgent(BaseAgent):
    name = "news"


async def generate_strategic_report(
    company: str, requested_by: str, agents: Sequence[BaseAgent]
) -> dict[str, Any]:
    """Run ``agents`` concurrently; the report holds what those that succeeded found."""
    async with biz.operation("generate_strategic_report", op="analysis", company=company):
        # An e-mail address in a log record: the scrubber removes it before anything is sent.
        log.info("Report requested by %s", requested_by)
        results = await asyncio.gather(
            *(agent.execute(company) for agent in agents), return_exceptions=True
        )
        report = {
            agent.name: result
            for agent, result in zip(agents, results)
            if not isinstance(result, BaseException)
        }
        biz.record(agents_executed=len(agents), agents_failed=len(agents) - len(report))
        return report
