from __future__ import annotations

import asyncio
import datetime
import decimal
import logging

from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagate import inject

import otel_sentry_biz as biz


def _attrs(exporter, name):
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return dict(span.attributes)


def test_every_span_inside_context_carries_business_attributes(finished, tracer):
    with biz.context(work_request="WR-1", customer="ACME"):
        with tracer.start_as_current_span("outer"):
            with tracer.start_as_current_span("inner"):
                pass
    for name in ("outer", "inner"):
        attrs = _attrs(finished, name)
        assert attrs["biz.work_request"] == "WR-1"
        assert attrs["biz.customer"] == "ACME"


def test_context_ends_with_its_block(finished, tracer):
    with biz.context(customer="ACME"):
        pass
    with tracer.start_as_current_span("after"):
        pass
    assert "biz.customer" not in _attrs(finished, "after")


def test_nested_contexts_merge_and_inner_wins(finished, tracer):
    with biz.context(customer="ACME", region="eu"), biz.context(customer="Globex"):
        with tracer.start_as_current_span("s"):
            pass
    attrs = _attrs(finished, "s")
    assert attrs["biz.customer"] == "Globex"
    assert attrs["biz.region"] == "eu"


def test_instrumentation_attributes_are_not_overwritten(finished, tracer):
    with biz.context(customer="ACME"):
        with tracer.start_as_current_span("s", attributes={"biz.customer": "set-by-app"}):
            pass
    assert _attrs(finished, "s")["biz.customer"] == "set-by-app"


def test_values_are_coerced_to_attribute_types(finished, tracer):
    with (
        biz.context(
            amount=decimal.Decimal("120.50"),
            work_date=datetime.date(2026, 11, 2),
            skipped=None,
            tags=["a", "b"],
        ),
        tracer.start_as_current_span("s"),
    ):
        pass
    attrs = _attrs(finished, "s")
    assert attrs["biz.amount"] == 120.5
    assert attrs["biz.work_date"] == "2026-11-02"
    assert attrs["biz.tags"] == ("a", "b")
    assert "biz.skipped" not in attrs


def test_decorator_works_for_sync_and_async_functions(finished, tracer):
    @biz.context(module="billing")
    def sync_job():
        with tracer.start_as_current_span("sync"):
            return 1

    @biz.context(module="billing")
    async def async_job():
        with tracer.start_as_current_span("async"):
            await asyncio.sleep(0)
            return 2

    assert sync_job() == 1
    assert asyncio.run(async_job()) == 2
    assert _attrs(finished, "sync")["biz.module"] == "billing"
    assert _attrs(finished, "async")["biz.module"] == "billing"


def test_async_context_manager(finished, tracer):
    async def main():
        async with biz.context(tenant="t1"):
            with tracer.start_as_current_span("a"):
                await asyncio.sleep(0)

    asyncio.run(main())
    assert _attrs(finished, "a")["biz.tenant"] == "t1"


def test_only_chosen_keys_travel_as_baggage():
    with biz.context(customer="ACME", amount=5, propagate=["customer"]):
        carrier: dict[str, str] = {}
        W3CBaggagePropagator().inject(carrier)
        assert baggage.get_baggage("biz.customer") == "ACME"
        assert baggage.get_baggage("biz.amount") is None
    assert "biz.customer=ACME" in carrier["baggage"]
    assert "amount" not in carrier["baggage"]


def test_sensitive_keys_never_travel_as_baggage(caplog):
    with caplog.at_level(logging.WARNING, "otel_sentry_biz.context"):
        with biz.context(customer_email="a@b.c", api_token="x", customer="ACME", propagate=True):
            carrier: dict[str, str] = {}
            inject(carrier)
    assert "email" not in carrier.get("baggage", "")
    assert "token" not in carrier.get("baggage", "")
    assert "biz.customer=ACME" in carrier["baggage"]
    assert "looks sensitive" in caplog.text


def test_baggage_from_upstream_becomes_span_attributes(finished, tracer):
    from opentelemetry.context import attach, detach

    ctx = W3CBaggagePropagator().extract({"baggage": "biz.customer=ACME,other=1"})
    token = attach(ctx)
    try:
        with tracer.start_as_current_span("server"):
            pass
    finally:
        detach(token)
    attrs = _attrs(finished, "server")
    assert attrs["biz.customer"] == "ACME"
    assert "other" not in attrs and "biz.other" not in attrs


def test_record_sets_facts_on_current_span_only(finished, tracer):
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        biz.record(amount=18200.0, quantity=3)
    assert _attrs(finished, "inner")["biz.amount"] == 18200.0
    assert "biz.amount" not in _attrs(finished, "outer")


def test_record_without_a_span_is_harmless():
    biz.record(amount=1)  # no recording span: nothing to do, and nothing raised
    assert biz.current_business() == {}
