"""Agents: asyncio agents and monitors, their logs, failure budgets and per-issue caps.

    python examples/agents/app.py            # a local receiver; prints what Sentry got
    SENTRY_DSN=https://<key>@<host>/<project> python examples/agents/app.py

Three scenes from the agent seed:

1. A strategic report on Tesla runs the research and financial agents concurrently. The
   market-data API fails: one error, with what the agents logged before it as breadcrumbs
   (the requester's e-mail address and the API key scrubbed).
2. Two monitors check their sources 8 times. Tesla's SEC-filings feed is down: after its
   5th failure in a row the ``monitor_failures`` budget reports one HIGH issue, and the
   pipeline's ``on_violation`` hook tells the monitor, which pauses itself. Microsoft's
   news feed fails often, but never 5 times in a row.
3. The news agent is polled 60 times against a rate-limited API: 60 identical errors, of
   which Sentry gets ``SENTRY_MAX_EVENTS_PER_ISSUE`` (default 50); the rest are counted as
   dropped in a client report.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import Counter
from typing import Any

from agents import FinancialAgent, NewsAgent, ResearchAgent, generate_strategic_report
from monitors import MONITOR_FAILURES, Monitors
from sources import DataSource, ExternalAPIError, FeedTimeout, RateLimited, SourceUnavailable

import otel_sentry_biz as biz
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.rules import RuleSet

RESOURCE = {
    "service.name": "agents-example",
    "service.version": "1.0.0",
    "deployment.environment.name": "example",
}
NEWS_POLLS = 60
MONITOR_CHECKS = 8
#: A data source failing is an integration problem that degrades what the agents deliver.
CLASSIFIER = biz.ErrorClassifier(
    rules=[
        biz.ClassificationRule(
            exception_types=("ExternalAPIError", "RateLimited", "SourceUnavailable"),
            impact="HIGH",
            category="integration",
        )
    ]
)


def market_data_down(call: int) -> Exception:
    return ExternalAPIError("market data API rejected key sk_live_51HxQk2ZaL0fT9cWq8Rb: 503")


def filings_feed_down(call: int) -> Exception:
    return SourceUnavailable("SEC filings feed answered 503 Service Unavailable")


def news_feed_flaky(call: int) -> Exception | None:
    # Fails twice, answers once: never 5 failures in a row.
    return None if call % 3 == 0 else FeedTimeout("news feed did not answer within 2 s")


def news_api_rate_limited(call: int) -> Exception:
    return RateLimited("news API answered 429 Too Many Requests")


async def scenario(registry: Monitors) -> list[str]:
    """Run the three scenes; a line of outcome each."""
    report = await generate_strategic_report(
        "Tesla",
        requested_by="ana.lopez@example.com",
        agents=[
            ResearchAgent(DataSource("web_search")),
            FinancialAgent(DataSource("market_data", market_data_down)),
        ],
    )
    monitors = [
        registry.add("mon-tesla-filings", "Tesla", DataSource("sec_filings", filings_feed_down)),
        registry.add("mon-msft-news", "Microsoft", DataSource("news_feed", news_feed_flaky)),
    ]
    await asyncio.gather(*(m.run(MONITOR_CHECKS, interval=0.005) for m in monitors))
    news = NewsAgent(DataSource("news_api", news_api_rate_limited))
    polls = await asyncio.gather(
        *(news.execute("Tesla") for _ in range(NEWS_POLLS)), return_exceptions=True
    )
    limited = sum(isinstance(p, RateLimited) for p in polls)
    return [
        f"Strategic report on Tesla: {len(report)} of 2 agents delivered ({', '.join(report)}).",
        *(f"Monitor {m.monitor_id}: {m.status.value} after {m.checks} checks." for m in monitors),
        f"News agent: {limited} of {NEWS_POLLS} polls rate-limited.",
    ]


def issue_summary(events: list[dict[str, Any]]) -> list[str]:
    """Events per Sentry issue: violations by rule, errors by exception type."""
    issues = Counter()
    for event in events:
        if "business_violation" in event.get("contexts", {}):
            issues[f"violation {event['tags']['violation_rule']}"] += 1
        elif "exception" in event:
            issues[f"error {event['exception']['values'][-1]['type']}"] += 1
    transactions = sum(1 for e in events if e.get("type") == "transaction")
    return [
        f"Sentry received {transactions} transactions and these issues:",
        *(f"  {count:3d} x {issue}" for issue, count in sorted(issues.items())),
    ]


def main() -> int:
    # INFO records become breadcrumbs of the errors that follow (the root logger's level is
    # WARNING: without this line they would never reach any handler).
    logging.getLogger("agents").setLevel(logging.INFO)
    receiver = None if os.environ.get("SENTRY_DSN", "").strip() else LocalReceiver().start()
    monitors = Monitors()
    pipeline = biz.configure(
        dsn=receiver.dsn if receiver else None,
        traces_sample_rate=1.0,
        resource=RESOURCE,
        # A shared store (state="sqlite://..." or "redis://...") makes the streaks span
        # processes; memory is enough for one.
        rules=[RuleSet([MONITOR_FAILURES])],
        classifier=CLASSIFIER,
        on_violation=monitors.on_violation,  # the monitors pause themselves when told
    )
    outcome = asyncio.run(scenario(monitors))
    delivered = pipeline.force_flush(30_000)
    stats = pipeline.exporter.stats()
    pipeline.shutdown()
    print("\n".join(outcome))
    capped = stats["dropped_before_queue"].get("event_processor:error", 0)
    print(
        f"Per-issue cap: at most {pipeline.settings.max_events_per_issue} events per issue "
        f"per hour; {capped} more were dropped and counted in a client report."
    )
    if receiver is None:
        print(f"Sent to SENTRY_DSN: {stats['events']}")
    else:
        print("\n".join(issue_summary(receiver.events())))
        receiver.stop()
    if not delivered:
        print(f"Not everything was delivered: {stats}", file=sys.stderr)
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
