"""examples/billing: the billing rule set finds every planted anomaly on its own.

The app runs once per module against a real receiver; each test reads one part of what
arrived. Every result is fixed by the data (dates and entry times in the CSV), not by when
the test runs.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.examples.conftest import ExampleRun, run_example

pytestmark = pytest.mark.slow

#: rule -> (group, impact, category, work_request tag): one Sentry issue each.
EXPECTED_VIOLATIONS = {
    "work_request_limit": ("WR-2003", "HIGH", "business_logic", "WR-2003"),
    "unit_price_range": (None, "MEDIUM", "data_quality", "WR-2005"),
    "quantity_per_line": (None, "MEDIUM", "data_quality", "WR-2010"),
    "one_foreman_per_work_request": ("WR-2006", "HIGH", "data_quality", "WR-2006"),
    "one_customer_per_work_request": ("WR-2012", "CRITICAL", "data_quality", "WR-2012"),
    "future_work_date": ("WR-2011", "CRITICAL", "data_quality", "WR-2011"),
    "weekend_work": ("WR-2008", "LOW", "business_logic", "WR-2008"),
    "after_hours_change": ("WR-2013", "LOW", "business_logic", "WR-2013"),
    "duplicate_line": (
        "WR-2009 / 2025-06-04 / Chen / 5.0 / 143.2",
        "CRITICAL",
        "business_logic",
        "WR-2009",
    ),
    # The 20th line, the rule's minimum sample: 11 of the 20 amounts so far are round.
    "round_amount_bias": (None, "LOW", "business_logic", "WR-2006"),
}
LEVELS = {"CRITICAL": "fatal", "HIGH": "error", "MEDIUM": "warning", "LOW": "info"}
#: Billable lines per work request (WR-2015 and WR-2016 are set aside by the batch check).
LINES = {
    "WR-2001": 3, "WR-2002": 6, "WR-2003": 3, "WR-2004": 5, "WR-2005": 2, "WR-2006": 2,
    "WR-2007": 2, "WR-2008": 1, "WR-2009": 2, "WR-2010": 2, "WR-2011": 1, "WR-2012": 2,
    "WR-2013": 1, "WR-2014": 2,
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    return run_example("billing", tmp_path_factory.mktemp("billing"))


def test_the_app_reports_its_batch(run: ExampleRun) -> None:
    assert run.stdout.splitlines()[:2] == [
        "Billed 13 of 14 work requests (failed: WR-2007); batch quality 94.1/100, "
        "2 lines set aside.",
        "Sent to SENTRY_DSN: {'transaction': 15, 'violation': 10, 'error': 1}",
    ]


def test_each_planted_anomaly_is_one_issue_of_its_rule(run: ExampleRun) -> None:
    found = {}
    for event in run.violations:
        rule = event["tags"]["violation_rule"]
        assert rule not in found, f"{rule} reported twice"
        found[rule] = (
            event["contexts"]["business_violation"].get("group"),
            event["tags"]["business_impact"],
            event["tags"]["error_category"],
            event["tags"]["work_request"],
        )
        group = found[rule][0]
        assert event["fingerprint"] == ["biz-violation", rule, *([group] if group else [])]
        assert event["level"] == LEVELS[found[rule][1]]
        assert event["transaction"] == "process_work_request"
    assert found == EXPECTED_VIOLATIONS


def test_violation_messages_name_what_is_wrong(run: ExampleRun) -> None:
    messages = {e["tags"]["violation_rule"]: e["logentry"]["formatted"] for e in run.violations}
    assert messages["work_request_limit"] == "Work request WR-2003 totals $15,494.00, over $15,000"
    assert messages["duplicate_line"] == "Duplicate line on WR-2009: 5 x $143.20 on 2025-06-04"
    assert messages["after_hours_change"] == (
        "Billing data for WR-2013 changed after hours (2025-06-05T21:40:00+00:00)"
    )
    assert messages["round_amount_bias"] == (
        "55% of today's 20 line amounts are round hundreds (limit 30%)"
    )


def test_the_failed_invoice_is_a_critical_error_with_its_story(run: ExampleRun) -> None:
    (error,) = run.errors
    (exception,) = error["exception"]["values"]
    assert (exception["type"], exception["value"]) == (
        "InvoiceError",
        "no sales-tax rate on file for Umbrella Gas: cannot invoice WR-2007",
    )
    assert exception["mechanism"]["handled"] is True  # the batch went on without it
    origin = exception["stacktrace"]["frames"][-1]
    assert origin["function"] == "generate_invoice"
    assert origin["abs_path"].endswith("examples/billing/app.py")
    assert "raise InvoiceError" in origin["context_line"]
    assert error["level"] == "fatal"
    tags = error["tags"]
    assert (tags["business_impact"], tags["error_category"]) == ("CRITICAL", "business_logic")
    assert (tags["work_request"], tags["customer"]) == ("WR-2007", "Umbrella Gas")
    assert error["transaction"] == "process_work_request"
    assert error["contexts"]["trace"]["op"] == "billing.invoice"
    # What the app logged before the failure, in order, from the stdlib logger "billing".
    assert [(c["category"], c["level"], c["message"]) for c in error["breadcrumbs"]["values"]] == [
        ("billing", "info", "Pricing 2 lines of WR-2007 for Umbrella Gas"),
        ("billing", "info", "Generating the invoice of WR-2007: subtotal $1270.85"),
    ]


def test_one_transaction_per_work_request_with_its_db_spans(run: ExampleRun) -> None:
    by_name = Counter(t["transaction"] for t in run.transactions)
    assert by_name == {"load_batch": 1, "process_work_request": 14}
    billed = Counter()
    for transaction in run.transactions:
        if transaction["transaction"] != "process_work_request":
            continue
        number = transaction["tags"]["work_request"]
        spans = transaction["spans"]
        billed[number] = sum(1 for s in spans if s["op"] == "billing.line")
        queries = [s for s in spans if s["op"] == "db"]
        # SQLAlchemy's statements, as children of this work request's transaction.
        assert queries, number
        for query in queries:
            assert query["data"]["db.system.name"] == "sqlite"
            assert query["trace_id"] == transaction["contexts"]["trace"]["trace_id"]
        assert any(
            q["description"].startswith("SELECT lines.id")
            and "WHERE lines.work_request = ?" in q["description"]
            for q in queries
        ), number
        invoice = next(s for s in spans if s["op"] == "billing.invoice")
        writes = [q for q in queries if q["parent_span_id"] == invoice["span_id"]]
        if number != "WR-2007":  # the failed invoice never wrote
            assert any(q["description"].startswith("INSERT INTO invoices") for q in writes)
    assert billed == LINES


def test_the_batch_quality_is_measured_on_the_load(run: ExampleRun) -> None:
    (load,) = [t for t in run.transactions if t["transaction"] == "load_batch"]
    assert load["measurements"]["data_quality_score"] == {"value": 94.1, "unit": "none"}
    inserts = [s for s in load["spans"] if s["description"].startswith("INSERT INTO lines")]
    assert inserts and all(s["op"] == "db" for s in inserts)


def test_without_a_dsn_it_prints_what_sentry_would_show(tmp_path) -> None:
    run = run_example("billing", tmp_path, dsn=False)
    assert run.events == []  # it used its own receiver
    assert "Business rule violations by impact (10)" in run.stdout
    for rule in EXPECTED_VIOLATIONS:
        assert f"    {rule}: " in run.stdout
    assert "InvoiceError: no sales-tax rate on file for Umbrella Gas" in run.stdout
