"""duration (slow operations), resource (psutil, sampled) and failure_budget (N in a row)."""

from __future__ import annotations

from otel_sentry_biz.rules import FailureBudget, Resource, SlowOperation
from otel_sentry_biz.rules.kinds.resource import ResourceCheck
from otel_sentry_biz.rules.spec import Finding
from tests.rules.conftest import rules_of

SLOW = SlowOperation(name="slow_operation", overrides={"generate_report": "30s", "db.*": "500ms"})


def test_an_operation_over_5_seconds_is_slow(judge):
    judge.use(SLOW)
    (found,) = judge.span("upload_to_erp", duration=6.0)
    assert found["biz.violation.category"] == "performance"
    assert found["biz.violation.message"] == "upload_to_erp took 6.00s, over 5s"
    assert found["biz.violation.group"] == "upload_to_erp"


def test_per_operation_overrides_by_name_or_op(judge):
    judge.use(SLOW)
    assert judge.span("generate_report", duration=20.0) == []
    assert len(judge.span("generate_report", duration=31.0)) == 1
    assert len(judge.span("SELECT lines", duration=0.6, attributes={"sentry.op": "db.query"})) == 1


def test_fast_operations_stay_clean(judge):
    judge.use(SLOW)
    assert judge.span("upload_to_erp", duration=4.9) == []
    assert judge.span("SELECT lines", duration=0.2, attributes={"sentry.op": "db.query"}) == []


def test_memory_over_the_limit_is_reported_once_from_a_real_sample(judge):
    judge.use(Resource(name="memory", memory_mb=1, interval="1h", impact="HIGH"))
    (found,) = judge.span()
    assert found["biz.violation.category"] == "system_resource"
    assert found["biz.violation.data.metric"] == "memory"
    assert found["biz.violation.data.value"] > 1
    assert judge.span() == []  # not sampled again within the interval


def test_memory_within_the_limit_stays_clean(judge):
    judge.use(Resource(name="memory", memory_mb=1_000_000, cpu_percent=10_000))
    assert judge.span() == []


def test_resource_is_sampled_at_most_once_per_interval_and_edge_triggered():
    samples = iter([(600.0, 5.0), (700.0, 5.0), (400.0, 5.0), (650.0, 95.0)])
    calls = []
    now = [0.0]

    def sampler():
        calls.append(now[0])
        return next(samples)

    check = ResourceCheck(500, 90, 30, sampler=sampler, clock=lambda: now[0])
    found: list[list[Finding]] = []
    for second in (0, 1, 29, 30, 45, 60, 90):
        now[0] = second
        found.append([f.values["metric"] for f in check.check(None)])
    assert calls == [0, 30, 60, 90]  # seven spans, four samples
    # over (report) -> still over (quiet) -> under (re-arm) -> over again, CPU too (report)
    assert found == [["memory"], [], [], [], [], [], ["memory", "cpu"]]


def test_n_consecutive_failures_raise_one_violation_until_a_success(judge, store_url):
    judge.use(FailureBudget(name="agent_failures", failures=5, impact="HIGH"), state=store_url)
    results = [judge.span("research_agent", error=True) for _ in range(7)]
    assert [len(r) for r in results] == [0, 0, 0, 0, 1, 0, 0]
    assert results[4][0]["biz.violation.message"] == "research_agent failed 5 times in a row"
    assert judge.span("research_agent") == []  # a success resets the streak
    results = [judge.span("research_agent", error=True) for _ in range(5)]
    assert [len(r) for r in results] == [0, 0, 0, 0, 1]


def test_failures_interrupted_by_successes_stay_clean(judge, store_url):
    judge.use(FailureBudget(name="agent_failures", failures=5), state=store_url)
    for _ in range(3):
        for _ in range(4):
            assert judge.span("research_agent", error=True) == []
        assert judge.span("research_agent") == []
    # Streaks are per operation.
    for name in ("a", "b", "c", "d", "a", "b", "c", "d"):
        assert judge.span(name, error=True) == []


def test_failure_budget_groups_by_a_business_key(judge, store_url):
    judge.use(FailureBudget(name="per_agent", failures=2, group_by="agent"), state=store_url)
    assert judge.span("step", error=True, agent="a") == []
    assert judge.span("step", error=True, agent="b") == []
    assert rules_of(judge.span("other_step", error=True, agent="a")) == ["per_agent"]
