"""Who an event is about: ``event.user`` from the request's user attributes, every event
through the real pipeline into a LocalReceiver and checked by Relay."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.sentry.events import EventDefaults, EventFactory
from otel_sentry_biz.sentry.segments import SegmentAssembler
from otel_sentry_biz.sentry.user import user_of
from tests.pipelines import sentry_pipeline
from tests.relay_oracle import assert_valid

SIGNED_IN = {
    "user.id": "u-42",
    "user.name": "ana",
    "user.full_name": "Ana Lopez",
    "user.email": "ana@example.com",
    "client.address": "10.1.2.3",
}


def _request(tracer: Any, user: dict[str, Any]) -> None:
    """A request whose SERVER span names its user (as the HTTP middlewares do): a handled
    error, a violation and a message below it, in a child span."""
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes=user):
        with tracer.start_as_current_span("reserve stock"):
            biz.capture_error(LookupError("no stock"))
            biz.violation("stock_available", "HIGH", "no stock for SO-1", group="SO-1")
            biz.capture_message("stock re-ordered", "warning")


def test_every_event_of_the_request_names_its_user_by_id(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        _request(tracer, SIGNED_IN)
        issues = sentry.issues(3)
        (transaction,) = sentry.receiver.events("transaction")

    assert len(issues) == 3
    # Without consent (send_default_pii off): the id only, no e-mail, name or IP address.
    for event in [*issues, transaction]:
        assert event["user"] == {"id": "u-42"}
        # What Sentry counts "users affected" by (Relay derives it from the user).
        assert assert_valid(event)["user"]["sentry_user"] == "id:u-42"


def test_the_old_enduser_id_names_the_user_too(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        _request(tracer, {"enduser.id": 7})
        issues = sentry.issues(3)
    assert [event["user"] for event in issues] == [{"id": "7"}] * 3


def test_a_request_without_a_user_sends_no_user(use_processor, tracer):
    with sentry_pipeline(use_processor) as sentry:
        _request(tracer, {"client.address": "10.1.2.3"})
        issues = sentry.issues(3)
        (transaction,) = sentry.receiver.events("transaction")
    assert [event for event in [*issues, transaction] if "user" in event] == []


def test_with_consent_the_user_is_named_like_sentry_sdk_does(use_processor, tracer, monkeypatch):
    monkeypatch.setenv("SENTRY_SEND_DEFAULT_PII", "true")
    with sentry_pipeline(use_processor) as sentry:
        _request(tracer, SIGNED_IN)
        issues = sentry.issues(3)
    expected = {
        "id": "u-42",
        "username": "ana",
        "name": "Ana Lopez",
        "email": "ana@example.com",
        "ip_address": "10.1.2.3",
    }
    assert [event["user"] for event in issues] == [expected] * 3


def _factory_events(pii: bool, user: dict[str, Any], inner: Any = None) -> list[dict[str, Any]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(biz.BusinessSpanProcessor(next=SimpleSpanProcessor(memory)))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("GET /me", kind=SpanKind.SERVER, attributes=user):
        with tracer.start_as_current_span("load", attributes=inner):
            try:
                with tracer.start_as_current_span("query"):
                    raise KeyError("gone")
            except KeyError:
                pass
    factory = EventFactory(EventDefaults(send_default_pii=pii))
    (segment,) = SegmentAssembler().add(memory.get_finished_spans())
    return [*factory.transactions(segment), *factory.errors(segment)]


def test_send_default_pii_adds_names_email_and_ip_address():
    events = _factory_events(True, SIGNED_IN)
    for event in events:
        assert_valid(event)
        assert event["user"] == {
            "id": "u-42",
            "username": "ana",
            "name": "Ana Lopez",
            "email": "ana@example.com",
            "ip_address": "10.1.2.3",
        }


def test_a_client_address_that_is_no_ip_is_left_out_even_with_consent():
    (transaction, error) = _factory_events(True, {"user.id": "u-1", "client.address": "/run/s"})
    assert_valid(transaction), assert_valid(error)
    assert transaction["user"] == error["user"] == {"id": "u-1"}


def test_an_error_names_the_user_of_its_nearest_span_naming_one():
    # A worker acting for another user inside a request (an admin impersonating, a job).
    (transaction, error) = _factory_events(False, {"user.id": "admin"}, inner={"user.id": "u-9"})
    assert (transaction["user"], error["user"]) == ({"id": "admin"}, {"id": "u-9"})


def test_only_ids_and_consented_fields_make_a_user():
    assert user_of({"user.id": "a", "enduser.id": "b"}, send_default_pii=False) == {"id": "a"}
    assert user_of({"user.id": True, "user.email": "x@y.z"}, send_default_pii=False) is None
    assert user_of({"http.route": "/"}, send_default_pii=True) is None
