"""The shipped billing rule set over a generated billing dataset with planted anomalies.

Every planted anomaly is found by its rule, on the line that commits it, and no clean line is
flagged; on every state store.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from otel_sentry_biz.rules import check_rules_file
from otel_sentry_biz.rules.loader import SETS_DIRECTORY, read_rules_file
from tests.rules.conftest import MONDAY_10H

BILLING = SETS_DIRECTORY / "billing.toml"
DAY, HOUR = 86_400.0, 3_600.0
FOREMEN = ("Chen", "Novak", "Okafor", "Ramirez", "Silva")
CUSTOMERS = ("ACME Utilities", "Globex Water", "Initech Power", "Umbrella Gas")


@dataclass
class Line:
    work_request: str
    customer: str
    foreman: str
    quantity: float
    unit_price: float
    work_date: str = "2025-06-02"
    at: float = MONDAY_10H
    expect: set[str] = field(default_factory=set)

    @property
    def amount(self) -> float:
        return round(self.quantity * self.unit_price, 2)


def clean_monday(rng: random.Random) -> list[Line]:
    """48 ordinary lines on Monday: 12 work requests, balanced foremen, cents in every price."""
    lines = []
    for number in range(12):
        foreman, customer = FOREMEN[number % 5], CUSTOMERS[number % 4]
        for _ in range(4):
            lines.append(
                Line(
                    f"WR-{1000 + number}",
                    customer,
                    foreman,
                    quantity=rng.randint(2, 40),
                    unit_price=rng.randint(500, 4_500) / 100 + 0.07,
                    at=MONDAY_10H + rng.uniform(-3, 5) * HOUR,
                )
            )
    return lines


def planted() -> list[Line]:
    friday, thursday = MONDAY_10H - 3 * DAY, MONDAY_10H - 4 * DAY
    wednesday, tuesday = MONDAY_10H - 5 * DAY, MONDAY_10H - 6 * DAY
    rows = [
        Line("WR-P01", "ACME Utilities", "Chen", 2, 1250.0, expect={"unit_price_range"}),
        Line("WR-P02", "ACME Utilities", "Chen", 10, 0.01, expect={"unit_price_range"}),
        Line("WR-P03", "Globex Water", "Novak", 1200, 0.37, expect={"quantity_per_line"}),
        Line("WR-P04", "Globex Water", "Novak", 3, 12.31),
        Line("WR-P04", "Globex Water", "Okafor", 2, 12.31, expect={"one_foreman_per_work_request"}),
        Line("WR-P05", "Initech Power", "Silva", 3, 19.99),
        Line("WR-P05", "Umbrella Gas", "Silva", 1, 19.99, expect={"one_customer_per_work_request"}),
        Line(
            "WR-P06",
            "ACME Utilities",
            "Ramirez",
            4,
            9.99,
            work_date="2025-06-09",
            expect={"future_work_date"},
        ),
        Line(
            "WR-P07",
            "ACME Utilities",
            "Ramirez",
            4,
            9.99,
            work_date="2025-05-31",
            expect={"weekend_work"},
        ),
        Line(
            "WR-P08",
            "Globex Water",
            "Okafor",
            4,
            9.97,
            at=MONDAY_10H + 9.5 * HOUR,
            expect={"after_hours_change"},
        ),
        Line("WR-P09", "Globex Water", "Okafor", 7, 33.33),
        Line("WR-P09", "Globex Water", "Okafor", 7, 33.33, expect={"duplicate_line"}),
    ]
    # A work request over $15,000, alone on its day (Tuesday).
    rows += [
        Line("WR-P10", "Initech Power", "Silva", 11, 499.0 - n, work_date="2025-05-27", at=tuesday)
        for n in range(3)
    ]
    rows[-1].expect = {"work_request_limit"}  # 5489 + 5478 + 5467 = 16,434
    # Friday: four work requests of about $13,000 each (each under $15,000) pass $50,000.
    for number, foreman in enumerate(FOREMEN[:4]):
        rows += [
            Line(
                f"WR-P2{number}",
                "Umbrella Gas",
                foreman,
                14,
                465.25 + cents / 100,
                work_date="2025-05-30",
                at=friday + number,
            )
            for cents in range(2)
        ]
    rows[-1].expect = {"daily_billing_total"}  # the 8th line: about 8 x 6,513.50 = 52,109
    # Thursday: 20 small lines, 8 of them round hundreds (40%), spread over four foremen.
    for number in range(20):
        price = 100.0 if number >= 12 else 7.13 + number
        rows.append(
            Line(
                f"WR-P3{number}",
                "ACME Utilities",
                FOREMEN[number % 4],
                1,
                price,
                work_date="2025-05-29",
                at=thursday + number,
            )
        )
    rows[-1].expect = {"round_amount_bias"}
    # Wednesday: one foreman carries more than three times the average load.
    for number, foreman in enumerate(FOREMEN[:3]):
        rows.append(
            Line(
                f"WR-P4{number}",
                "Globex Water",
                foreman,
                3,
                100.01,
                work_date="2025-05-28",
                at=wednesday,
            )
        )
    rows.append(
        Line(
            "WR-P49",
            "Globex Water",
            "Ramirez",
            10,
            400.03,
            work_date="2025-05-28",
            at=wednesday,
            expect={"foreman_workload"},
        )
    )
    return rows


def test_the_billing_set_is_valid():
    assert check_rules_file(BILLING) == []
    assert len(read_rules_file(BILLING).rules) == 12


def test_every_planted_anomaly_is_found_and_no_clean_line_is_flagged(judge, store_url):
    judge.use(*read_rules_file(BILLING).rules, state=store_url)
    lines = clean_monday(random.Random(7)) + planted()
    found = {}
    for number, line in enumerate(lines):
        violations = judge.span(
            "bill_line",
            at=line.at,
            work_request=line.work_request,
            customer=line.customer,
            foreman=line.foreman,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            work_date=line.work_date,
        )
        found[number] = {v["biz.violation.rule"] for v in violations}
    expected = {number: line.expect for number, line in enumerate(lines)}
    assert found == expected
    planted_rules = set().union(*expected.values())
    assert len(planted_rules) == 12  # every rule of the set has its anomaly
