"""examples/agents: breadcrumbs from logging, a failure budget that pauses a monitor, a capped
flood, and nothing personal sent.

The app runs once per module against a real receiver, with SENTRY_MAX_EVENTS_PER_ISSUE=10.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.examples.conftest import ExampleRun, run_example

pytestmark = pytest.mark.slow

CAP = 10
NEWS_POLLS = 60


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    return run_example(
        "agents", tmp_path_factory.mktemp("agents"), SENTRY_MAX_EVENTS_PER_ISSUE=str(CAP)
    )


def errors_of(run: ExampleRun, exception_type: str) -> list[dict]:
    return [e for e in run.errors if e["exception"]["values"][-1]["type"] == exception_type]


def checks_of(run: ExampleRun, monitor_id: str) -> list[dict]:
    checks = [
        t
        for t in run.transactions
        if t["transaction"] == "monitor.check" and t["tags"]["monitor_id"] == monitor_id
    ]
    return sorted(checks, key=lambda t: t["start_timestamp"])


def test_the_app_reports_each_scene(run: ExampleRun) -> None:
    assert run.stdout.splitlines() == [
        "Strategic report on Tesla: 1 of 2 agents delivered (research).",
        "Monitor mon-tesla-filings: paused after 5 checks.",
        "Monitor mon-msft-news: active after 8 checks.",
        f"News agent: {NEWS_POLLS} of {NEWS_POLLS} polls rate-limited.",
        f"Per-issue cap: at most {CAP} events per issue per hour; {NEWS_POLLS - CAP} more were "
        "dropped and counted in a client report.",
        f"Sent to SENTRY_DSN: {{'error': {1 + 5 + 6 + CAP}, 'transaction': 75, 'violation': 1}}",
    ]


def test_the_failed_agent_carries_what_was_logged_before_it(run: ExampleRun) -> None:
    (error,) = errors_of(run, "ExternalAPIError")
    exception = error["exception"]["values"][-1]
    assert exception["value"] == "market data API rejected key [Filtered]: 503"
    assert exception["mechanism"]["handled"] is True  # the report went on without it
    frames = exception["stacktrace"]["frames"]
    assert [f["function"] for f in frames] == ["execute", "_execute_internal", "fetch"]
    assert frames[-1]["abs_path"].endswith("examples/agents/sources.py")
    tags = error["tags"]
    assert (tags["business_impact"], tags["error_category"]) == ("HIGH", "integration")
    assert (tags["agent_name"], tags["company"]) == ("financial", "Tesla")
    assert error["transaction"] == "generate_strategic_report"
    assert error["contexts"]["trace"]["op"] == "agent.execution"
    crumbs = [(c["category"], c["level"], c["message"]) for c in error["breadcrumbs"]["values"]]
    assert crumbs[0] == ("agents", "info", "Report requested by [Filtered]")
    assert crumbs[-1] == ("agents", "warning", "External API failed: market_data")
    # The research agent ran concurrently: its records interleave, the financial ones keep
    # their order.
    financial = [c for c in crumbs if "financial" in c[2] or "market_data" in c[2]]
    assert [c[2] for c in financial] == [
        "financial agent started for Tesla",
        "Fetching data from market_data for Tesla",
        "External API failed: market_data",
    ]
    assert ("agents", "info", "research agent started for Tesla") in crumbs


def test_nothing_personal_or_secret_is_sent(run: ExampleRun) -> None:
    sent = json.dumps(run.events)
    assert "ana.lopez" not in sent
    assert "sk_live_" not in sent


def test_five_failed_checks_raise_one_issue_and_pause_the_monitor(run: ExampleRun) -> None:
    (violation,) = run.violations
    assert violation["fingerprint"] == ["biz-violation", "monitor_failures", "mon-tesla-filings"]
    assert violation["logentry"]["formatted"] == (
        "Monitor mon-tesla-filings (Tesla) failed 5 checks in a row: paused"
    )
    assert violation["level"] == "error"
    tags = violation["tags"]
    assert (tags["violation_rule"], tags["business_impact"], tags["error_category"]) == (
        "monitor_failures",
        "HIGH",
        "integration",
    )
    assert (tags["monitor_id"], tags["company"]) == ("mon-tesla-filings", "Tesla")
    checks = checks_of(run, "mon-tesla-filings")
    assert len(checks) == 5  # the sixth check never ran
    assert {c["contexts"]["trace"]["status"] for c in checks} == {"internal_error"}
    # Reported by the fifth failed check, in its trace.
    assert violation["contexts"]["trace"]["trace_id"] == checks[-1]["contexts"]["trace"]["trace_id"]
    assert len(errors_of(run, "SourceUnavailable")) == 5
    (pause,) = [t for t in run.transactions if t["transaction"] == "monitor.pause"]
    assert (pause["tags"]["monitor_id"], pause["tags"]["monitor_status"]) == (
        "mon-tesla-filings",
        "paused",
    )
    assert pause["start_timestamp"] >= checks[-1]["timestamp"]


def test_a_monitor_whose_failures_are_not_consecutive_keeps_running(run: ExampleRun) -> None:
    checks = checks_of(run, "mon-msft-news")
    statuses = [c["contexts"]["trace"]["status"] for c in checks]
    assert statuses == ["internal_error", "internal_error", "ok"] * 2 + ["internal_error"] * 2
    timeouts = errors_of(run, "FeedTimeout")
    assert len(timeouts) == 6
    assert {e["tags"]["monitor_id"] for e in timeouts} == {"mon-msft-news"}


def test_a_flood_of_one_error_is_capped_and_the_rest_counted(run: ExampleRun) -> None:
    polls = [t for t in run.transactions if t["transaction"] == "agent.news"]
    assert len(polls) == NEWS_POLLS  # transactions are not capped: only the copies of an issue
    limited = errors_of(run, "RateLimited")
    assert len(limited) == CAP
    assert {e["exception"]["values"][-1]["value"] for e in limited} == {
        "news API answered 429 Too Many Requests"
    }
    assert run.discarded("event_processor", "error") == NEWS_POLLS - CAP
    # Every other issue stayed under the cap: one count per issue, nothing else dropped.
    issues = Counter(e["exception"]["values"][-1]["type"] for e in run.errors)
    assert issues == {
        "ExternalAPIError": 1,
        "SourceUnavailable": 5,
        "FeedTimeout": 6,
        "RateLimited": CAP,
    }


def test_without_a_dsn_it_prints_events_per_issue_under_the_default_cap(tmp_path) -> None:
    run = run_example("agents", tmp_path, dsn=False)
    assert run.events == []  # it used its own receiver
    lines = run.stdout.splitlines()
    assert (
        "Per-issue cap: at most 50 events per issue per hour; 10 more were dropped and counted "
        "in a client report."
    ) in lines
    assert lines[-6:] == [
        "Sentry received 75 transactions and these issues:",
        "    1 x error ExternalAPIError",
        "    6 x error FeedTimeout",
        "   50 x error RateLimited",
        "    5 x error SourceUnavailable",
        "    1 x violation monitor_failures",
    ]
