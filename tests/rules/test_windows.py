"""aggregate and rate: windowed count / sum / avg per group, on every state store."""

from __future__ import annotations

from otel_sentry_biz.rules import Aggregate, Rate
from tests.rules.conftest import MONDAY_10H, rules_of

DAY = 86_400.0
DAILY_TOTAL = Aggregate(
    name="daily_customer_total",
    function="sum",
    attribute="amount",
    window="1d",
    above=50_000,
    group_by="customer",
    span="process_work_request",
    impact="CRITICAL",
    message="{customer} billed ${value:,.0f} today, over ${limit:,.0f}",
)


def test_daily_total_over_the_limit_is_reported_once_per_customer(judge, store_url):
    judge.use(DAILY_TOTAL, state=store_url)
    assert judge.span("process_work_request", customer="ACME", amount=30_000) == []
    (found,) = judge.span("process_work_request", customer="ACME", amount=25_000)
    assert found["biz.violation.message"] == "ACME billed $55,000 today, over $50,000"
    assert found["biz.violation.group"] == "ACME"
    assert found["biz.violation.data.alert_tier"] == "immediate"
    assert judge.span("process_work_request", customer="ACME", amount=1_000) == []  # once


def test_daily_totals_under_the_limit_stay_clean(judge, store_url):
    judge.use(DAILY_TOTAL, state=store_url)
    for customer in ("ACME", "Globex", "Initech"):
        assert judge.span("process_work_request", customer=customer, amount=30_000) == []
    # The next day is a new window: yesterday's 30,000 does not count.
    nxt = MONDAY_10H + DAY
    assert judge.span("process_work_request", at=nxt, customer="ACME", amount=30_000) == []


def test_count_and_average_with_a_minimum_sample(judge, store_url):
    judge.use(
        Aggregate(name="orders", function="count", window="1h", above=2),
        Aggregate(
            name="avg_price",
            function="avg",
            attribute="unit_price",
            window="1h",
            above=100,
            min_samples=3,
        ),
        state=store_url,
    )
    assert judge.span("order", unit_price=400) == []  # avg 400, but one sample says little
    assert judge.span("order", unit_price=10) == []
    assert rules_of(judge.span("order", unit_price=10)) == ["orders", "avg_price"]


def test_average_under_the_limit_stays_clean(judge, store_url):
    judge.use(
        Aggregate(name="avg_price", function="avg", attribute="unit_price", window="1h", above=100),
        state=store_url,
    )
    assert all(judge.span("order", unit_price=price) == [] for price in (90, 110, 95, 100))


def test_rate_over_the_limit_per_minute_is_reported_once(judge, store_url):
    judge.use(
        Rate(
            name="failed_logins",
            span="login",
            status="error",
            limit=3,
            per="1m",
            group_by="user",
            impact="HIGH",
            category="security",
        ),
        state=store_url,
    )
    for _ in range(3):
        assert judge.span("login", error=True, user="mallory") == []
    assert judge.span("login", user="mallory") == []  # successes do not count
    (found,) = judge.span("login", error=True, user="mallory")
    assert found["biz.violation.category"] == "security"
    assert found["biz.violation.data.count"] == 4.0
    assert judge.span("login", error=True, user="mallory") == []


def test_rate_within_the_limit_stays_clean(judge, store_url):
    judge.use(Rate(name="api_calls", span="GET *", limit=3, per="1m"), state=store_url)
    for second in (0, 10, 20):
        assert judge.span("GET /items", at=MONDAY_10H + second) == []
    # A new minute starts a new count.
    for second in (60, 70, 80):
        assert judge.span("GET /items", at=MONDAY_10H + second) == []
    assert judge.span("POST /items") == []
