"""examples/erp_django: the ERP seed's Django monitoring, on a real server, against a receiver.

``manage.py demo`` plays a scripted session over HTTP (Django behind the standard library's
WSGI server); ``manage.py sentry_test --all`` sends the test events. Each runs once in a
subprocess with SENTRY_DSN pointing at a fresh receiver, on its own SQLite file.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otel_sentry_biz.receiver import LocalReceiver
from tests.e2e.conftest import clean_env
from tests.examples.conftest import EXAMPLES, ExampleRun
from tests.relay_oracle import assert_valid

pytestmark = pytest.mark.slow

MANAGE = EXAMPLES / "erp_django" / "manage.py"
ANA, BEN = "101", "102"  # the demo's employees (erp/session.py), as Sentry gets their ids
#: The session's requests, in order: who, the transaction (the route), the answer.
SESSION = [
    (ANA, "POST /sales/orders/", "201"),
    (ANA, "POST /sales/orders/", "409"),
    (ANA, "GET /sales/orders/<int:order_id>/", "200"),
    (ANA, "GET /sales/orders/<int:order_id>/", "404"),
    (BEN, "POST /inventory/adjustments/", "200"),
    (BEN, "POST /production/runs/", "201"),
    (BEN, "POST /production/runs/", "201"),
    (BEN, "POST /quality/checks/", "403"),
    (ANA, "POST /quality/checks/", "201"),
    (ANA, "POST /quality/checks/", "500"),
]
ANSWERS = ("Http404", "PermissionDenied")  # what Django answers 404 and 403 with


def run_manage(tmp_path: Path, *command: str, dsn: bool = True, **env: str) -> ExampleRun:
    """``manage.py <command>`` against a fresh receiver; every event checked by Relay.

    With ``dsn=False`` the command gets no SENTRY_DSN (``demo`` starts its own receiver).
    """
    env["ERP_DATABASE"] = str(tmp_path / "erp.sqlite3")
    with LocalReceiver() as receiver:
        if dsn:
            env["SENTRY_DSN"] = receiver.dsn
        done = subprocess.run(
            [sys.executable, str(MANAGE), *command],
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        events, reports = receiver.events(), receiver.client_reports()
    for event in events:
        assert_valid(event)
    return ExampleRun(done.stdout, events, reports)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    return run_manage(tmp_path_factory.mktemp("erp"), "demo")


def transactions_of(run: ExampleRun, name: str) -> list[dict[str, Any]]:
    return [t for t in run.transactions if t["transaction"] == name]


def answered(transaction: dict[str, Any]) -> str:
    return str(transaction["contexts"]["trace"]["data"]["http.response.status_code"])


def violation(run: ExampleRun, rule: str) -> dict[str, Any]:
    (found,) = [v for v in run.violations if v["tags"]["violation_rule"] == rule]
    return found


def test_the_demo_prints_each_answer_and_sends_the_session(demo: ExampleRun) -> None:
    lines = demo.stdout.splitlines()
    assert lines[0].startswith("ERP session on http://127.0.0.1:")
    assert [line.split()[3] for line in lines[1:11]] == [status for *_, status in SESSION]
    sent = ast.literal_eval(lines[11].removeprefix("Sent to SENTRY_DSN: "))
    assert (sent["transaction"], sent["violation"], sent["error"]) == (12, 2, 1)


def test_each_request_is_a_transaction_named_by_its_route_with_its_user(
    demo: ExampleRun,
) -> None:
    logins = transactions_of(demo, "POST /login/")
    assert sorted(t["contexts"]["trace"]["data"]["user.id"] for t in logins) == [ANA, BEN]
    served = [t for t in demo.transactions if t not in logins]
    # One client at a time: the receiver got them in the order they were served.
    assert [
        (t["contexts"]["trace"]["data"]["user.id"], t["transaction"], answered(t)) for t in served
    ] == SESSION
    for transaction in demo.transactions:
        assert transaction["contexts"]["trace"]["op"] == "http.server"
        assert transaction["release"] == "context7-erp@2.2.0"
    # The ERP's user hook gives username, e-mail and full name: kept out without PII consent.
    sent = json.dumps(demo.events)
    for personal in ("ana@context7-erp.example", "Ana Lopez", '"ana"', "user.name"):
        assert personal not in sent


def test_module_operations_are_spans_named_and_tagged_by_module(demo: ExampleRun) -> None:
    expected = {
        "POST /sales/orders/": ("sales", "sales.create_order"),
        "POST /inventory/adjustments/": ("inventory", "inventory.adjust_stock"),
        "POST /production/runs/": ("production", "production.start_run"),
    }
    for route, (module, operation) in expected.items():
        for transaction in transactions_of(demo, route):
            (span,) = [s for s in transaction["spans"] if s["op"].startswith("function.")]
            assert (span["op"], span["description"]) == (f"function.{module}", operation)
            assert transaction["tags"]["module"] == module
    checks = transactions_of(demo, "POST /quality/checks/")
    assert [t["tags"].get("module") for t in checks] == [None, "quality", "quality"]  # 403 first
    # The seed's @sentry_database_monitor: the stock reservation of the order taken.
    first_order = transactions_of(demo, "POST /sales/orders/")[0]
    (reservation,) = [s for s in first_order["spans"] if s["op"] == "db"]
    assert reservation["description"] == "reserve_stock erp_product"
    assert reservation["data"]["db.system.name"] == "sqlite"
    # The seed's @sentry_api_monitor(endpoint="sales_api"): the request span is tagged.
    for route in ("POST /sales/orders/", "GET /sales/orders/<int:order_id>/"):
        assert {t["tags"]["endpoint"] for t in transactions_of(demo, route)} == {"sales_api"}


def test_insufficient_stock_is_one_business_issue_of_the_sales_module(demo: ExampleRun) -> None:
    issue = violation(demo, "stock_available")
    assert issue["logentry"]["formatted"] == "Insufficient stock for order"
    assert issue["fingerprint"] == ["biz-violation", "stock_available"]
    assert issue["level"] == "error"  # the sales module's HIGH impact
    tags = issue["tags"]
    assert (tags["module"], tags["business_impact"], tags["error_category"]) == (
        "sales",
        "HIGH",
        "business_logic",
    )
    assert (tags["customer"], tags["sku"], tags["requested"], tags["available"]) == (
        "Globex",
        "VALVE-200",
        "500",
        "12",
    )
    assert issue["transaction"] == "POST /sales/orders/"
    assert issue["contexts"]["trace"]["op"] == "function.sales"


def test_the_large_production_run_is_a_slow_operation_issue(demo: ExampleRun) -> None:
    issue = violation(demo, "slow_operation")
    assert issue["fingerprint"] == ["biz-violation", "slow_operation", "production.start_run"]
    assert issue["level"] == "warning"
    tags = issue["tags"]
    assert (tags["module"], tags["error_category"], tags["quantity"]) == (
        "production",
        "performance",
        "400",  # the small run (20) stayed under its 250 ms
    )
    data = issue["contexts"]["business_violation"]["data"]
    assert data["biz.threshold_ms"] == 250.0
    assert data["biz.duration_ms"] >= 400.0
    assert issue["logentry"]["formatted"].startswith("production.start_run took ")


def test_the_500_is_one_error_of_the_quality_module(demo: ExampleRun) -> None:
    (error,) = [e for e in demo.errors if e["exception"]["values"][-1]["type"] not in ANSWERS]
    (exception,) = error["exception"]["values"]
    assert (exception["type"], exception["value"]) == (
        "SpecificationMissing",
        "no inspection specification on file for VALVE-200",
    )
    assert exception["stacktrace"]["frames"][-1]["function"] == "record_quality_check"
    assert error["level"] == "error"
    tags = error["tags"]
    assert (tags["module"], tags["business_impact"], tags["sku"]) == (
        "quality",
        "HIGH",
        "VALVE-200",
    )
    assert error["transaction"] == "POST /quality/checks/"
    assert error["contexts"]["trace"]["op"] == "function.quality"
    (failed,) = [t for t in transactions_of(demo, "POST /quality/checks/") if answered(t) == "500"]
    assert failed["contexts"]["trace"]["status"] == "internal_error"


def test_404_and_403_answers_are_statuses_of_their_transactions(demo: ExampleRun) -> None:
    statuses = {answered(t): t["contexts"]["trace"]["status"] for t in demo.transactions}
    assert (statuses["404"], statuses["403"]) == ("not_found", "permission_denied")


def test_404_and_403_answers_are_not_errors(demo: ExampleRun) -> None:
    assert [e["exception"]["values"][-1]["type"] for e in demo.errors] == ["SpecificationMissing"]


def test_the_error_names_the_user_it_affected(demo: ExampleRun) -> None:
    (error,) = [e for e in demo.errors if e["tags"].get("module") == "quality"]
    assert error["user"] == {"id": ANA}


def test_with_pii_consent_the_erp_user_hook_names_the_user(tmp_path: Path) -> None:
    run = run_manage(tmp_path, "demo", SENTRY_SEND_DEFAULT_PII="true")
    (login, _) = transactions_of(run, "POST /login/")
    user = {k: v for k, v in login["contexts"]["trace"]["data"].items() if k.startswith("user.")}
    # The full name comes from erp.monitoring.user_of only (Django's default hook has none);
    # e-mail addresses are scrubbed from every event, consent or not.
    assert user == {
        "user.id": ANA,
        "user.name": "ana",
        "user.email": "[Filtered]",
        "user.full_name": "Ana Lopez",
    }


def test_without_a_dsn_the_demo_lists_what_sentry_would_show(tmp_path: Path) -> None:
    run = run_manage(tmp_path, "demo", dsn=False)
    assert run.events == []  # it used its own receiver
    assert "Sentry received 12 transactions:" in run.stdout
    assert "  3 x POST /quality/checks/" in run.stdout
    for issue in (
        "  error   stock_available: Insufficient stock for order (module:sales, "
        "POST /sales/orders/)",
        "  warning slow_operation: production.start_run took ",
        "  error   SpecificationMissing: no inspection specification on file for VALVE-200 "
        "(module:quality, POST /quality/checks/)",
    ):
        assert issue in run.stdout


def test_sentry_test_all_delivers_one_event_of_each_kind(tmp_path: Path) -> None:
    run = run_manage(tmp_path, "sentry_test", "--all")
    run_id = run.stdout.split("(run ", 1)[1].split(")", 1)[0]
    assert f"otel_sentry_biz_test:{run_id}" in run.stdout
    assert {e["tags"]["otel_sentry_biz_test"] for e in run.events} == {run_id}
    (error,) = run.errors
    assert error["exception"]["values"][-1]["type"] == "SendTestError"
    (issue,) = run.violations
    assert issue["tags"]["violation_rule"] == "otel_sentry_biz_test"
    (message,) = [
        e for e in run.events if "logentry" in e and e not in run.violations and e not in run.errors
    ]
    assert message["logentry"]["formatted"].startswith("otel-sentry-biz test message")
    (performance,) = transactions_of(run, "GET /send-test/{run}")
    assert [s["op"] for s in performance["spans"]] == ["db"]
    assert Counter(e.get("type", "event") for e in run.events) == {"event": 3, "transaction": 4}
