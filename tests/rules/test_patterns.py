"""round_numbers (round-amount bias) and imbalance (one group's load > 3x the average)."""

from __future__ import annotations

import pytest

from otel_sentry_biz.rules import Imbalance, RoundNumbers
from otel_sentry_biz.rules.kinds.round_numbers import is_round

ROUND_BIAS = RoundNumbers(
    name="round_amount_bias", attribute="amount", multiple=100, share=0.3, min_sample=10
)
WORKLOAD = Imbalance(
    name="foreman_workload", group_by="foreman", attribute="amount", factor=3, min_total=100
)


def test_more_than_30_percent_round_amounts_is_reported_once(judge, store_url):
    judge.use(ROUND_BIAS, state=store_url)
    amounts = [123.45, 87.1, 310.2, 99.99, 1520.75, 42.0, 1500.0, 2000.0, 300.0]
    assert all(judge.span(amount=amount) == [] for amount in amounts)  # 9 < min_sample
    (found,) = judge.span(amount=700.0)  # 4 round of 10
    assert found["biz.violation.data.observed"] == pytest.approx(0.4)
    assert "4 of 10 amount values in 1d (40%)" in found["biz.violation.message"]
    assert judge.span(amount=800.0) == []  # once per window


def test_a_normal_share_of_round_amounts_stays_clean(judge, store_url):
    judge.use(ROUND_BIAS, state=store_url)
    amounts = [123.45, 87.1, 310.2, 99.99, 1520.75, 42.0, 1500.0, 2000.0, 310.5, 77.7, 0.0, 15.0]
    assert all(judge.span(amount=amount) == [] for amount in amounts)  # 2 round of 12


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(1500.0, True), (-200, True), (1499.99, False), (0, False), (50, False)],
)
def test_what_counts_as_round(amount, expected):
    assert is_round(amount, 100) is expected


def test_one_foreman_with_over_3x_the_average_load_is_reported(judge, store_url):
    judge.use(WORKLOAD, state=store_url)
    for foreman in ("Chen", "Novak", "Okafor"):
        assert judge.span(foreman=foreman, amount=10) == []
    (found,) = judge.span(foreman="Ramirez", amount=100)  # 100 > 3 x 130/4
    assert found["biz.violation.group"] == "Ramirez"
    assert found["biz.violation.data.ratio"] == pytest.approx(100 / 32.5)
    assert judge.span(foreman="Ramirez", amount=50) == []  # once per window


def test_a_balanced_workload_stays_clean(judge, store_url):
    judge.use(WORKLOAD, state=store_url)
    for _round in range(3):
        for foreman, amount in (("Chen", 40), ("Novak", 30), ("Okafor", 30), ("Ramirez", 35)):
            assert judge.span(foreman=foreman, amount=amount) == []


def test_too_few_groups_are_not_judged(judge, store_url):
    judge.use(WORKLOAD, state=store_url)
    assert judge.span(foreman="Chen", amount=10) == []
    assert judge.span(foreman="Novak", amount=1000) == []  # 2 groups: no average to speak of
