"""module(), api_endpoint() and db_operation(): the seeds' decorators as ready-made operations.

Spans are checked as OTel exports them; what Sentry receives is checked through the real
pipeline and receiver (and Relay), with real HTTP servers and a real SQLite database.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.monitors import api_endpoint, db_operation, module
from otel_sentry_biz_instrumentors.http import BizASGIMiddleware, BizWSGIMiddleware
from tests.instrumentors.test_http_support import asgi_server, wsgi_server
from tests.pipelines import sentry_pipeline, violations
from tests.relay_oracle import assert_valid, tags_of


def _span(finished: Any, name: str) -> Any:
    (span,) = [s for s in finished.get_finished_spans() if s.name == name]
    return span


class Refused(Exception):
    status_code = 403


# -- module -------------------------------------------------------------------------------


def test_one_factory_gives_each_module_its_named_operations(finished, tracer):
    sales = module("sales", impact="HIGH", region="EU")
    inventory = module("inventory", category="data_quality")

    @sales.operation("create_order", customer="ACME")
    def create_order() -> None:
        with tracer.start_as_current_span("price lines"):
            pass

    @inventory.operation("adjust_stock", impact="LOW", op="erp.inventory")
    def adjust_stock() -> None:
        pass

    create_order()
    adjust_stock()
    order, child = _span(finished, "sales.create_order"), _span(finished, "price lines")
    assert order.attributes["sentry.op"] == "function.sales"
    assert order.attributes["biz.impact"] == "HIGH"
    assert order.attributes["biz.module"] == "sales"
    assert child.attributes["biz.module"] == "sales"
    assert child.attributes["biz.region"] == "EU"
    assert child.attributes["biz.customer"] == "ACME"
    assert child.attributes["biz.operation"] == "sales.create_order"
    stock = _span(finished, "inventory.adjust_stock")
    assert stock.attributes["sentry.op"] == "erp.inventory"
    assert stock.attributes["biz.impact"] == "LOW"  # its own impact wins
    assert stock.attributes["biz.category"] == "data_quality"  # the module's category stands
    assert stock.attributes["biz.module"] == "inventory"


def test_a_module_operation_takes_every_operation_argument(finished):
    production = module("production")
    with pytest.raises(ValueError), production.operation("run_batch", threshold_ms=1):
        time.sleep(0.005)
        raise ValueError("machine 7 offline")
    span = _span(finished, "production.run_batch")
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception", "biz.violation"]


@pytest.mark.parametrize("bad", ["", "  ", None, 3])
def test_a_module_needs_a_name(bad):
    with pytest.raises(ConfigError, match="give a short name"):
        module(bad)


def test_a_module_rejects_a_bad_impact_where_it_is_declared():
    with pytest.raises(ValueError, match="use one of CRITICAL, HIGH, MEDIUM, LOW"):
        module("quality", impact="SEVERE")


# -- api_endpoint without an HTTP instrumentation ------------------------------------------


def test_an_endpoint_opens_a_server_span_named_after_the_function(finished, tracer):
    @api_endpoint
    def list_bookings() -> list[str]:
        with tracer.start_as_current_span("query bookings"):
            return ["b-1"]

    assert list_bookings() == ["b-1"]
    span = _span(finished, "list_bookings")
    assert span.kind is SpanKind.SERVER
    assert span.attributes["sentry.op"] == "http.server"
    assert span.attributes["biz.endpoint"] == "list_bookings"
    assert _span(finished, "query bookings").attributes["biz.endpoint"] == "list_bookings"


def test_an_async_endpoint_records_its_error_and_fails_its_span(finished):
    @api_endpoint("create_booking", impact="HIGH")
    async def create(slot: str) -> None:
        await asyncio.sleep(0)
        raise LookupError(f"slot {slot} taken")

    with pytest.raises(LookupError):
        asyncio.run(create("10:00"))
    span = _span(finished, "create_booking")
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.attributes["exception.message"] == "slot 10:00 taken"
    assert event.attributes["biz.impact"] == "HIGH"


def test_an_endpoint_answering_4xx_or_an_expected_exception_is_not_failing(finished):
    class NotFound(Exception):
        pass

    @api_endpoint(expected=(NotFound,))
    def show(what: str) -> None:
        raise Refused() if what == "secret" else NotFound(what)

    for what in ("secret", "missing"):
        with pytest.raises((Refused, NotFound)):
            show(what)
    for span in finished.get_finished_spans():
        assert span.events == ()
        assert span.status.status_code is StatusCode.UNSET


def test_a_slow_endpoint_is_a_violation_grouped_by_endpoint(finished):
    @api_endpoint("search", threshold_ms=1)
    def search() -> None:
        time.sleep(0.005)

    search()
    (found,) = violations(_span(finished, "search"))
    assert found["biz.violation.group"] == "search"
    assert found["biz.endpoint"] == "search"


def test_the_default_endpoint_threshold_lets_a_fast_call_through(finished):
    @api_endpoint("ping")
    def ping() -> str:
        return "pong"

    assert ping() == "pong"
    assert violations(_span(finished, "ping")) == []


def test_bad_endpoint_arguments_fail_where_the_endpoint_is_declared():
    with pytest.raises(ConfigError, match="threshold_ms"):
        api_endpoint("search", threshold_ms=0)
    with pytest.raises(ValueError, match="unknown impact"):
        api_endpoint(impact="URGENT")


# -- api_endpoint enriching the request's SERVER span --------------------------------------


def test_an_endpoint_inside_a_server_span_enriches_it_instead_of_nesting(finished, tracer):
    @api_endpoint("update_profile", impact="HIGH", threshold_ms=1)
    def update_profile() -> None:
        with tracer.start_as_current_span("save profile"):
            time.sleep(0.005)
        raise RuntimeError("profile store down")

    with tracer.start_as_current_span(
        "PUT /profile", kind=SpanKind.SERVER, attributes={"biz.impact": "CRITICAL"}
    ) as server:
        with pytest.raises(RuntimeError):
            update_profile()
        # The status belongs to the instrumentation, which knows the HTTP answer.
        assert server.status.status_code is StatusCode.UNSET

    names = sorted(s.name for s in finished.get_finished_spans())
    assert names == ["PUT /profile", "save profile"]
    span = _span(finished, "PUT /profile")
    assert span.attributes["biz.endpoint"] == "update_profile"
    assert span.attributes["biz.impact"] == "CRITICAL"  # set by the app: never overwritten
    assert "sentry.op" not in span.attributes  # op stays inferred from the span kind
    assert [e.name for e in span.events] == ["exception", "biz.violation"]
    assert _span(finished, "save profile").attributes["biz.endpoint"] == "update_profile"


def test_an_endpoint_below_another_span_opens_a_handler_span(finished, tracer):
    @api_endpoint("export_report")
    def export_report() -> None:
        pass

    with tracer.start_as_current_span("fastapi.endpoint"):
        export_report()
    span = _span(finished, "export_report")
    assert span.kind is SpanKind.INTERNAL  # one SERVER span per incoming call
    assert span.attributes["sentry.op"] == "function"
    assert span.attributes["biz.endpoint"] == "export_report"


def _wsgi_app() -> Any:
    @api_endpoint("create_booking", impact="HIGH")
    def create_booking() -> bytes:
        raise RuntimeError("calendar locked")

    @api_endpoint("list_bookings", threshold_ms=1)
    def list_bookings() -> bytes:
        time.sleep(0.005)
        return b"[]"

    views = {"/bookings/new": create_booking, "/bookings": list_bookings}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = views[environ["PATH_INFO"]]()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return BizWSGIMiddleware(app)


def test_behind_wsgi_middleware_sentry_gets_one_transaction_error_and_slow_issue(
    use_processor,
):
    with sentry_pipeline(use_processor) as sentry, wsgi_server(_wsgi_app()) as url:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"{url}/bookings/new", timeout=5)
        failed.value.close()
        with urllib.request.urlopen(f"{url}/bookings", timeout=5) as answer:
            assert answer.read() == b"[]"
        sentry.ended("GET", 2)
        events = sentry.events(4)

    assert failed.value.code == 500
    transactions = [e for e in events if e.get("type") == "transaction"]
    errors = [e for e in events if "exception" in e]
    issues = [e for e in events if "fingerprint" in e]
    assert len(events) == 4 and len(transactions) == 2  # no nested duplicate transaction
    for transaction in transactions:
        assert_valid(transaction)
        assert transaction["contexts"]["trace"]["op"] == "http.server"
        assert transaction["spans"] == []
    (error,) = errors  # recorded once, though endpoint and middleware both saw it
    tags = tags_of(assert_valid(error))
    assert tags["endpoint"] == "create_booking"
    assert tags["business_impact"] == "HIGH"
    assert error["level"] == "error"
    assert error["exception"]["values"][-1]["value"] == "calendar locked"
    (issue,) = issues
    assert issue["fingerprint"] == ["biz-violation", "slow_operation", "list_bookings"]
    assert tags_of(assert_valid(issue))["endpoint"] == "list_bookings"


@pytest.mark.parametrize("native_tracing", [True, False], ids=["fastapi-spans", "no-fastapi-spans"])
def test_fastapi_endpoint_errors_once_and_its_404_is_no_error(use_processor, native_tracing):
    # With FastAPI's own tracing, its fastapi.endpoint span is current in the handler: the
    # endpoint opens a child span. Without it, ours enriches the middleware's SERVER span.
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI(telemetry={"tracing": native_tracing, "metrics": False, "logs": False})

    @app.get("/slots/{slot}")
    @api_endpoint("book_slot", impact="HIGH")
    async def book_slot(slot: str) -> Any:
        if slot == "gone":
            raise fastapi.HTTPException(status_code=404)
        raise KeyError(f"slot {slot} double-booked")

    app.add_middleware(BizASGIMiddleware)
    with sentry_pipeline(use_processor) as sentry, asgi_server(app) as url:
        for slot, code in (("gone", 404), ("s-9", 500)):
            with pytest.raises(urllib.error.HTTPError) as failed:
                urllib.request.urlopen(f"{url}/slots/{slot}", timeout=5)
            failed.value.close()
            assert failed.value.code == code
        sentry.ended("GET /slots/{slot}", 2)
        events = sentry.events(3)

    assert len(events) == 3  # two transactions, one error
    (error,) = [e for e in events if "exception" in e]
    tags = tags_of(assert_valid(error))
    assert tags["endpoint"] == "book_slot"
    assert tags["business_impact"] == "HIGH"
    assert "double-booked" in error["exception"]["values"][-1]["value"]
    assert error["transaction"] == "GET /slots/{slot}"
    for transaction in (e for e in events if e.get("type") == "transaction"):
        assert_valid(transaction)
        assert transaction["transaction"] == "GET /slots/{slot}"
        assert transaction["tags"]["endpoint"] == "book_slot"


# -- db_operation -------------------------------------------------------------------------


SLOW_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
    "SELECT count(*) FROM c"
)


def test_a_db_operation_on_sqlite_is_a_db_span_with_semantic_names(finished, tmp_path):
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE inventory (sku TEXT, quantity INTEGER)")
        with db_operation("reserve_stock", table="inventory", system="sqlite", sku="A-1"):
            db.execute("UPDATE inventory SET quantity = quantity - 1 WHERE sku = 'A-1'")
    span = _span(finished, "reserve_stock")
    assert span.attributes["sentry.op"] == "db"
    assert span.attributes["db.operation.name"] == "reserve_stock"
    assert span.attributes["db.collection.name"] == "inventory"
    assert span.attributes["db.system.name"] == "sqlite"
    assert span.attributes["biz.sku"] == "A-1"
    assert violations(span) == []  # well under the 500 ms default


def test_a_slow_db_operation_is_a_violation_and_a_db_span_in_sentry(use_processor, tmp_path):
    @db_operation("stock_report", table="inventory", threshold_ms=1)
    def stock_report() -> int:
        with sqlite3.connect(tmp_path / "shop.db") as db:
            return db.execute(SLOW_QUERY).fetchone()[0]

    with sentry_pipeline(use_processor) as sentry:
        with trace.get_tracer("tests").start_as_current_span("GET /reports/stock"):
            assert stock_report() == 300000
        events = sentry.events(2)

    (transaction,) = [e for e in events if e.get("type") == "transaction"]
    assert_valid(transaction)
    (db_span,) = transaction["spans"]
    assert db_span["op"] == "db"
    assert db_span["description"] == "stock_report"
    assert db_span["data"]["db.collection.name"] == "inventory"
    (issue,) = [e for e in events if "fingerprint" in e]
    assert issue["fingerprint"] == ["biz-violation", "slow_operation", "stock_report"]
    assert tags_of(assert_valid(issue))["error_category"] == "performance"
    assert issue["contexts"]["business_violation"]["data"]["biz.threshold_ms"] == 1.0


def test_db_operation_threshold_none_turns_the_check_off(finished):
    with db_operation("bulk_load", threshold_ms=None):
        time.sleep(0.002)
    assert violations(_span(finished, "bulk_load")) == []
