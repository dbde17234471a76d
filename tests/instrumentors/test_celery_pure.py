"""The pure parts of the Celery instrumentor: headers, attribute names and values, outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery.utils.serialization import UnpickleableExceptionWrapper
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import otel_sentry_biz as biz
from otel_sentry_biz.context import context_with, current_business
from otel_sentry_biz_instrumentors.celery import semconv as sc
from otel_sentry_biz_instrumentors.celery.carrier import extract_context, getter, inject_headers
from otel_sentry_biz_instrumentors.celery.outcomes import is_expected, record_failure

SENT = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=False,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
)


@pytest.fixture
def sending() -> Context:
    """A producer's context: a span, a propagated business key and one kept local."""
    ctx = trace.set_span_in_context(NonRecordingSpan(SENT))
    return context_with(
        {"customer": "ACME", "work_request": "WR-7"}, propagate=["customer"], ctx=ctx
    )


@pytest.fixture
def trace_context_only() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    yield
    propagate.set_global_textmap(saved)


# -- headers --------------------------------------------------------------------------------


def test_headers_carry_the_trace_and_only_the_propagated_business_keys(sending) -> None:
    headers: dict[str, Any] = {"id": "t-1", "task": "billing.close"}
    inject_headers(headers, sending)
    assert headers["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert headers["baggage"] == "biz.customer=ACME"
    restored = extract_context(headers)
    assert trace.get_current_span(restored).get_span_context().trace_id == SENT.trace_id
    assert dict(current_business(restored)) == {"biz.customer": "ACME"}


def test_business_keys_get_their_own_baggage_header_when_the_propagator_has_none(
    sending, trace_context_only
) -> None:
    mixed = baggage.set_baggage("tenant.region", "eu", sending)  # not a business key
    headers: dict[str, Any] = {}
    inject_headers(headers, mixed)
    assert set(headers) == {"traceparent", "baggage"}
    assert headers["baggage"] == "biz.customer=ACME"
    assert dict(current_business(extract_context(headers))) == {"biz.customer": "ACME"}


def test_a_sensitive_business_key_is_not_written_even_if_it_reached_the_baggage(
    trace_context_only,
) -> None:
    ctx = baggage.set_baggage("biz.customer_email", "ceo@acme.example")
    ctx = baggage.set_baggage("biz.customer", "ACME", ctx)
    headers: dict[str, Any] = {}
    inject_headers(headers, ctx)
    assert headers == {"baggage": "biz.customer=ACME"}


def test_a_message_without_context_restores_nothing() -> None:
    assert extract_context({"id": "t-1", "task": "billing.close"}) is None
    assert extract_context(SimpleNamespace(id="t-1")) is None


def test_context_is_read_from_a_celery_request_as_well_as_from_headers(sending) -> None:
    headers: dict[str, Any] = {}
    inject_headers(headers, sending)
    request = SimpleNamespace(id="t-1", timelimit=(None, 30), retries=2, **headers)
    restored = extract_context(request)
    assert trace.get_current_span(restored).get_span_context().span_id == SENT.span_id
    assert dict(current_business(restored)) == {"biz.customer": "ACME"}


def test_getter_turns_celery_values_into_strings() -> None:
    request = SimpleNamespace(timelimit=(None, 30), retries=2, traceparent="00-x")
    assert getter.get(request, "timelimit") == ["None", "30"]
    assert getter.get(request, "retries") == ["2"]
    assert getter.get(request, "missing") is None
    assert getter.get({"traceparent": "00-x"}, "traceparent") == ["00-x"]
    assert sorted(getter.keys(request)) == ["retries", "timelimit", "traceparent"]
    assert getter.keys({"a": 1}) == ["a"]


def test_business_context_of_the_sender_is_not_required(tracer) -> None:
    with tracer.start_as_current_span("send"), biz.context(customer="ACME"):
        headers: dict[str, Any] = {}
        inject_headers(headers)
    assert "baggage" not in headers  # customer was not chosen to travel
    assert "traceparent" in headers


# -- names and values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broker", "system"),
    [
        ("amqp://guest:secret@rabbit:5672//", "rabbitmq"),
        ("pyamqp://rabbit//", "rabbitmq"),
        ("amqps://rabbit//", "rabbitmq"),
        ("redis://:secret@127.0.0.1:6379/5", "redis"),
        ("rediss://cache:6380/0", "redis"),
        ("sentinel://s1:26379;sentinel://s2:26379", "redis"),
        ("sqs://", "aws_sqs"),
        ("memory://", "memory"),
        ("sqla+postgresql://db/celery", "sqla"),
        (["redis://a/0", "amqp://b//"], "redis"),
        (None, "rabbitmq"),  # Celery's default broker
        ("", "rabbitmq"),
    ],
)
def test_messaging_system_is_the_protocol_spoken_to_the_broker(broker, system) -> None:
    assert sc.messaging_system(broker) == system


def test_broker_system_reads_the_split_read_and_write_urls() -> None:
    conf = {"broker_url": "redis://r/0", "broker_read_url": "amqp://a//"}
    app = SimpleNamespace(conf=conf)
    assert sc.broker_system(app, write=False) == "rabbitmq"
    assert sc.broker_system(app, write=True) == "redis"
    assert sc.broker_system(None, write=True) is None


@pytest.mark.parametrize(
    ("opt_in", "dup"),
    [
        ("", False),
        ("messaging", False),
        ("http/dup", False),
        ("messaging/dup", True),
        (" http , Messaging/Dup ,messaging", True),
    ],
)
def test_old_names_only_under_messaging_dup(opt_in, dup) -> None:
    conventions = sc.Conventions.from_environ({"OTEL_SEMCONV_STABILITY_OPT_IN": opt_in})
    assert conventions.dup is dup


def test_messaging_setter_writes_current_and_old_names_by_mode() -> None:
    dup = sc.Conventions(dup=True)
    assert dup.messaging({}, sc.MESSAGING_OPERATION_TYPE, sc.SEND) == {
        "messaging.operation.type": "send",
        "messaging.operation": "publish",
    }
    assert dup.messaging({}, sc.MESSAGING_OPERATION_TYPE, sc.SETTLE) == {
        "messaging.operation.type": "settle"  # no old value: not duplicated
    }
    assert dup.messaging({}, sc.MESSAGING_DESTINATION_NAME, "billing") == {
        "messaging.destination.name": "billing",
        "messaging.destination": "billing",
    }
    assert sc.Conventions().messaging({}, sc.MESSAGING_DESTINATION_NAME, "billing") == {
        "messaging.destination.name": "billing"
    }
    assert sc.Conventions().messaging({}, sc.MESSAGING_DESTINATION_NAME, "") == {}
    assert sc.Conventions().messaging({}, sc.MESSAGING_MESSAGE_ID, None) == {}


# -- outcomes -------------------------------------------------------------------------------


class PaymentDeclined(Exception):
    pass


def test_a_failure_is_recorded_like_an_escaping_exception(finished, tracer) -> None:
    with tracer.start_as_current_span("run billing.charge") as span:
        record_failure(span, PaymentDeclined("card expired"))
    (ended,) = finished.get_finished_spans()
    (event,) = ended.events
    assert event.attributes["exception.type"].endswith("PaymentDeclined")
    assert event.attributes["exception.escaped"] == "True"
    assert ended.status.description == "PaymentDeclined: card expired"
    assert event.attributes["biz.impact"] == "CRITICAL"  # the BusinessSpanProcessor judged it


def test_a_failure_celery_wrapped_for_pickling_keeps_its_own_type(finished, tracer) -> None:
    wrapped = UnpickleableExceptionWrapper("billing.errors", "LedgerLocked", ("ledger 7",), "x")
    with tracer.start_as_current_span("run billing.close") as span:
        record_failure(span, wrapped)
    (ended,) = finished.get_finished_spans()
    assert ended.events[0].attributes["exception.type"] == "billing.errors.LedgerLocked"
    assert ended.events[0].attributes["exception.message"] == "ledger 7"
    assert ended.status.description == "LedgerLocked: ledger 7"


def test_expected_errors_are_those_the_task_declares() -> None:
    task = SimpleNamespace(throws=(LookupError,))
    assert is_expected(task, KeyError("sku"))
    assert not is_expected(task, ValueError("qty"))
    assert not is_expected(SimpleNamespace(), KeyError("sku"))
