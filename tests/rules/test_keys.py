"""consistency (one key -> one value) and duplicate (a key tuple twice in a window)."""

from __future__ import annotations

from otel_sentry_biz.rules import Consistency, Duplicate
from tests.rules.conftest import MONDAY_10H

ONE_FOREMAN = Consistency(
    name="one_foreman_per_work_request",
    key="work_request",
    value="foreman",
    impact="HIGH",
    message="Work request {work_request} has two foremen: {first} and {value}",
)
ONE_CUSTOMER = Consistency(
    name="one_customer_per_work_request", key="work_request", value="customer", impact="CRITICAL"
)
DUPLICATE_LINE = Duplicate(
    name="duplicate_line",
    key=["work_request", "item", "quantity", "unit_price"],
    window="1d",
    impact="CRITICAL",
    span="bill_line",
)


def test_a_second_foreman_for_one_work_request_is_reported_once(judge, store_url):
    judge.use(ONE_FOREMAN, state=store_url)
    assert judge.span(work_request="WR-1005", foreman="Chen") == []
    (found,) = judge.span(work_request="WR-1005", foreman="Novak")
    assert found["biz.violation.message"] == "Work request WR-1005 has two foremen: Chen and Novak"
    assert found["biz.violation.group"] == "WR-1005"
    assert found["biz.violation.data.first"] == "Chen"
    assert judge.span(work_request="WR-1005", foreman="Novak") == []  # same conflict, once
    assert judge.span(work_request="WR-1005", foreman="Chen") == []


def test_a_second_customer_is_critical(judge, store_url):
    judge.use(ONE_CUSTOMER, state=store_url)
    judge.span(work_request="WR-7", customer="ACME")
    (found,) = judge.span(work_request="WR-7", customer="Globex")
    assert found["biz.violation.impact"] == "CRITICAL"
    assert found["biz.violation.data.alert_tier"] == "immediate"


def test_consistent_work_requests_stay_clean(judge, store_url):
    judge.use(ONE_FOREMAN, ONE_CUSTOMER, state=store_url)
    for number, foreman in (("WR-1", "Chen"), ("WR-2", "Novak"), ("WR-3", "Chen")):
        for _line in range(3):
            assert judge.span(work_request=number, foreman=foreman, customer="ACME") == []


def test_the_same_line_twice_in_a_day_is_a_duplicate(judge, store_url):
    judge.use(DUPLICATE_LINE, state=store_url)
    line = {"work_request": "WR-9", "item": "meter-read", "quantity": 120, "unit_price": 12.5}
    assert judge.span("bill_line", **line) == []
    (found,) = judge.span("bill_line", at=MONDAY_10H + 3600, **line)
    assert found["biz.violation.group"] == "WR-9 / meter-read / 120 / 12.5"
    assert found["biz.violation.data.item"] == "meter-read"
    assert len(judge.span("bill_line", **line)) == 1  # every further copy is one too


def test_distinct_lines_are_not_duplicates(judge, store_url):
    judge.use(DUPLICATE_LINE, state=store_url)
    assert judge.span("bill_line", work_request="WR-9", item="a", quantity=1, unit_price=2) == []
    assert judge.span("bill_line", work_request="WR-9", item="a", quantity=2, unit_price=2) == []
    assert judge.span("bill_line", work_request="WR-8", item="a", quantity=1, unit_price=2) == []
    # An incomplete key is not a key.
    assert judge.span("bill_line", work_request="WR-9", item="a", quantity=1) == []
