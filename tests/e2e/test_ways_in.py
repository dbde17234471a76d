"""The three ways in, each end to end: a real app process, a real local Sentry receiver."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_app
from tests.relay_oracle import assert_valid

pytestmark = pytest.mark.slow

REQUEST = """
from opentelemetry import trace
from opentelemetry.trace import SpanKind
import otel_sentry_biz as biz

tracer = trace.get_tracer("shop")

def handle(order_id, fail=False):
    with tracer.start_as_current_span(
        "GET /orders/{id}", kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": "/orders/{id}",
                    "http.response.status_code": 500 if fail else 200},
    ):
        with biz.context(customer="ACME", work_request=f"WR-{order_id}"):
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT,
                                               attributes={"db.system": "sqlite",
                                                           "db.statement": "SELECT 1"}):
                pass
            if fail:
                raise ConnectionError("inventory service unreachable")

for order_id in range(3):
    handle(order_id)
try:
    handle(99, fail=True)
except ConnectionError:
    pass
"""


def _check(receiver, expect_service):
    assert receiver.wait_for(lambda r: len(r.events()) >= 5, timeout=20), (
        receiver.requests,
        receiver.rejected,
        [e.get("type") for e in receiver.events()],
    )
    transactions = [e for e in receiver.events() if e.get("type") == "transaction"]
    errors = [e for e in receiver.events() if e.get("exception")]
    assert len(transactions) == 4
    assert len(errors) == 1
    for event in transactions + errors:
        assert_valid(event)
    names = {t["transaction"] for t in transactions}
    assert names == {"GET /orders/{id}"}
    tx = next(t for t in transactions if t["tags"].get("work_request") == "WR-0")
    assert tx["spans"][0]["tags"]["customer"] == "ACME"
    assert tx["spans"][0]["op"].startswith("db")
    (error,) = errors
    assert error["tags"]["work_request"] == "WR-99"
    assert error["tags"]["error_category"] == "integration"
    assert error["exception"]["values"][-1]["mechanism"]["handled"] is False
    failed = next(t for t in transactions if t["tags"].get("work_request") == "WR-99")
    assert error["contexts"]["trace"]["trace_id"] == failed["contexts"]["trace"]["trace_id"]
    if expect_service:
        assert error["contexts"]["otel"]["resource"]["service.name"] == expect_service


def test_zero_code_with_opentelemetry_instrument(tmp_path, receiver):
    result = run_app(
        tmp_path,
        REQUEST,
        "opentelemetry-instrument",
        SENTRY_DSN=receiver.dsn,
        SENTRY_TRACES_SAMPLE_RATE="1.0",
        OTEL_SERVICE_NAME="shop",
    )
    assert result.returncode == 0, result.stderr
    _check(receiver, "shop")


def test_zero_code_rejects_bad_settings_with_the_fix(tmp_path, receiver):
    result = run_app(
        tmp_path,
        "print('app ran')",
        "opentelemetry-instrument",
        SENTRY_DSN=receiver.dsn,
        SENTRY_TRACES_SAMPLE_RATE="2",
    )
    assert "SENTRY_TRACES_SAMPLE_RATE='2' is invalid" in result.stderr
    assert "use a number from 0.0 to 1.0" in result.stderr


def test_existing_otel_setup_adds_processor_and_exporter(tmp_path, receiver):
    setup = f'''
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from otel_sentry_biz import BusinessSpanProcessor, BufferedSpanProcessor, SentrySpanExporter

provider = TracerProvider(resource=Resource.create({{"service.name": "shop"}}))
provider.add_span_processor(BusinessSpanProcessor(
    next=BufferedSpanProcessor(SentrySpanExporter(dsn="{receiver.dsn}"))))
trace.set_tracer_provider(provider)
'''
    result = run_app(tmp_path, setup + REQUEST + "\nprovider.shutdown()\n")
    assert result.returncode == 0, result.stderr
    _check(receiver, "shop")


def test_configure_in_one_call(tmp_path, receiver):
    setup = """
import otel_sentry_biz
pipeline = otel_sentry_biz.configure(traces_sample_rate=1.0,
                                     resource={"service.name": "shop"})
"""
    result = run_app(tmp_path, setup + REQUEST, SENTRY_DSN=receiver.dsn)
    assert result.returncode == 0, result.stderr
    _check(receiver, "shop")


def test_alongside_sentry_sdk_one_error_one_trace(tmp_path, receiver):
    app = f'''
import sentry_sdk
sentry_sdk.init(dsn="{receiver.dsn}")
import otel_sentry_biz
from opentelemetry import trace
otel_sentry_biz.configure(traces_sample_rate=1.0, dsn="{receiver.dsn}")
tracer = trace.get_tracer("app")
with tracer.start_as_current_span("job") as span:
    sentry_sdk.capture_message("hello from sentry-sdk")
    trace_id = format(span.get_span_context().trace_id, "032x")
print(trace_id)
with tracer.start_as_current_span("crash"):
    raise RuntimeError("unhandled boom")
'''
    result = run_app(tmp_path, app)
    assert result.returncode == 1 and "unhandled boom" in result.stderr
    trace_id = result.stdout.strip()
    assert receiver.wait_for(lambda r: len(r.events()) >= 4, timeout=20)
    errors = [e for e in receiver.events() if e.get("exception")]
    assert len(errors) == 1, [e["exception"]["values"][-1]["type"] for e in errors]
    assert errors[0]["sdk"]["name"] == "otel-sentry-biz"
    message = next(e for e in receiver.events() if e.get("message") or e.get("logentry"))
    assert message["contexts"]["trace"]["trace_id"] == trace_id


BILLING = """
from opentelemetry import trace
import otel_sentry_biz as biz

tracer = trace.get_tracer("billing")
with biz.context(work_request="WR-7", customer="ACME"):
    with tracer.start_as_current_span("bill work request"):
        for line, (quantity, unit_price) in enumerate([(10, 120.0), (2, 750.0)]):
            with tracer.start_as_current_span("bill line"):
                biz.record(quantity=quantity, unit_price=unit_price,
                           amount=quantity * unit_price, foreman="F-1")
"""


def test_zero_code_runs_the_rules_named_by_otel_sentry_biz_rules(tmp_path, receiver):
    result = run_app(
        tmp_path,
        BILLING,
        "opentelemetry-instrument",
        SENTRY_DSN=receiver.dsn,
        SENTRY_TRACES_SAMPLE_RATE="1.0",
        OTEL_SENTRY_BIZ_RULES="billing",
    )
    assert result.returncode == 0, result.stderr
    assert receiver.wait_for(lambda r: len(r.events("event")) >= 1, timeout=20)
    # after_hours_change depends on the clock of the run: look at the price rule only.
    fired = {tuple(e["fingerprint"][:2]): e for e in receiver.events("event")}
    assert set(fired) <= {
        ("biz-violation", "unit_price_range"),
        ("biz-violation", "after_hours_change"),
    }
    issue = fired[("biz-violation", "unit_price_range")]
    assert_valid(issue)
    assert issue["fingerprint"][:2] == ["biz-violation", "unit_price_range"]
    assert issue["tags"]["business_impact"] == "MEDIUM"
    assert issue["tags"]["error_category"] == "data_quality"
    assert issue["tags"]["work_request"] == "WR-7"
    assert "750.00" in issue["logentry"]["formatted"]


def test_a_broken_rules_file_stops_start_up_naming_the_file_and_fix(tmp_path, receiver):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "big"\nkind = "treshold"\n')
    result = run_app(
        tmp_path,
        "print('app ran')",
        "opentelemetry-instrument",
        SENTRY_DSN=receiver.dsn,
        OTEL_SENTRY_BIZ_RULES=str(rules),
    )
    assert "OTEL_SENTRY_BIZ_RULES" in result.stderr
    assert "rules.toml" in result.stderr and "threshold" in result.stderr
