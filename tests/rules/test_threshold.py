"""threshold: one attribute past a limit (work request amount, unit price range, quantity)."""

from __future__ import annotations

import pytest

from otel_sentry_biz.rules import Threshold
from tests.rules.conftest import rules_of

WR_LIMIT = Threshold(
    name="work_request_limit",
    attribute="amount",
    above=15_000,
    impact="HIGH",
    span="process_work_request",
    group_by="work_request",
    message="Work request {work_request} total ${value:,.2f} exceeds ${limit:,.0f}",
)
UNIT_PRICE = Threshold(
    name="unit_price_range",
    attribute="unit_price",
    at_or_above=500,
    at_or_below=0.01,
    impact="MEDIUM",
    category="data_quality",
)


def test_amount_over_the_limit_is_reported_with_the_business_key(judge):
    judge.use(WR_LIMIT)
    (found,) = judge.span("process_work_request", work_request="WR-1003", amount=15_960.0)
    assert found["biz.violation.rule"] == "work_request_limit"
    assert found["biz.violation.impact"] == "HIGH"
    assert found["biz.violation.group"] == "WR-1003"
    assert found["biz.violation.message"] == "Work request WR-1003 total $15,960.00 exceeds $15,000"
    assert found["biz.violation.data.work_request"] == "WR-1003"
    assert found["biz.violation.data.alert_tier"] == "within_1h"


def test_amounts_within_the_limit_stay_clean(judge):
    judge.use(WR_LIMIT)
    assert judge.span("process_work_request", work_request="WR-1", amount=15_000.0) == []
    assert judge.span("process_work_request", work_request="WR-2", amount=120.5) == []
    # Other spans carrying the same context are not what the rule applies to.
    assert judge.span("SELECT lines", work_request="WR-3", amount=99_999.0) == []


@pytest.mark.parametrize(
    ("price", "breach"),
    [(500.0, "at or above 500"), (0.01, "at or below 0.01"), (1250, "at or above 500")],
)
def test_unit_price_outside_the_range_is_reported(judge, price, breach):
    judge.use(UNIT_PRICE)
    (found,) = judge.span("price_line", unit_price=price)
    assert found["biz.violation.data.breach"] == breach
    assert found["biz.violation.category"] == "data_quality"


@pytest.mark.parametrize("price", [0.02, 95.0, 499.99, "12.50"])
def test_unit_prices_inside_the_range_stay_clean(judge, price):
    judge.use(UNIT_PRICE)
    assert judge.span("price_line", unit_price=price) == []


def test_non_numeric_or_missing_values_are_not_judged(judge):
    judge.use(UNIT_PRICE)
    assert judge.span("price_line", unit_price="n/a") == []
    assert judge.span("price_line", quantity=3) == []


def test_quantity_over_1000_per_line_using_a_plain_attribute_name(judge):
    judge.use(Threshold(name="quantity", attribute="line.quantity", above=1000))
    assert rules_of(judge.span("line", attributes={"line.quantity": 1200})) == ["quantity"]
    assert judge.span("line", attributes={"line.quantity": 1000}) == []
