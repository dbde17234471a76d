"""biz.measure(): a number on the current transaction, as Sentry's measurements."""

from __future__ import annotations

import logging

from opentelemetry import trace

import otel_sentry_biz as biz
from tests.pipelines import sentry_pipeline
from tests.relay_oracle import assert_valid


def test_a_measurement_reaches_the_transaction_it_was_recorded_in(use_processor):
    tracer = trace.get_tracer("test")
    with sentry_pipeline(use_processor) as delivered:
        with tracer.start_as_current_span("checkout"):
            with tracer.start_as_current_span("price basket"):
                biz.measure("basket_value", 129.9)
                biz.measure("render_time", 41.5, unit="millisecond")
                biz.measure("basket_value", 131.0)  # the latest wins, as set_measurement
        delivered.ended("checkout", 1)
        (transaction,) = [e for e in delivered.events(1) if e.get("type") == "transaction"]
    normalized = assert_valid(transaction)
    assert normalized["measurements"] == {
        "basket_value": {"value": 131.0, "unit": "none"},
        "render_time": {"value": 41.5, "unit": "millisecond"},
    }


def test_bad_names_units_and_values_are_logged_with_the_fix_and_never_raise(finished, caplog):
    tracer = trace.get_tracer("test")
    with caplog.at_level(logging.ERROR, logger="otel_sentry_biz.measures"):
        with tracer.start_as_current_span("job"):
            biz.measure("Basket Value", 1.0)
            biz.measure("rows", 1.0, unit="rows per second")
            biz.measure("rows", float("nan"))
            biz.measure("rows", "12")  # type: ignore[arg-type]
            biz.measure("rows", True)
    (span,) = finished.get_finished_spans()
    assert list(span.events) == []
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 5
    assert "must be 1-64 characters a-z" in messages[0]
    assert "must be a Sentry unit" in messages[1]
    assert all("finite number" in message for message in messages[2:])


def test_outside_a_recording_span_it_is_dropped_with_a_debug_line(caplog):
    with caplog.at_level(logging.DEBUG, logger="otel_sentry_biz.measures"):
        biz.measure("orphan", 1.0)  # no span: nothing to attach it to, and no error
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert "outside a recording span" in caplog.records[0].getMessage()
